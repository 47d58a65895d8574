package vault

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Defaults for the zero values in Options.
const (
	DefaultLogRetention     = 30 * 24 * time.Hour
	DefaultRefreshSkew      = 5 * time.Minute
	DefaultRefreshTimeout   = 30 * time.Second
	DefaultOpenTimeout      = time.Second
	DefaultLogFlushInterval = 200 * time.Millisecond
	DefaultLogBatchSize     = 512
	DefaultLogBuffer        = 16384
	DefaultKeyFlushInterval = 15 * time.Second
	// DefaultQuotaFlushInterval is how often changed quota snapshots are
	// written: each user's at most once per interval.
	DefaultQuotaFlushInterval = 30 * time.Second
	// DefaultResyncInterval is how often a Vault on a shared store
	// re-reads everything it caches, bounding how long a lost change
	// notification can leave it stale.
	DefaultResyncInterval = 2 * time.Minute
)

// minPepperLen keeps the API-key HMAC from being keyed by a guessable word.
const minPepperLen = 16

// Options configures a Vault. EncryptionKeys and Pepper are required; every
// other field has a default.
type Options struct {
	// EncryptionKeys are AES-256 keys for token bundles, each 32 bytes given
	// as base64url, standard base64 or 64 hex characters (see ParseKey). The
	// first encrypts; all decrypt, so a new key can be put first and the old
	// one kept second until ReencryptAll has run.
	EncryptionKeys []string
	// Pepper keys the HMAC-SHA-256 that API keys are stored under; at least
	// 16 bytes. Changing it invalidates every API key.
	Pepper string
	// LogRetention is how long request-log records are kept (default 30 days).
	LogRetention time.Duration
	// Now is the clock; tests pass a fake one (default time.Now).
	Now func() time.Time
	// Refresher exchanges refresh tokens; without one, stale tokens fail
	// with ErrRefreshUnavailable.
	Refresher Refresher
	// Logger receives operational messages with key/value pairs, at a
	// level that says what the operator must do: ERROR for lost data (a
	// refreshed token or request logs not saved), WARN for degraded service,
	// INFO for routine events. It never gets secrets (default: discard).
	Logger *slog.Logger
	// RefreshSkew is how long before the access token's expiry it counts as
	// stale (default 5 minutes).
	RefreshSkew time.Duration
	// RefreshTimeout bounds one refresh including retries, independent of the
	// caller's context (default 30 s).
	RefreshTimeout time.Duration
	// Sleep waits between refresh retries; tests replace it to avoid real
	// back-off (default: a timer that also stops when ctx ends).
	Sleep func(ctx context.Context, d time.Duration) error
	// OpenTimeout is how long Open waits for the file lock that another
	// process may hold (default 1 s).
	OpenTimeout time.Duration
	// LogFlushInterval is the longest a request-log record waits in memory
	// before it is committed (default 200 ms).
	LogFlushInterval time.Duration
	// LogBatchSize commits a batch early once it has this many records
	// (default 512).
	LogBatchSize int
	// LogBuffer is how many records may wait for the writer before
	// LogRequest starts dropping them (default 16384).
	LogBuffer int
	// KeyFlushInterval is how often API-key last-used times are written
	// (default 15 s).
	KeyFlushInterval time.Duration
	// QuotaFlushInterval is how often changed rate-limit snapshots
	// (RecordQuota) are written: at most one write per user per interval,
	// all users in one commit (default 30 s).
	QuotaFlushInterval time.Duration
	// InstanceHeartbeat is how often an instance on a store shared by
	// several (an InstanceRegistry) records the encryption keys it holds
	// (default 10 s); one that misses 3 heartbeats stops counting.
	InstanceHeartbeat time.Duration
	// InstanceName names this instance to operators in the registry and
	// in the messages of the others (default host name:pid).
	InstanceName string
	// ResyncInterval is how often a Vault on a store shared by several
	// instances (one whose Changes is not nil, such as PostgreSQL)
	// re-reads the users, API keys, token bundles and key usage it caches
	// and reconciles its memory with them, so that a change whose
	// notification was lost (or whose re-read kept failing) is in effect
	// within this interval. One resync is four queries whatever the number
	// of records; it keeps in-memory counters and last-used times. Zero
	// means the default (2 minutes); a negative value turns periodic
	// resyncs off, leaving the full reload after a listener reconnect. A
	// store without Changes (bbolt) never resyncs: it has no other writer.
	ResyncInterval time.Duration
	// Limits bound the stored responses (retention, per-response and
	// per-user caps); Reconfigure changes them on an open vault. The zero
	// value is the defaults.
	Limits
	// SettingsTTL is how long the Vault trusts its copy of an operator
	// setting (the sign-up override, settings.go) before it reads the
	// store again: how long another instance's change may take to apply
	// here (default 5 s; negative: read every time).
	SettingsTTL time.Duration
}

// Check reports whether New would accept o, without opening anything. An
// engine that takes a lock (a bbolt file) checks the options first, so a
// bad key fails fast and leaves the file free.
func (o Options) Check() error {
	o, err := o.withDefaults()
	if err != nil {
		return err
	}
	_, err = newKeyring(o.EncryptionKeys)
	return err
}

// withDefaults validates o and fills in its zero values.
func (o Options) withDefaults() (Options, error) {
	if len(o.EncryptionKeys) == 0 {
		return o, errors.New("vault: Options.EncryptionKeys needs at least one 32-byte key")
	}
	if len(o.Pepper) < minPepperLen {
		return o, fmt.Errorf("vault: Options.Pepper must be at least %d bytes", minPepperLen)
	}
	if o.LogRetention <= 0 {
		o.LogRetention = DefaultLogRetention
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.RefreshSkew <= 0 {
		o.RefreshSkew = DefaultRefreshSkew
	}
	if o.RefreshTimeout <= 0 {
		o.RefreshTimeout = DefaultRefreshTimeout
	}
	if o.Sleep == nil {
		o.Sleep = sleepCtx
	}
	if o.OpenTimeout <= 0 {
		o.OpenTimeout = DefaultOpenTimeout
	}
	if o.LogFlushInterval <= 0 {
		o.LogFlushInterval = DefaultLogFlushInterval
	}
	if o.LogBatchSize <= 0 {
		o.LogBatchSize = DefaultLogBatchSize
	}
	if o.LogBuffer <= 0 {
		o.LogBuffer = DefaultLogBuffer
	}
	if o.KeyFlushInterval <= 0 {
		o.KeyFlushInterval = DefaultKeyFlushInterval
	}
	if o.QuotaFlushInterval <= 0 {
		o.QuotaFlushInterval = DefaultQuotaFlushInterval
	}
	if o.InstanceHeartbeat <= 0 {
		o.InstanceHeartbeat = DefaultInstanceHeartbeat
	}
	if o.InstanceName == "" {
		o.InstanceName = instanceName()
	}
	if o.ResyncInterval == 0 {
		o.ResyncInterval = DefaultResyncInterval
	}
	if err := o.Limits.Validate(); err != nil {
		return o, err
	}
	o.Limits = o.Limits.withDefaults()
	if o.SettingsTTL == 0 {
		o.SettingsTTL = DefaultSettingsTTL
	}
	return o, nil
}

// sleepCtx waits for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
