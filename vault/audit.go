package vault

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The audit log: who did what to which user, key or account, when, from
// where, and whether it was allowed. Entries are append-only through every
// API (there is no update and no delete but the retention purge), shared
// by every instance on one database, and outlive what they name: deleting
// a user leaves the entries about them. An entry never holds a secret: no
// key plaintext, no token, no session id, no sign-in link.

// DefaultAuditRetention is how long audit entries are kept when
// Limits.AuditRetention is zero: a year, the span a yearly access review
// looks back over.
const DefaultAuditRetention = 365 * 24 * time.Hour

// ErrNoAuditStore is what the audit methods fail with when the vault's
// engine keeps no audit log (it is not an AuditStore).
var ErrNoAuditStore = errors.New("vault: this storage engine keeps no audit log")

// AuditAction names what an entry records. The values are stable: they
// are stored, filtered on and exported.
type AuditAction string

// The actions the audit log records.
const (
	AuditSignIn           AuditAction = "sign-in"             // Detail: the method (link, oidc)
	AuditSignOutAll       AuditAction = "sign-out-everywhere" // every session of the user ended
	AuditKeyCreated       AuditAction = "key.created"
	AuditKeyRevoked       AuditAction = "key.revoked"
	AuditKeyPolicy        AuditAction = "key.policy-changed" // Detail: the policy as text
	AuditKeyUsageReset    AuditAction = "key.usage-reset"
	AuditAccountLinked    AuditAction = "account.linked"
	AuditAccountUnlinked  AuditAction = "account.unlinked"
	AuditAccountRelinked  AuditAction = "account.relinked"
	AuditAccountsOrdered  AuditAction = "account.reordered" // also the routing policy: Detail says which
	AuditUserCreated      AuditAction = "user.created"
	AuditUserDisabled     AuditAction = "user.disabled"
	AuditUserEnabled      AuditAction = "user.enabled"
	AuditSignupPolicy     AuditAction = "signup-policy.changed"
	AuditAdminViewedUser  AuditAction = "admin.viewed-user"
	AuditInviteSent       AuditAction = "user.invited"
	AuditAccountPolicySet AuditAction = "account.policy-changed"
)

// AuditActions lists every action, for filters and validation.
var AuditActions = []AuditAction{AuditSignIn, AuditSignOutAll, AuditKeyCreated, AuditKeyRevoked, AuditKeyPolicy,
	AuditKeyUsageReset, AuditAccountLinked, AuditAccountUnlinked, AuditAccountRelinked, AuditAccountsOrdered,
	AuditAccountPolicySet, AuditUserCreated, AuditUserDisabled, AuditUserEnabled, AuditInviteSent,
	AuditSignupPolicy, AuditAdminViewedUser}

// Actor kinds (AuditActor.Kind).
const (
	ActorUser     = "user"      // a signed-in user acting on their own account
	ActorAdmin    = "admin"     // a dashboard admin acting on someone's
	ActorCLI      = "cli"       // `caddy codex-proxy …` on a vault file it opened
	ActorAdminAPI = "admin-api" // a call to Caddy's admin API (the CLI against a running Caddy, or a script)
)

// Outcomes (AuditEntry.Outcome).
const (
	OutcomeOK      = "ok"      // it happened
	OutcomeRefused = "refused" // a check refused it; Reason says why
	OutcomeFailed  = "failed"  // it was allowed but did not complete; Reason says why
)

// AuditActor is who acted. The zero value is an unknown actor.
type AuditActor struct {
	// Kind is ActorUser, ActorAdmin, ActorCLI or ActorAdminAPI.
	Kind string `json:"kind"`
	// UserID and Email name the dashboard user (user or admin).
	UserID string `json:"user_id,omitempty"`
	Email  string `json:"email,omitempty"`
	// OSUser is the operating-system user of the CLI, as the CLI knew it
	// (through the admin API it is what the caller claimed).
	OSUser string `json:"os_user,omitempty"`
	// Via is "admin-api" for the CLI reaching a running Caddy through its
	// admin API; empty otherwise.
	Via string `json:"via,omitempty"`
}

// String describes the actor for people: "admin ann@example.com",
// "cli (os user root)".
func (a AuditActor) String() string {
	s := a.Kind
	if s == "" {
		s = "unknown"
	}
	if a.Via != "" {
		s += " via " + a.Via
	}
	if a.Email != "" {
		s += " " + a.Email
	}
	if a.OSUser != "" {
		s += " (os user " + a.OSUser + ")"
	}
	return s
}

// AuditTarget is what an entry is about; every field may be empty.
type AuditTarget struct {
	UserID    string `json:"user_id,omitempty"`
	Email     string `json:"email,omitempty"`
	KeyID     string `json:"key_id,omitempty"`
	AccountID string `json:"account_id,omitempty"`
}

// AuditEntry is one line of the audit log.
type AuditEntry struct {
	// ID sorts as Time does (NewAuditID); the store's key.
	ID     string      `json:"id"`
	Time   time.Time   `json:"time"`
	Actor  AuditActor  `json:"actor"`
	Action AuditAction `json:"action"`
	// Detail adds what the action needs: a sign-in's method, a policy's
	// new value, an account's new order. Never a secret.
	Detail string      `json:"detail,omitempty"`
	Target AuditTarget `json:"target"`
	// Source is the address the request came from ("" for the CLI).
	Source string `json:"source,omitempty"`
	// Outcome is OutcomeOK, OutcomeRefused or OutcomeFailed; Reason the
	// message of a refusal or a failure.
	Outcome string `json:"outcome"`
	Reason  string `json:"reason,omitempty"`
}

// AuditQuery selects entries; the zero value is the newest
// DefaultAuditLimit entries.
type AuditQuery struct {
	// Since and Until bound Time (Since inclusive, Until exclusive); zero
	// is unbounded.
	Since, Until time.Time
	// UserID and Email keep entries by or about one user: the actor's or
	// the target's id is UserID, or their email is Email (an entry written
	// before its user had an id names the email only). Either may be
	// empty; with both, an entry matching either is kept.
	UserID, Email string
	// TargetUserID keeps entries about the user only.
	TargetUserID string
	// ActorKind keeps entries by that kind of actor.
	ActorKind string
	// Action keeps one action.
	Action AuditAction
	// Before continues a listing: only entries with an id below it (the
	// last id of the previous page).
	Before string
	// Limit bounds the answer (default DefaultAuditLimit, at most
	// MaxAuditLimit).
	Limit int
}

// Audit listing bounds.
const (
	DefaultAuditLimit = 100
	MaxAuditLimit     = 1000
)

// Match reports whether e passes q's filters (not Limit), as the engines
// apply them; bbolt uses it directly, and tests check PostgreSQL against it.
func (q AuditQuery) Match(e AuditEntry) bool {
	switch {
	case !q.Since.IsZero() && e.Time.Before(q.Since):
	case !q.Until.IsZero() && !e.Time.Before(q.Until):
	case (q.UserID != "" || q.Email != "") && !q.aboutUser(e):
	case q.TargetUserID != "" && e.Target.UserID != q.TargetUserID:
	case q.ActorKind != "" && e.Actor.Kind != q.ActorKind:
	case q.Action != "" && e.Action != q.Action:
	case q.Before != "" && e.ID >= q.Before:
	default:
		return true
	}
	return false
}

// aboutUser is the UserID/Email filter.
func (q AuditQuery) aboutUser(e AuditEntry) bool {
	if q.UserID != "" && (e.Actor.UserID == q.UserID || e.Target.UserID == q.UserID) {
		return true
	}
	return q.Email != "" && (e.Actor.Email == q.Email || e.Target.Email == q.Email)
}

// AuditStore is the optional part of a Store that keeps the audit log.
// Both engines in this module implement it. It has no update and no
// delete of one entry: the log is append-only.
type AuditStore interface {
	// AppendAudit stores e; ErrDuplicate if its id is taken.
	AppendAudit(ctx context.Context, e AuditEntry) error
	// ListAudit returns up to q.Limit entries matching q, newest (highest
	// id) first. A Limit of 0 or less is DefaultAuditLimit.
	ListAudit(ctx context.Context, q AuditQuery) ([]AuditEntry, error)
	// PurgeAudit deletes entries older than before and returns how many;
	// running it twice, or on two instances at once, is harmless.
	PurgeAudit(ctx context.Context, before time.Time) (int, error)
	// ExportAudit returns every entry, for a copy, in no order.
	ExportAudit(ctx context.Context) ([]AuditEntry, error)
}

// NewAuditID returns an id that sorts by t (to the nanosecond, for the
// next 500 years) and then randomly: 16 hex digits of t's Unix
// nanoseconds, a dash, 8 random hex digits.
func NewAuditID(t time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	ns := t.UnixNano()
	if ns < 0 {
		ns = 0
	}
	return fmt.Sprintf("%016x-%s", uint64(ns), hex.EncodeToString(b[:]))
}

// audits is the engine's AuditStore, or ErrNoAuditStore.
func (v *Vault) audits() (AuditStore, error) {
	as, ok := v.store.(AuditStore)
	if !ok {
		return nil, ErrNoAuditStore
	}
	return as, nil
}

// KeepsAudit reports whether the engine keeps an audit log.
func (v *Vault) KeepsAudit() bool { _, err := v.audits(); return err == nil }

// maxAuditField bounds each text field of an entry, so a long reason or a
// hostile header cannot grow the log without bound.
const maxAuditField = 512

// Audit appends e to the audit log, filling in its id and time (now) and
// an empty outcome as OutcomeOK. It fails with ErrNoAuditStore on an
// engine without one, or with the store's error: a caller that must not
// act unrecorded acts only after a nil.
func (v *Vault) Audit(ctx context.Context, e AuditEntry) (AuditEntry, error) {
	as, err := v.audits()
	if err != nil {
		return e, err
	}
	if e.Action == "" {
		return e, errors.New("vault: an audit entry needs an action")
	}
	if e.Time.IsZero() {
		e.Time = v.now()
	}
	e.Time = e.Time.UTC()
	if e.ID == "" {
		// Strictly increasing in this process, so two entries in one
		// nanosecond (or a clock stepping back) keep their order.
		for {
			last := v.lastAudit.Load()
			t := e.Time
			if t.UnixNano() <= last {
				t = time.Unix(0, last+1).UTC()
			}
			if v.lastAudit.CompareAndSwap(last, t.UnixNano()) {
				e.ID = NewAuditID(t)
				break
			}
		}
	}
	if e.Outcome == "" {
		e.Outcome = OutcomeOK
	}
	for _, f := range []*string{&e.Detail, &e.Reason, &e.Source, &e.Actor.OSUser, &e.Actor.Email, &e.Target.Email} {
		*f = clip(*f, maxAuditField)
	}
	if err := as.AppendAudit(ctx, e); err != nil {
		return e, fmt.Errorf("vault: writing the audit log: %w", err)
	}
	return e, nil
}

// AuditLog lists entries matching q, newest first.
func (v *Vault) AuditLog(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	as, err := v.audits()
	if err != nil {
		return nil, err
	}
	q.Limit = AuditLimit(q.Limit)
	return as.ListAudit(ctx, q)
}

// AuditLimit is the limit a listing applies for a requested n (the
// default for n <= 0, the cap above it): engines call it so both agree.
func AuditLimit(n int) int {
	if n <= 0 {
		return DefaultAuditLimit
	}
	return min(n, MaxAuditLimit)
}

// SetAuditRetention changes how long audit entries are kept; the hourly
// purge applies it (d <= 0 means DefaultAuditRetention). Reconfigure calls
// it when Settings.AuditRetention changes.
func (v *Vault) SetAuditRetention(d time.Duration) {
	if d <= 0 {
		d = DefaultAuditRetention
	}
	v.auditRetention.Store(int64(d))
}

// AuditRetention is the retention in force.
func (v *Vault) AuditRetention() time.Duration {
	if d := v.auditRetention.Load(); d > 0 {
		return time.Duration(d)
	}
	return v.opts.AuditRetention
}

// purgeAudit deletes entries older than the retention.
func (v *Vault) purgeAudit() (int, error) {
	as, err := v.audits()
	if err != nil {
		return 0, nil
	}
	return as.PurgeAudit(context.Background(), v.now().Add(-v.AuditRetention()))
}

// clip cuts s to at most n bytes on a rune boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// A cut rune becomes invalid UTF-8, which ToValidUTF8 drops.
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// ParseAuditTime reads a --since/--until value: an RFC 3339 time, or a
// duration back from now ("24h", "90m", "7d" for days).
func ParseAuditTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		// A century at most: more days would overflow a Duration.
		if n, err := strconv.Atoi(d); err == nil && n >= 0 && n <= 36525 {
			return now.Add(-time.Duration(n) * 24 * time.Hour).UTC(), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%q is neither a time (RFC 3339, e.g. 2026-12-01T00:00:00Z) nor a duration back from now (24h, 7d)", s)
}
