package ops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/usemysub/caddy-codex-proxy/vault"
	"github.com/usemysub/caddy-codex-proxy/vault/migrate"
)

// DecryptSample is how many copied ChatGPT logins CheckDecrypts opens: a
// sample shows the keys are right without decrypting a whole vault.
const DecryptSample = 10

// ErrVerify marks a Migrate that copied but could not read the copy back
// to compare it.
var ErrVerify = errors.New("verifying the copy")

// MigrateResult is what a migration copied and what the check found.
type MigrateResult struct {
	Copied   vault.Counts
	Verified migrate.Verification
}

// Migrate copies everything in src to dst, replacing what dst holds if
// replace is set, then compares the two record by record. A non-empty
// target without replace fails with a *migrate.NotEmptyError and copies
// nothing; a failed check wraps ErrVerify; a result whose Verified is not OK is a copy that differs.
func Migrate(ctx context.Context, src, dst vault.Store, replace bool) (MigrateResult, error) {
	var res MigrateResult
	var err error
	if res.Copied, err = migrate.Copy(ctx, src, dst, migrate.Options{Replace: replace}); err != nil {
		return res, err
	}
	if res.Verified, err = migrate.Verify(ctx, src, dst); err != nil {
		return res, fmt.Errorf("%w: %w", ErrVerify, err)
	}
	return res, nil
}

// DecryptCheck is the outcome of CheckDecrypts.
type DecryptCheck struct {
	// Total is how many ChatGPT logins the store holds, Checked how many
	// of them were tried.
	Total, Checked int
	// Failed lists the users whose sampled login did not open.
	Failed []string
}

// CheckDecrypts opens an evenly spread sample of the token bundles in s
// with keys, so a migration proves the running Caddy will be able to use
// them. With no keys it only counts them.
func CheckDecrypts(ctx context.Context, s vault.Store, keys []string) (DecryptCheck, error) {
	all, err := s.ListTokens(ctx)
	if err != nil {
		return DecryptCheck{}, fmt.Errorf("reading the copied ChatGPT logins: %w", err)
	}
	res := DecryptCheck{Total: len(all)}
	if len(all) == 0 || len(keys) == 0 {
		return res, nil
	}
	refs := make([]vault.AccountRef, 0, len(all))
	for ref := range all {
		refs = append(refs, ref)
	}
	slices.SortFunc(refs, func(a, b vault.AccountRef) int { return strings.Compare(a.String(), b.String()) })
	step := max(1, len(refs)/DecryptSample)
	for i := 0; i < len(refs) && res.Checked < DecryptSample; i += step {
		res.Checked++
		if err := vault.CheckTokenRecord(keys, refs[i], all[refs[i]]); err != nil {
			res.Failed = append(res.Failed, refs[i].UserID)
		}
	}
	return res, nil
}

// BackupStore copies a store no Caddy holds through a read transaction of
// its own; only a bbolt store can.
func BackupStore(s vault.Store, w io.Writer) (int64, error) {
	b, ok := s.(vault.Backuper)
	if !ok {
		return 0, vault.ErrNoFileBackup
	}
	return b.Backup(w)
}

// CountStore reads a store as a vault would and counts what it holds: a
// backup that passes opens and is whole.
func CountStore(ctx context.Context, s vault.Store) (vault.Counts, error) {
	ex, ok := s.(vault.Exporter)
	if !ok {
		return nil, migrate.ErrNoExport
	}
	if _, err := s.ListUsers(ctx); err != nil {
		return nil, err
	}
	return ex.Count(ctx)
}
