package certstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/usemysub/caddy-codex-proxy/internal/pgtest"
)

// lockAsync calls Lock in the background; the channel yields its result.
func lockAsync(ctx context.Context, s *Storage, name string) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- s.Lock(ctx, name) }()
	return ch
}

func mustWait(t *testing.T, ch <-chan error, what string) {
	t.Helper()
	select {
	case err := <-ch:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: still waiting after 10 s", what)
	}
}

func mustBlock(t *testing.T, ch <-chan error, what string) {
	t.Helper()
	select {
	case err := <-ch:
		t.Fatalf("%s returned (%v) while the lock is held", what, err)
	case <-time.After(300 * time.Millisecond):
	}
}

// TestLockExcludes: two instances on one database; a lock held by one
// keeps the other waiting until Unlock, other names are free, and two
// goroutines of one instance exclude each other too.
func TestLockExcludes(t *testing.T) {
	ctx := testCtx(t)
	dsn := pgtest.Start(t).NewDB(t)
	a, b := open(t, Config{DSN: dsn}), open(t, Config{DSN: dsn})

	if err := a.Lock(ctx, "issue_cert_proxy.test"); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.TryLock(ctx, "issue_cert_proxy.test"); ok || err != nil {
		t.Fatalf("TryLock of a held lock = %v, %v", ok, err)
	}
	waiting := lockAsync(ctx, b, "issue_cert_proxy.test")
	mustBlock(t, waiting, "b.Lock")
	if ok, err := b.TryLock(ctx, "issue_cert_other.test"); !ok || err != nil {
		t.Fatalf("TryLock of a free name = %v, %v", ok, err)
	}
	if err := a.Unlock(ctx, "issue_cert_proxy.test"); err != nil {
		t.Fatal(err)
	}
	mustWait(t, waiting, "b.Lock after a.Unlock")

	// Now b holds it: a waits, within one instance too.
	again := lockAsync(ctx, a, "issue_cert_proxy.test")
	mustBlock(t, again, "a.Lock")
	if err := b.Unlock(ctx, "issue_cert_proxy.test"); err != nil {
		t.Fatal(err)
	}
	mustWait(t, again, "a.Lock after b.Unlock")
	same := lockAsync(ctx, a, "issue_cert_proxy.test")
	mustBlock(t, same, "a second a.Lock")
	if err := a.Unlock(ctx, "issue_cert_proxy.test"); err != nil {
		t.Fatal(err)
	}
	mustWait(t, same, "the second a.Lock")
	for _, s := range []*Storage{a, b} {
		for _, name := range []string{"issue_cert_proxy.test", "issue_cert_other.test"} {
			if err := s.Unlock(ctx, name); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := lockSessions(t, dsn); n != 0 {
		t.Fatalf("%d lock sessions left after every Unlock", n)
	}
}

// lockSessions counts the lock connections open on dsn's server.
func lockSessions(t *testing.T, dsn string) int {
	t.Helper()
	var n int
	for range 50 { // a closed session leaves pg_stat_activity shortly after
		if err := sql(t, dsn, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, lockAppName).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return n
}

// TestLockHolderGone: when the holder's session ends — its backend
// killed, or its instance closed — PostgreSQL releases the lock, the other
// instance gets it, and the old holder logs the loss at WARN.
func TestLockHolderGone(t *testing.T) {
	srv := pgtest.Start(t)
	tests := []struct {
		name string
		kill func(t *testing.T, dsn string, holder *Storage)
	}{
		{"backend terminated", func(t *testing.T, dsn string, _ *Storage) {
			var ok bool
			err := sql(t, dsn, `SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&ok)
			if err != nil || !ok {
				t.Fatalf("pg_terminate_backend: %v, %v", ok, err)
			}
		}},
		{"holder closed", func(t *testing.T, _ string, holder *Storage) { holder.Close() }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			dsn := srv.NewDB(t)
			core, logs := observer.New(zapcore.WarnLevel)
			a := open(t, Config{DSN: dsn, Logger: zap.New(core), LockCheckInterval: 50 * time.Millisecond})
			b := open(t, Config{DSN: dsn})
			if err := a.Lock(ctx, "renew"); err != nil {
				t.Fatal(err)
			}
			waiting := lockAsync(ctx, b, "renew")
			mustBlock(t, waiting, "b.Lock")
			tc.kill(t, dsn, a)
			mustWait(t, waiting, "b.Lock after the holder's session ended")
			if tc.name == "backend terminated" {
				deadline := time.Now().Add(5 * time.Second)
				for logs.FilterMessage("certificate storage lock lost").Len() == 0 && time.Now().Before(deadline) {
					time.Sleep(20 * time.Millisecond)
				}
				if logs.FilterMessage("certificate storage lock lost").FilterField(zap.String("lock", "renew")).Len() != 1 {
					t.Fatalf("no WARN about the lost lock: %v", logs.All())
				}
			}
			// The old holder's Unlock does not disturb the new holder.
			if err := a.Unlock(ctx, "renew"); err != nil {
				t.Fatalf("Unlock of a lost lock: %v", err)
			}
			if ok, _ := open(t, Config{DSN: dsn}).TryLock(ctx, "renew"); ok {
				t.Fatal("a third instance got the lock b holds")
			}
		})
	}
}

// TestLockContextCancel: a waiting Lock returns the context's error when
// it ends, and leaves no connection behind.
func TestLockContextCancel(t *testing.T) {
	ctx := testCtx(t)
	dsn := pgtest.Start(t).NewDB(t)
	a, b := open(t, Config{DSN: dsn}), open(t, Config{DSN: dsn})
	if err := a.Lock(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := b.Lock(wctx, "x")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock with an ended context: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Lock took %v to notice its context ended", d)
	}
	if err := a.Unlock(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if n := lockSessions(t, dsn); n != 0 {
		t.Fatalf("%d lock sessions left", n)
	}
}
