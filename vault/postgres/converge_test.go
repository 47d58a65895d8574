package postgres

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/usemysub/caddy-codex-proxy/internal/pgtest"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// openInstanceWith is openInstance with store options.
func openInstanceWith(t testing.TB, dsn string, so Options, mod func(*vault.Options)) instance {
	t.Helper()
	s, err := Open(context.Background(), dsn, so)
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

// dbName is the database a pgtest DSN names.
func dbName(dsn string) string {
	name := dsn[strings.LastIndexByte(dsn, '/')+1:]
	name, _, _ = strings.Cut(name, "?")
	return name
}

// admin runs sql on the cluster's postgres database, as an operator would.
func admin(t testing.TB, srv *pgtest.Server, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, srv.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// poolPIDs are the backends of the store's idle pooled connections.
func poolPIDs(t testing.TB, s *Store) []uint32 {
	t.Helper()
	var pids []uint32
	for _, c := range s.pool.AcquireAllIdle(context.Background()) {
		pids = append(pids, c.Conn().PgConn().PID())
		c.Release()
	}
	if len(pids) == 0 {
		t.Fatal("the store has no idle pooled connection")
	}
	return pids
}

// TestRevokeConvergesWhenRereadFails: B's pooled connections are cut, and
// cannot be reopened, at the moment A revokes a key. B's listener hears
// the change but re-reading the key fails; once connections work again B
// refuses the key, within its resync period of the revoke. A key revoked
// with no notification at all (a write by hand, a lost NOTIFY) is refused
// within the resync period too.
func TestRevokeConvergesWhenRereadFails(t *testing.T) {
	const resync = 3 * time.Second
	srv := pgtest.Start(t)
	dsn := srv.NewDB(t)
	a := openInstance(t, dsn, nil)
	b := openInstance(t, dsn, func(o *vault.Options) { o.ResyncInterval = resync })
	u, err := a.v.CreateUser("alice@example.com", "Alice")
	if err != nil {
		t.Fatal(err)
	}
	plain1, k1, err := a.v.CreateKey(u.ID, "one")
	if err != nil {
		t.Fatal(err)
	}
	plain2, k2, err := a.v.CreateKey(u.ID, "two")
	if err != nil {
		t.Fatal(err)
	}
	accepts := func(key string) bool { _, _, err := b.v.VerifyKey(key); return err == nil }
	refuses := func(key string) func() bool {
		return func() bool { _, _, err := b.v.VerifyKey(key); return errors.Is(err, vault.ErrKeyInvalid) }
	}
	eventually(t, propagation, "B accepts A's keys", func() bool { return accepts(plain1) && accepts(plain2) })

	db := dbName(dsn)
	pids := poolPIDs(t, b.s)
	admin(t, srv, `ALTER DATABASE `+db+` ALLOW_CONNECTIONS false`)
	t.Cleanup(func() { admin(t, srv, `ALTER DATABASE `+db+` ALLOW_CONNECTIONS true`) })
	for _, pid := range pids {
		terminate(t, srv.DSN("postgres"), pid)
	}
	failed := b.v.ChangeStats().RereadsFailed
	revoked := time.Now()
	if err := a.v.RevokeKey(u.ID, k1.ID); err != nil {
		t.Fatalf("A revoking over its open connection: %v", err)
	}
	eventually(t, 5*time.Second, "B's re-read to fail", func() bool { return b.v.ChangeStats().RereadsFailed > failed })
	if !accepts(plain1) {
		t.Fatal("B refused the key without reading it: the test no longer exercises a failed re-read")
	}
	time.Sleep(1500*time.Millisecond - time.Since(revoked)) // retries keep failing
	admin(t, srv, `ALTER DATABASE `+db+` ALLOW_CONNECTIONS true`)
	eventually(t, resync-time.Since(revoked), "B refuses the key whose re-read failed", refuses(plain1))
	t.Logf("revoked on A → refused on B after %s; %+v", time.Since(revoked).Round(time.Millisecond), b.v.ChangeStats())
	if !accepts(plain2) {
		t.Fatal("B refuses an untouched key")
	}

	// Revoked with no notification: only the periodic resync can tell B.
	// First let the retries of the part above finish, so none of them
	// re-reads the user's keys after the revoke below.
	eventually(t, 10*time.Second, "B's pending retries to finish", func() bool { return b.v.ChangeStats().Pending == 0 })
	time.Sleep(300 * time.Millisecond)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `UPDATE codex_keys SET disabled = true WHERE id = $1`, k2.ID); err != nil {
		t.Fatal(err)
	}
	revoked = time.Now()
	resyncs := b.v.ChangeStats().Resyncs
	eventually(t, resync+time.Second, "B refuses a key revoked without a notification", refuses(plain2))
	t.Logf("unannounced revoke → refused on B after %s", time.Since(revoked).Round(time.Millisecond))
	// The resync counts itself once it has applied everything it read.
	eventually(t, time.Second, "the resync that caught it to be counted", func() bool { return b.v.ChangeStats().Resyncs > resyncs })
}

// TestReloadAfterRestartIsRetried: B's listener is down while A revokes a
// key, then the database restarts. When B's listener is back its full
// reload fails (the keys table is locked past B's query timeout, as under
// load just after a restart); B retries it until it works and then refuses
// the key, with periodic resyncs off.
func TestReloadAfterRestartIsRetried(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := srv.NewDB(t)
	a := openInstance(t, dsn, nil)
	b := openInstanceWith(t, dsn, Options{QueryTimeout: 500 * time.Millisecond}, func(o *vault.Options) { o.ResyncInterval = -1 })
	u, err := a.v.CreateUser("alice@example.com", "Alice")
	if err != nil {
		t.Fatal(err)
	}
	plain, k, err := a.v.CreateKey(u.ID, "laptop")
	if err != nil {
		t.Fatal(err)
	}
	accepts := func() bool { _, _, err := b.v.VerifyKey(plain); return err == nil }
	eventually(t, propagation, "B accepts A's key", accepts)

	entered, release := make(chan struct{}), make(chan struct{})
	hook := func() {
		entered <- struct{}{}
		<-release
	}
	b.s.testHookBeforeListen.Store(&hook)
	terminate(t, dsn, b.s.listenPID.Load())
	<-entered
	b.s.testHookBeforeListen.Store(nil)
	if err := a.v.RevokeKey(u.ID, k.ID); err != nil {
		t.Fatal(err)
	}
	srv.Restart(100 * time.Millisecond)

	ctx := context.Background()
	lock, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close(ctx)
	tx, err := lock.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE codex_keys IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	failed := b.v.ChangeStats().ResyncsFailed
	close(release)
	eventually(t, 10*time.Second, "B's reload after the restart to fail", func() bool { return b.v.ChangeStats().ResyncsFailed > failed })
	if !accepts() {
		t.Fatal("B refused the key though its reload failed: the test no longer exercises the retry")
	}
	time.Sleep(time.Second) // a retry or two fail as well
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	unlocked := time.Now()
	eventually(t, 5*time.Second, "B refuses the key once its reload is retried", func() bool {
		_, _, err := b.v.VerifyKey(plain)
		return errors.Is(err, vault.ErrKeyInvalid)
	})
	t.Logf("refused %s after the lock was released", time.Since(unlocked).Round(time.Millisecond))
	// The keys come first in a reload; the rest of it may still be running.
	eventually(t, 5*time.Second, "the reload to complete", func() bool { return b.v.ChangeStats().Resyncs > 0 })
	if st := b.v.ChangeStats(); st.Retries == 0 || st.Pending != 0 {
		t.Fatalf("stats = %+v, want a retried reload", st)
	}
}
