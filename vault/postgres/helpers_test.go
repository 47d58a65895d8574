package postgres

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/usemysub/caddy-codex-proxy/claims"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

var (
	testKey    = base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))
	testPepper = "test-pepper-0123456789abcdef"
)

// instance is one proxy instance's Vault and the Store under it.
type instance struct {
	v *vault.Vault
	s *Store
}

// openInstance opens a Store on dsn and a Vault on it, both closed when
// the test ends.
func openInstance(t testing.TB, dsn string, mod func(*vault.Options)) instance {
	t.Helper()
	s, err := Open(context.Background(), dsn, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	opts := vault.Options{
		EncryptionKeys:   []string{testKey},
		Pepper:           testPepper,
		KeyFlushInterval: time.Hour,
		Sleep:            func(ctx context.Context, d time.Duration) error { return ctx.Err() },
	}
	if mod != nil {
		mod(&opts)
	}
	v, err := vault.New(s, opts)
	if err != nil {
		s.Close()
		t.Fatalf("vault.New: %v", err)
	}
	t.Cleanup(func() { v.Close() })
	return instance{v: v, s: s}
}

// bundle is a linked login with refresh token rt and an access token
// expiring at exp.
func bundle(rt string, exp time.Time) vault.TokenBundle {
	c := claims.Claims{AccountID: "acc-1", PlanType: "plus", Email: "chatgpt@example.com", Expiry: exp}
	return vault.TokenBundle{IDToken: claims.Encode(c), AccessToken: claims.Encode(c), RefreshToken: rt, LastRefresh: time.Now()}
}

// endpoint behaves like the real token endpoint shared by every instance:
// each refresh token works once, and presenting a spent one is a permanent
// error (in reality it may log the user out).
type endpoint struct {
	// hold, if set, makes a call wait until it is closed or the call's
	// context ends (then it fails without spending the token, like a
	// request that never reached the endpoint).
	hold    chan struct{}
	entered chan string // if set, gets the token of each call on entry

	// holdCalls is how many calls, counting from the first, hold waits for.
	holdCalls int32
	delay     time.Duration

	calls  atomic.Int32
	mu     sync.Mutex
	valid  map[string]bool
	spent  map[string]int // presentations of tokens that were already used
	n      int
	prefix string
}

func newEndpoint(initial string) *endpoint {
	return &endpoint{valid: map[string]bool{initial: true}, spent: map[string]int{}, prefix: "rt"}
}

// permanent is the endpoint's "refresh_token_reused".
type permanent struct{}

func (permanent) Error() string   { return "token endpoint: refresh_token_reused" }
func (permanent) Permanent() bool { return true }

func (e *endpoint) Refresh(ctx context.Context, rt string) (vault.RefreshedTokens, error) {
	n := e.calls.Add(1)
	if e.entered != nil {
		e.entered <- rt
	}
	time.Sleep(e.delay)
	if e.hold != nil && n <= e.holdCalls {
		select {
		case <-e.hold:
		case <-ctx.Done():
			return vault.RefreshedTokens{}, ctx.Err()
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.valid[rt] {
		e.spent[rt]++
		return vault.RefreshedTokens{}, permanent{}
	}
	delete(e.valid, rt)
	e.n++
	next := fmt.Sprintf("%s-%d", e.prefix, e.n)
	e.valid[next] = true
	exp := time.Now().Add(time.Hour)
	c := claims.Claims{AccountID: "acc-1", PlanType: "pro", Email: "chatgpt@example.com", Expiry: exp}
	return vault.RefreshedTokens{IDToken: claims.Encode(c), AccessToken: claims.Encode(c) + fmt.Sprintf("-%d", e.n), RefreshToken: next, ExpiresIn: time.Hour}, nil
}

// reused reports how often a spent refresh token was presented.
func (e *endpoint) reused() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, c := range e.spent {
		n += c
	}
	return n
}

// terminate ends a backend from another connection, as an operator's
// pg_terminate_backend or a network cut would.
func terminate(t testing.TB, dsn string, pid uint32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_terminate_backend($1)`, int32(pid)).Scan(&ok); err != nil || !ok {
		t.Fatalf("pg_terminate_backend(%d): %v, %v", pid, ok, err)
	}
}

// eventually polls cond every 10 ms until it holds or d passes, and
// returns how long it took.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}
