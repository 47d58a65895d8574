package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Exporter is the optional part of a Store that a full copy of it needs:
// reading what the core interface only reaches by key (sessions, login
// tokens, OAuth flows), the whole request log in order with exact times,
// and the usage roll-ups as stored. Both engines in this module implement
// it; migrate.Copy needs it on the source.
type Exporter interface {
	// Count returns how many records of each kind the store holds.
	Count(ctx context.Context) (Counts, error)
	// ExportSessions returns every dashboard session, expired or not.
	ExportSessions(ctx context.Context) ([]SessionEntry, error)
	// ExportLoginTokens returns every login token, expired or not.
	ExportLoginTokens(ctx context.Context) ([]LoginEntry, error)
	// ExportOAuthSessions returns every pending OAuth flow, expired or not.
	ExportOAuthSessions(ctx context.Context) ([]OAuthEntry, error)
	// ExportLogs returns up to limit request-log records after the
	// position after ("" is the start), oldest first (equal times in the
	// order they were appended), and the position of the last one.
	// Fewer than limit records means there are no more. A position is
	// opaque and only valid for the store that returned it.
	ExportLogs(ctx context.Context, after string, limit int) (recs []LogRecord, next string, err error)
	// ExportUsage returns every roll-up as stored, one per user and UTC
	// day, in no particular order.
	ExportUsage(ctx context.Context) ([]UsageDelta, error)
}

// Importer is the optional part of a Store that writing a full copy into
// it needs beyond the core interface, which already takes every record
// with its exact fields (AppendLogs keeps times and order; into an empty
// store, usage deltas are the roll-ups). Both engines implement it.
type Importer interface {
	// DeleteAll removes every record of every kind, request log and
	// roll-ups included, in one atomic write; the schema stays.
	DeleteAll(ctx context.Context) error
}

// Backuper is implemented by a Store kept in one file (bbolt): it writes
// a consistent copy of the whole file while the store stays in use.
type Backuper interface {
	// Backup writes the copy to w and returns how many bytes it wrote.
	Backup(w io.Writer) (int64, error)
}

// ErrNoFileBackup is what Vault.Backup fails with when the vault's engine
// is not a single file (PostgreSQL has its own backup tools).
var ErrNoFileBackup = errors.New("vault: this storage engine has no single-file backup")

// Backup writes a consistent copy of the vault's database file to w while
// the vault stays in use, or fails with ErrNoFileBackup.
func (v *Vault) Backup(w io.Writer) (int64, error) {
	b, ok := v.store.(Backuper)
	if !ok {
		return 0, ErrNoFileBackup
	}
	return b.Backup(w)
}

// SessionEntry is a dashboard session with its key (the SHA-256 of the
// bearer secret).
type SessionEntry struct {
	Key []byte
	SessionRecord
}

// LoginEntry is a login token with its key.
type LoginEntry struct {
	Key []byte
	LoginRecord
}

// OAuthEntry is a pending OAuth flow with its key.
type OAuthEntry struct {
	Key []byte
	OAuthRecord
}

// Kind names one kind of record, for counts and reports.
type Kind string

// The kinds of records a Store keeps, in the order a copy writes them.
const (
	KindUsers         Kind = "users"
	KindKeys          Kind = "api keys"
	KindTokens        Kind = "chatgpt logins"
	KindSessions      Kind = "dashboard sessions"
	KindLoginTokens   Kind = "login tokens"
	KindOAuthSessions Kind = "oauth flows"
	KindQuotas        Kind = "quota snapshots"
	KindRequestLogs   Kind = "request log"
	KindUsage         Kind = "usage roll-ups"
	KindResponses     Kind = "stored responses"
	KindSettings      Kind = "operator settings"
	KindAudit         Kind = "audit entries"
)

// Kinds lists every Kind in copy order.
var Kinds = []Kind{KindUsers, KindKeys, KindTokens, KindSessions, KindLoginTokens, KindOAuthSessions, KindQuotas, KindRequestLogs, KindUsage, KindResponses, KindSettings, KindAudit}

// Counts is how many records of each kind a store holds.
type Counts map[Kind]int

// Total is the number of records of all kinds.
func (c Counts) Total() int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

// CheckTokenRecord reports whether rec, stored for the account ref, opens
// with one of the encryption keys (nil) or not (ErrTokenUndecryptable). A
// copy is checked with it without the tokens ever leaving this function.
func CheckTokenRecord(encryptionKeys []string, ref AccountRef, rec TokenRecord) error {
	kr, err := newKeyring(encryptionKeys)
	if err != nil {
		return err
	}
	pt, _, err := (&Vault{keyring: kr}).openSealed(rec.Sealed, ref)
	if err != nil {
		return err
	}
	var s tokenSecrets
	if json.Unmarshal(pt, &s) != nil || s.RefreshToken == "" && s.AccessToken == "" {
		return ErrTokenUndecryptable
	}
	return nil
}

// String lists the non-zero counts in Kinds order ("nothing" if none).
func (c Counts) String() string {
	var parts []string
	for _, k := range Kinds {
		if c[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c[k], k))
		}
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}
