package vault

import (
	"context"
	"time"

	"github.com/usemysub/caddy-codex-proxy/keypolicy"
)

// Store is where a Vault keeps its records: the storage engine behind the
// seam. Each engine implements it in its own package (vault/bolt, one
// file; vault/postgres, a server) and is handed to [New].
//
// A Store deals in plain records and bytes. Everything secret is handled
// above it, once, by the Vault: token bundles and OAuth verifiers arrive
// already sealed (AES-GCM, bound to the user and key id), API keys as their
// peppered HMAC, bearer secrets (sessions, login tokens, OAuth states) as
// their SHA-256. A Store never sees a plaintext secret and never needs the
// encryption keys, so it cannot leak one into a log or an error.
//
// Contract for every method (checked by the vault/storetest suite):
//   - Records that do not exist fail with an error for which
//     errors.Is(err, ErrNotFound) holds; uniqueness violations with
//     ErrEmailTaken or ErrDuplicate. Wrapping is allowed, matching on text
//     is not.
//   - Each method is atomic: it happens completely or not at all.
//   - After Close, methods fail with ErrClosed.
//   - A server engine that cannot reach its database fails fast with an
//     error wrapping ErrUnavailable, and recovers by itself.
//   - Times go in as UTC and come back equal to within a microsecond (a
//     server engine may keep microseconds only).
//   - All methods are safe for concurrent use.
//
// The Vault keeps users, active keys, decrypted tokens and quota snapshots
// in memory and calls the Store for writes, for loading at start, and for
// re-reads where it must see other writers (the refresh broker). None of
// its hot paths (key check, fresh access token, request log queueing) call
// the Store.
type Store interface {
	UserStore
	KeyStore
	TokenStore
	SessionStore
	LogStore
	QuotaStore
	RefreshLocker

	// Changes reports writes made by other instances sharing the database,
	// so the Vault can drop or reload what it caches in memory (a key
	// revoked or a user disabled elsewhere must take effect here too). A
	// single-process engine returns nil. The channel may also carry the
	// instance's own writes: handling a Change is idempotent. The engine
	// closes it when the Store is closed. When the engine may have missed
	// notifications (a dropped connection), it sends ChangeAll.
	Changes() <-chan Change

	// Close releases the engine. The Vault calls it from Vault.Close after
	// its last write; it owns the Store it was given.
	Close() error
}

// UserStore keeps users. Emails are unique (stored normalised; the Vault
// normalises them).
type UserStore interface {
	// CreateUser stores a new user. It fails with ErrEmailTaken if another
	// user has u.Email and with ErrDuplicate if u.ID is taken.
	CreateUser(ctx context.Context, u User) error
	// GetUser returns one user, or ErrNotFound.
	GetUser(ctx context.Context, id string) (User, error)
	// UserByEmail returns the user with the (normalised) email, or
	// ErrNotFound: what a CreateUser that lost a race for the email reads
	// the winner with, before the change notification reaches its cache.
	UserByEmail(ctx context.Context, email string) (User, error)
	// ListUsers returns every user, in no particular order.
	ListUsers(ctx context.Context) ([]User, error)
	// UpdateUser replaces the user with u.ID (the email cannot change), or
	// fails with ErrNotFound.
	UpdateUser(ctx context.Context, u User) error
	// DeleteUser removes a user with their API keys, token bundles,
	// dashboard sessions, OAuth sessions, quota snapshots and (on a
	// ResponseStore) stored responses, or fails with ErrNotFound. Request logs and usage roll-ups are history and stay.
	DeleteUser(ctx context.Context, id string) error
}

// KeyStore keeps API keys, identified by id and looked up at start by
// their HMAC. Key hashes are unique, revoked keys included.
type KeyStore interface {
	// CreateKey stores a new key of an existing user. It fails with
	// ErrNotFound if the user does not exist and with ErrDuplicate if the id
	// or the hash is taken.
	CreateKey(ctx context.Context, rec KeyRecord) error
	// GetKey returns one key, revoked or not, or ErrNotFound.
	GetKey(ctx context.Context, id string) (KeyRecord, error)
	// ListKeys returns the user's keys, revoked ones included, in no
	// particular order; none for an unknown user.
	ListKeys(ctx context.Context, userID string) ([]KeyRecord, error)
	// ListAllKeys returns every key, revoked ones included, in no
	// particular order.
	ListAllKeys(ctx context.Context) ([]KeyRecord, error)
	// RevokeKey marks the user's key disabled and raises its LastUsed to
	// lastUsed if that is later. It fails with ErrNotFound if the key does
	// not exist or belongs to another user; revoking twice is not an error.
	RevokeKey(ctx context.Context, userID, keyID string, lastUsed time.Time) error
	// TouchKeys raises the LastUsed of each key (id → time) to the given
	// time if that is later. Unknown keys (deleted meanwhile) are skipped.
	TouchKeys(ctx context.Context, uses map[string]time.Time) error
	// UpdateKeyPolicy replaces the Policy of the user's key, leaving every
	// other field as it is. It fails with ErrNotFound if the key does not
	// exist or belongs to another user. The policy is a self-contained
	// value with a JSON form (a server engine may keep it in one JSON
	// column).
	UpdateKeyPolicy(ctx context.Context, userID, keyID string, p keypolicy.Policy) error
	// ResetKeyUsage sets the UsageReset of the user's key to at, leaving
	// every other field as it is; ErrNotFound as for UpdateKeyPolicy.
	ResetKeyUsage(ctx context.Context, userID, keyID string, at time.Time) error
}

// TokenStore keeps the sealed ChatGPT token bundles, one per linked
// account of a user (AccountRef: user id and the account's id, unique per
// user). A user may link several accounts; the same ChatGPT account may be
// linked by several users, each under their own record.
type TokenStore interface {
	// GetTokens returns one account's record, or ErrNotFound.
	GetTokens(ctx context.Context, userID, accountID string) (TokenRecord, error)
	// ListTokens returns every record of every user.
	ListTokens(ctx context.Context) (map[AccountRef]TokenRecord, error)
	// ListUserTokens returns the user's records by account id; none (and
	// no error) for a user without accounts or an unknown user.
	ListUserTokens(ctx context.Context, userID string) (map[string]TokenRecord, error)
	// UpdateTokens is the compare-and-swap the refresh broker and linking
	// rely on: it reads the account's record (nil if none: fn may then
	// create it) and stores what fn returns, with no other write to that
	// record in between. If fn returns nil, or an error, nothing is written
	// and that error is returned. It fails with ErrNotFound, without
	// calling fn, if the user does not exist. fn runs while the record is
	// locked, so it must be quick and free of I/O; an engine may call it
	// again after a serialisation failure, so whatever else it does must be
	// redone by the next call.
	UpdateTokens(ctx context.Context, userID, accountID string, fn func(cur *TokenRecord) (*TokenRecord, error)) error
	// DeleteTokens forgets one account's record and its quota snapshot;
	// none stored is not an error.
	DeleteTokens(ctx context.Context, userID, accountID string) error
}

// AccountRef names one linked account: its user and its id.
type AccountRef struct {
	UserID string
	ID     string
}

// String is "user id/account id", for logs.
func (r AccountRef) String() string { return r.UserID + "/" + r.ID }

// MarshalText is String, so maps keyed by AccountRef encode as JSON.
func (r AccountRef) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// SessionStore keeps dashboard sessions, single-use login tokens and
// pending OAuth flows, each under the SHA-256 of its bearer secret.
type SessionStore interface {
	// PutSession stores a session of an existing user (else ErrNotFound).
	PutSession(ctx context.Context, key []byte, rec SessionRecord) error
	// GetSession returns a session, expired or not, or ErrNotFound.
	GetSession(ctx context.Context, key []byte) (SessionRecord, error)
	// DeleteSession removes a session; an unknown one is not an error.
	DeleteSession(ctx context.Context, key []byte) error
	// PutLoginToken stores a login token.
	PutLoginToken(ctx context.Context, key []byte, rec LoginRecord) error
	// TakeLoginToken returns and deletes a login token in one step, so two
	// concurrent takes cannot both succeed; ErrNotFound if there is none.
	TakeLoginToken(ctx context.Context, key []byte) (LoginRecord, error)
	// PutOAuthSession stores a pending OAuth flow.
	PutOAuthSession(ctx context.Context, key []byte, rec OAuthRecord) error
	// TakeOAuthSession returns and deletes a pending OAuth flow in one step;
	// ErrNotFound if there is none.
	TakeOAuthSession(ctx context.Context, key []byte) (OAuthRecord, error)
	// GetLoginToken returns a login token without using it up (the confirm
	// page names the account before the button is pressed); ErrNotFound if
	// there is none.
	GetLoginToken(ctx context.Context, key []byte) (LoginRecord, error)
	// DeleteUserSessions removes every dashboard session and pending OAuth
	// flow of a user ("sign out everywhere") and returns how many sessions.
	DeleteUserSessions(ctx context.Context, userID string) (int, error)
	// PurgeExpiredSessions deletes sessions, login tokens and OAuth flows
	// whose Expires is not after now, and returns how many.
	PurgeExpiredSessions(ctx context.Context, now time.Time) (int, error)
}

// LogStore keeps the request log and the per-user, per-day usage
// roll-ups. Batching is the Vault's job: the Store sees one AppendLogs per
// batch.
type LogStore interface {
	// AppendLogs stores records (any order, equal times allowed) and adds
	// the usage deltas to the roll-ups, in one atomic write.
	AppendLogs(ctx context.Context, recs []LogRecord, usage []UsageDelta) error
	// RecentLogs returns up to q.Limit records matching q, newest first;
	// records with equal times come latest-appended first.
	RecentLogs(ctx context.Context, q LogQuery) ([]LogRecord, error)
	// Usage returns the roll-ups of the days from..to (UTC days, inclusive)
	// that have any, oldest first; with an empty userID, summed over all
	// users.
	Usage(ctx context.Context, userID string, from, to time.Time) ([]DayUsage, error)
	// PurgeLogs deletes records older than before and returns how many.
	// The usage roll-ups stay; the prompt-cache rows (CacheRow) of the UTC
	// days wholly before before go with the records.
	PurgeLogs(ctx context.Context, before time.Time) (int, error)
	// CacheRollup returns userID's prompt-cache rows (CacheRow) of the
	// UTC days from the day of from on, of the key keyID only when it is
	// not empty, in any order. AppendLogs adds each record's CacheDelta
	// to its row in its own atomic write; reading costs the rows, not the
	// records.
	CacheRollup(ctx context.Context, userID, keyID string, from time.Time) ([]CacheRow, error)
}

// QuotaStore keeps each linked account's latest upstream rate-limit
// snapshot.
type QuotaStore interface {
	// PutQuotas stores snapshots by account, replacing older ones.
	// Snapshots of accounts that do not exist (removed meanwhile) are
	// skipped.
	PutQuotas(ctx context.Context, snaps map[AccountRef]QuotaSnapshot) error
	// ListQuotas returns every stored snapshot by account.
	ListQuotas(ctx context.Context) (map[AccountRef]QuotaSnapshot, error)
}

// RefreshLocker serialises token refreshes per linked account across every
// instance sharing the database: a refresh token works once, so two
// instances refreshing the same account at once would log it out.
type RefreshLocker interface {
	// LockRefresh blocks until the caller holds the account's refresh lock
	// or ctx ends (then it returns ctx's error). unlock releases it and must
	// be called exactly once. Holding the lock excludes every other holder
	// for the same account, in this process and in others; it does not block
	// other writes. The broker re-reads the bundle after taking the lock
	// and commits the rotated token (UpdateTokens) before releasing it. A
	// single-process engine may use an in-process mutex; a server engine
	// uses a lock that ends with the holder's connection, so a crashed
	// holder cannot keep it.
	LockRefresh(ctx context.Context, userID, accountID string) (unlock func(), err error)
}

// ChangeKind says what a Change is about.
type ChangeKind int

// Change kinds.
const (
	// ChangeUser: the user UserID was created, changed or deleted.
	ChangeUser ChangeKind = iota + 1
	// ChangeKey: the key KeyID (of UserID) was created, revoked, or had
	// its policy or usage reset point changed.
	ChangeKey
	// ChangeTokens: a token bundle of UserID (any of their accounts) was
	// stored, refreshed, reordered or deleted.
	ChangeTokens
	// ChangeAll: anything may have changed; reload everything.
	ChangeAll
	// ChangeKeyUsage: the token usage of the keys KeyIDs grew (a
	// KeyUsageStore wrote request logs with their tokens).
	ChangeKeyUsage
)

// Change is one write another instance made, as Store.Changes reports it.
type Change struct {
	Kind   ChangeKind
	UserID string
	KeyID  string
	// KeyIDs are the keys of a ChangeKeyUsage.
	KeyIDs []string
}
