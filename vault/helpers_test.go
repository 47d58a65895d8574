package vault

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/claims"
)

// Test keys in three encodings of different bytes.
var (
	testKey1 = base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))
	testKey2 = base64.StdEncoding.EncodeToString([]byte(strings.Repeat("z", 32)))
)

const testPepper = "test-pepper-0123456789abcdef"

// t0 is the fake clock's start.
var t0 = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testOptions are fast options on a fake clock; sleeps are recorded, not
// slept.
func testOptions(clock *fakeClock) Options {
	return Options{
		EncryptionKeys:   []string{testKey1},
		Pepper:           testPepper,
		Now:              clock.Now,
		Sleep:            func(ctx context.Context, d time.Duration) error { return ctx.Err() },
		KeyFlushInterval: time.Hour, // tests flush by hand
		OpenTimeout:      200 * time.Millisecond,
	}
}

// openAt opens a vault at path and closes it when the test ends.
func openAt(t testing.TB, path string, opts Options) *Vault {
	t.Helper()
	v, err := openFile(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

// newTestVault opens a vault in a temp dir with testOptions, changed by mod.
func newTestVault(t testing.TB, mod func(*Options)) (*Vault, string, *fakeClock) {
	t.Helper()
	clock := newClock()
	opts := testOptions(clock)
	if mod != nil {
		mod(&opts)
	}
	path := filepath.Join(t.TempDir(), "vault.db")
	return openAt(t, path, opts), path, clock
}

// mustUser creates a user or fails the test.
func mustUser(t testing.TB, v *Vault, email string) User {
	t.Helper()
	u, err := v.CreateUser(email, "Test User")
	if err != nil {
		t.Fatalf("CreateUser(%q): %v", email, err)
	}
	return u
}

// accessJWT mints an access token for account acc expiring at exp.
func accessJWT(acc string, exp time.Time) string {
	return claims.Encode(claims.Claims{AccountID: acc, PlanType: "plus", Email: "chatgpt@example.com", Expiry: exp})
}

// bundle is a linked bundle with refresh token rt and an access token
// expiring at exp.
func bundle(rt string, exp time.Time) TokenBundle {
	return TokenBundle{
		IDToken:      claims.Encode(claims.Claims{AccountID: "acc-1", PlanType: "plus", Email: "chatgpt@example.com", Expiry: exp}),
		AccessToken:  accessJWT("acc-1", exp),
		RefreshToken: rt,
		LastRefresh:  t0,
	}
}

// permanentErr is a refresh error the vault must treat as final.
type permanentErr struct{ code string }

func (e *permanentErr) Error() string   { return "token endpoint: " + e.code }
func (e *permanentErr) Permanent() bool { return true }

// transientErr is a refresh error worth retrying.
type transientErr struct{ status int }

func (e *transientErr) Error() string   { return fmt.Sprintf("token endpoint: HTTP %d", e.status) }
func (e *transientErr) Permanent() bool { return false }

// rotatingRefresher behaves like the real token endpoint: each refresh
// token works once and reusing one is a permanent error.
type rotatingRefresher struct {
	clock    *fakeClock
	lifetime time.Duration
	delay    time.Duration
	gate     chan struct{} // if set, Refresh waits for it to close
	entered  chan struct{} // if set, receives once per call on entry
	failures []error       // returned (in order) before rotating

	calls  atomic.Int32
	mu     sync.Mutex
	valid  map[string]bool
	n      int
	ctxErr error // ctx.Err() seen after the gate
}

func newRotating(clock *fakeClock, initial string) *rotatingRefresher {
	return &rotatingRefresher{clock: clock, lifetime: time.Hour, valid: map[string]bool{initial: true}}
}

func (r *rotatingRefresher) Refresh(ctx context.Context, rt string) (RefreshedTokens, error) {
	r.calls.Add(1)
	if r.entered != nil {
		r.entered <- struct{}{}
	}
	if r.delay > 0 {
		time.Sleep(r.delay)
	}
	if r.gate != nil {
		<-r.gate
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ctxErr = ctx.Err()
	if len(r.failures) > 0 {
		err := r.failures[0]
		r.failures = r.failures[1:]
		return RefreshedTokens{}, err
	}
	if !r.valid[rt] {
		return RefreshedTokens{}, &permanentErr{"refresh_token_reused"}
	}
	delete(r.valid, rt)
	r.n++
	next := fmt.Sprintf("rt-%d", r.n)
	r.valid[next] = true
	exp := r.clock.Now().Add(r.lifetime)
	return RefreshedTokens{
		IDToken:      claims.Encode(claims.Claims{AccountID: "acc-1", PlanType: "pro", Email: "chatgpt@example.com", Expiry: exp}),
		AccessToken:  accessJWT("acc-1", exp) + fmt.Sprintf("-%d", r.n),
		RefreshToken: next,
		ExpiresIn:    r.lifetime,
	}, nil
}

// isValid reports whether rt would be accepted now.
func (r *rotatingRefresher) isValid(rt string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.valid[rt]
}

// storedBundle reads and decrypts what is on disk, bypassing the cache.
func storedBundle(t testing.TB, v *Vault, userID string) TokenBundle {
	t.Helper()
	b, err := v.readBundle(context.Background(), first(t, v, userID))
	if err != nil {
		t.Fatalf("readBundle: %v", err)
	}
	return b
}

// wantErr fails unless errors.Is(err, target).
func wantErr(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got error %v, want %v", err, target)
	}
}
