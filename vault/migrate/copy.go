// Package migrate copies a whole vault from one storage engine to another
// and checks the copy record by record: what `caddy codex-proxy vault
// migrate` runs. It works on vault.Store values through the optional
// vault.Exporter and vault.Importer interfaces that both engines
// implement, so it needs neither engine.
package migrate

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// ErrNotEmpty is what Copy fails with, wrapped in a *NotEmptyError,
// when the target already holds records and Replace is not set.
var ErrNotEmpty = errors.New("vault: the target already holds records")

// ErrNoExport is what Copy and Verify fail with when a store lacks the
// optional vault.Exporter (or, for Replace, vault.Importer) interface.
var ErrNoExport = errors.New("vault: the storage engine cannot export or import a full copy")

// NotEmptyError says what a non-empty target holds.
type NotEmptyError struct {
	Counts vault.Counts
}

// Error lists the kinds the target holds, e.g. "3 users, 120 request log".
func (e *NotEmptyError) Error() string {
	return ErrNotEmpty.Error() + ": " + e.Counts.String()
}

// Unwrap makes errors.Is(err, ErrNotEmpty) hold.
func (e *NotEmptyError) Unwrap() error { return ErrNotEmpty }

// Options configures Copy. The zero value works.
type Options struct {
	// Replace empties a non-empty target first (it must be a vault.Importer)
	// instead of refusing with a *NotEmptyError.
	Replace bool
	// LogBatch is how many request-log records one write carries
	// (default 1000).
	LogBatch int
}

// Copy copies every record of src into dst: users, API keys with
// their policies and usage reset points, sealed token bundles as they are
// (nothing is decrypted), dashboard sessions, login tokens, OAuth flows,
// quota snapshots, the request log with its exact times and order,
// the usage roll-ups as stored, the stored responses, still sealed, and
// the audit log with its ids. src must be a vault.Exporter; dst is
// written through the core vault.Store interface, so its engine's own
// checks apply.
// It returns how many records of each kind it wrote. dst must be empty
// (else a *NotEmptyError) unless o.Replace.
//
// The copy is not one transaction: a failure leaves dst partly written,
// and running again with Replace starts over. Nothing may write to src
// meanwhile (for bbolt, its file lock keeps a running Caddy out).
func Copy(ctx context.Context, src, dst vault.Store, o Options) (vault.Counts, error) {
	ex, ok := src.(vault.Exporter)
	if !ok {
		return nil, fmt.Errorf("%w (source)", ErrNoExport)
	}
	if o.LogBatch <= 0 {
		o.LogBatch = 1000
	}
	if err := prepareTarget(ctx, dst, o.Replace); err != nil {
		return nil, err
	}
	n := vault.Counts{}
	step := func(kind vault.Kind, fn func() (int, error)) error {
		c, err := fn()
		n[kind] = c
		if err != nil {
			return fmt.Errorf("copying %s (after %d): %w", kind, c, err)
		}
		return nil
	}
	steps := []struct {
		kind vault.Kind
		fn   func() (int, error)
	}{
		{vault.KindUsers, func() (int, error) {
			users, err := src.ListUsers(ctx)
			return putAll(users, err, func(u vault.User) error { return dst.CreateUser(ctx, u) })
		}},
		{vault.KindKeys, func() (int, error) {
			keys, err := src.ListAllKeys(ctx)
			return putAll(keys, err, func(k vault.KeyRecord) error { return dst.CreateKey(ctx, k) })
		}},
		{vault.KindTokens, func() (int, error) {
			all, err := src.ListTokens(ctx)
			return putAll(sortedRefs(all), err, func(ref vault.AccountRef) error {
				rec := all[ref]
				return dst.UpdateTokens(ctx, ref.UserID, ref.ID, func(*vault.TokenRecord) (*vault.TokenRecord, error) { return &rec, nil })
			})
		}},
		{vault.KindSessions, func() (int, error) {
			all, err := ex.ExportSessions(ctx)
			return putAll(all, err, func(e vault.SessionEntry) error { return dst.PutSession(ctx, e.Key, e.SessionRecord) })
		}},
		{vault.KindLoginTokens, func() (int, error) {
			all, err := ex.ExportLoginTokens(ctx)
			return putAll(all, err, func(e vault.LoginEntry) error { return dst.PutLoginToken(ctx, e.Key, e.LoginRecord) })
		}},
		{vault.KindOAuthSessions, func() (int, error) {
			all, err := ex.ExportOAuthSessions(ctx)
			return putAll(all, err, func(e vault.OAuthEntry) error { return dst.PutOAuthSession(ctx, e.Key, e.OAuthRecord) })
		}},
		{vault.KindQuotas, func() (int, error) {
			all, err := src.ListQuotas(ctx)
			if err != nil || len(all) == 0 {
				return 0, err
			}
			return len(all), dst.PutQuotas(ctx, all)
		}},
		{vault.KindRequestLogs, func() (int, error) { return copyLogs(ctx, ex, dst, o.LogBatch) }},
		{vault.KindUsage, func() (int, error) {
			// Into an empty store, adding each stored roll-up as a delta
			// recreates it exactly.
			all, err := ex.ExportUsage(ctx)
			if err != nil || len(all) == 0 {
				return 0, err
			}
			return len(all), dst.AppendLogs(ctx, nil, all)
		}},
		{vault.KindResponses, func() (int, error) { return copyResponses(ctx, src, dst) }},
		{vault.KindSettings, func() (int, error) { return copySettings(ctx, src, dst) }},
		{vault.KindAudit, func() (int, error) { return copyAudit(ctx, src, dst) }},
	}
	for _, s := range steps {
		if err := step(s.kind, s.fn); err != nil {
			return n, err
		}
	}
	return n, nil
}

// prepareTarget refuses a non-empty dst, or empties it when replace.
func prepareTarget(ctx context.Context, dst vault.Store, replace bool) error {
	dex, ok := dst.(vault.Exporter)
	if !ok {
		return fmt.Errorf("%w (target)", ErrNoExport)
	}
	have, err := dex.Count(ctx)
	if err != nil {
		return fmt.Errorf("counting the target's records: %w", err)
	}
	if have.Total() == 0 {
		return nil
	}
	if !replace {
		return &NotEmptyError{Counts: have}
	}
	imp, ok := dst.(vault.Importer)
	if !ok {
		return fmt.Errorf("%w (target)", ErrNoExport)
	}
	if err := imp.DeleteAll(ctx); err != nil {
		return fmt.Errorf("emptying the target: %w", err)
	}
	return nil
}

// putAll writes each item with put, stopping at the first error, and
// returns how many it wrote.
func putAll[T any](items []T, err error, put func(T) error) (int, error) {
	if err != nil {
		return 0, err
	}
	for i, it := range items {
		if err := put(it); err != nil {
			return i, err
		}
	}
	return len(items), nil
}

// copyLogs pages through src's request log and appends each page as one
// batch, with no usage deltas: the roll-ups are copied as stored.
func copyLogs(ctx context.Context, src vault.Exporter, dst vault.Store, batch int) (int, error) {
	total, pos := 0, ""
	for {
		recs, next, err := src.ExportLogs(ctx, pos, batch)
		if err != nil {
			return total, err
		}
		if len(recs) > 0 {
			if err := dst.AppendLogs(ctx, recs, nil); err != nil {
				return total, err
			}
		}
		total += len(recs)
		if len(recs) < batch {
			return total, nil
		}
		pos = next
	}
}

// sortedRefs is the accounts of m in a stable order, so copies run the
// same each time.
func sortedRefs[V any](m map[vault.AccountRef]V) []vault.AccountRef {
	out := make([]vault.AccountRef, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// copyResponses copies the stored responses, sealed as they are, when
// both engines keep them; the target applies no cap (the source's records
// fit it already).
func copyResponses(ctx context.Context, src, dst vault.Store) (int, error) {
	from, ok := src.(vault.ResponseStore)
	if !ok {
		return 0, nil
	}
	to, ok := dst.(vault.ResponseStore)
	if !ok {
		return 0, fmt.Errorf("%w (target keeps no stored responses)", ErrNoExport)
	}
	all, err := from.ExportResponses(ctx)
	return putAll(all, err, func(r vault.ResponseRecord) error {
		_, err := to.PutResponse(ctx, r, vault.ResponseLimits{})
		return err
	})
}

// copySettings copies the operator settings when the source keeps them.
func copySettings(ctx context.Context, src, dst vault.Store) (int, error) {
	from, ok := src.(vault.SettingStore)
	if !ok {
		return 0, nil
	}
	all, err := from.ExportSettings(ctx)
	if err != nil || len(all) == 0 {
		return 0, err
	}
	to, ok := dst.(vault.SettingStore)
	if !ok {
		return 0, fmt.Errorf("%w (target keeps no operator settings)", ErrNoExport)
	}
	for _, name := range sortedKeys(all) {
		if err := to.PutSetting(ctx, name, all[name]); err != nil {
			return 0, err
		}
	}
	return len(all), nil
}

// copyAudit copies the audit log, ids and times as they are, when the
// source keeps one; a target that keeps none would lose it, so it is
// refused.
func copyAudit(ctx context.Context, src, dst vault.Store) (int, error) {
	from, ok := src.(vault.AuditStore)
	if !ok {
		return 0, nil
	}
	to, ok := dst.(vault.AuditStore)
	if !ok {
		return 0, fmt.Errorf("%w (target keeps no audit log)", ErrNoExport)
	}
	all, err := from.ExportAudit(ctx)
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	return putAll(all, err, func(e vault.AuditEntry) error { return to.AppendAudit(ctx, e) })
}
