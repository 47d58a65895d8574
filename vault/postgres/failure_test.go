package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/internal/pgtest"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// failFast is how quickly a call must fail while the database is down.
const failFast = 2 * time.Second

// TestDatabaseDown: with PostgreSQL stopped, writes and refreshes fail
// within two seconds with an error wrapping vault.ErrUnavailable, while
// key checks keep working from memory. Once it is back, service resumes
// without a restart, change notifications included.
func TestDatabaseDown(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := srv.NewDB(t)
	ep := newEndpoint("rt-0")
	inst := openInstance(t, dsn, func(o *vault.Options) { o.Refresher = ep })
	u, err := inst.v.CreateUser("alice@example.com", "Alice")
	if err != nil {
		t.Fatal(err)
	}
	key, k, err := inst.v.CreateKey(u.ID, "laptop")
	if err != nil {
		t.Fatal(err)
	}
	if err := inst.v.PutTokens(u.ID, bundle("rt-0", time.Now().Add(-time.Minute))); err != nil {
		t.Fatal(err)
	}

	srv.Stop()
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"create user", func() error { _, err := inst.v.CreateUser("bob@example.com", "Bob"); return err }},
		{"revoke key", func() error { return inst.v.RevokeKey(u.ID, k.ID) }},
		{"request log", func() error { _, err := inst.v.RecentRequests("", time.Time{}, 10, vault.StatusAll); return err }},
		{"refresh", func() error { _, _, err := inst.v.AccessToken(context.Background(), u.ID, false); return err }},
		{"sign in", func() error { _, err := inst.v.CreateSession(u.ID, time.Hour); return err }},
	} {
		start := time.Now()
		err := tc.call()
		took := time.Since(start)
		if !errors.Is(err, vault.ErrUnavailable) {
			t.Fatalf("%s with the database down: %v, want vault.ErrUnavailable", tc.name, err)
		}
		if took > failFast {
			t.Fatalf("%s took %s to fail, want under %s", tc.name, took, failFast)
		}
		t.Logf("%s failed after %s: %v", tc.name, took.Round(time.Millisecond), err)
	}
	if _, _, err := inst.v.VerifyKey(key); err != nil {
		t.Fatalf("key check with the database down: %v", err)
	}
	if n := ep.calls.Load(); n != 0 {
		t.Fatalf("refreshed %d times without the refresh lock", n)
	}

	srv.Start()
	eventually(t, 10*time.Second, "writes work again", func() bool {
		_, err := inst.v.CreateUser("bob@example.com", "Bob")
		return err == nil
	})
	if tok, _, err := inst.v.AccessToken(context.Background(), u.ID, false); err != nil || !strings.HasSuffix(tok, "-1") {
		t.Fatalf("refresh after the database came back: %v", err)
	}
	// The listener came back too: another instance's revoke arrives.
	other := openInstance(t, dsn, nil)
	if err := other.v.RevokeKey(u.ID, k.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "a revoke from another instance after the outage", func() bool {
		_, _, err := inst.v.VerifyKey(key)
		return errors.Is(err, vault.ErrKeyInvalid)
	})
}

// TestOpenErrorsHideThePassword: whatever goes wrong opening the store,
// the DSN's password is not in the error.
func TestOpenErrorsHideThePassword(t *testing.T) {
	const secret = "S3cretPassw0rd"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := l.Addr().(*net.TCPAddr).Port
	l.Close()
	for _, tc := range []struct {
		name        string
		dsn         string
		unavailable bool
	}{
		{"refused", fmt.Sprintf("postgres://codex:%s@127.0.0.1:%d/vault?sslmode=disable", secret, closedPort), true},
		{"refused, password in the query", fmt.Sprintf("postgresql://codex@127.0.0.1:%d/vault?sslmode=disable&password=%s", closedPort, secret), true},
		{"refused, keyword form", fmt.Sprintf("host=127.0.0.1 port=%d user=codex password=%s dbname=vault sslmode=disable", closedPort, secret), true},
		{"does not parse", fmt.Sprintf("postgres://codex:%s@127.0.0.1:notaport/vault", secret), false},
		{"bad option", fmt.Sprintf("postgres://codex:%s@127.0.0.1/vault?sslmode=sometimes", secret), false},
		{"keyword form does not parse", fmt.Sprintf("host=127.0.0.1 password='%s", secret), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			s, err := Open(context.Background(), tc.dsn, Options{})
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("the error shows the password: %v", err)
			}
			if tc.unavailable != errors.Is(err, vault.ErrUnavailable) {
				t.Fatalf("errors.Is(%v, ErrUnavailable) = %t, want %t", err, !tc.unavailable, tc.unavailable)
			}
			if took := time.Since(start); took > failFast {
				t.Fatalf("took %s to fail", took)
			}
			t.Logf("%v", err)
		})
	}
	if got := RedactDSN("postgres://codex:" + secret + "@db:5432/vault?sslpassword=" + secret + "&sslmode=verify-full"); strings.Contains(got, secret) {
		t.Fatalf("RedactDSN left the password: %s", got)
	}
}

// TestSchemaMigration: instances starting together on an empty database
// migrate it once; a schema from a newer version is accepted if it says
// this version is compatible, refused with vault.ErrSchemaTooNew if not.
func TestSchemaMigration(t *testing.T) {
	dsn := pgtest.Start(t).NewDB(t)
	ctx := context.Background()
	const n = 6
	errs := make(chan error, n)
	stores := make(chan *Store, n)
	for range n {
		go func() {
			s, err := Open(ctx, dsn, Options{})
			errs <- err
			stores <- s
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent Open: %v", err)
		}
		s := <-stores
		defer s.Close()
	}
	s, err := Open(ctx, dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var version, rows int
	if err := s.pool.QueryRow(ctx, `SELECT max(version), count(*) FROM codex_proxy_schema`).Scan(&version, &rows); err != nil {
		t.Fatal(err)
	}
	if version != SchemaVersion || rows != 1 {
		t.Fatalf("schema table: version %d in %d rows, want %d in 1", version, rows, SchemaVersion)
	}

	// A newer version added a step that older code can live with.
	newer := append(append([]migration{}, migrations...), migration{compatible: SchemaVersion, sql: `ALTER TABLE codex_users ADD COLUMN note text`})
	if err := s.migrateTo(ctx, newer); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(ctx, dsn, Options{})
	if err != nil {
		t.Fatalf("opening a compatible newer schema: %v", err)
	}
	s2.Close()
	// And one it cannot.
	newest := append(newer, migration{compatible: SchemaVersion + 2, sql: `ALTER TABLE codex_users DROP COLUMN name`})
	if err := s.migrateTo(ctx, newest); err != nil {
		t.Fatal(err)
	}
	if s3, err := Open(ctx, dsn, Options{}); !errors.Is(err, vault.ErrSchemaTooNew) {
		if s3 != nil {
			s3.Close()
		}
		t.Fatalf("opening an incompatible newer schema: %v, want vault.ErrSchemaTooNew", err)
	}
}

// TestCoexistsWithOtherTables: the vault's tables are prefixed and leave
// other applications' tables (certmagic's, say) in the database alone.
func TestCoexistsWithOtherTables(t *testing.T) {
	dsn := pgtest.Start(t).NewDB(t)
	ctx := context.Background()
	s, err := Open(ctx, dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.pool.Exec(ctx, `CREATE TABLE certmagic_data (key text PRIMARY KEY, value bytea); CREATE TABLE users (id int)`); err != nil {
		t.Fatal(err)
	}
	rows, err := s.pool.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename NOT LIKE 'codex\_%' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	var others []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		others = append(others, name)
	}
	if fmt.Sprint(others) != "[certmagic_data users]" {
		t.Fatalf("tables outside the codex_ prefix: %v", others)
	}
	s.Close()
	s, err = Open(ctx, dsn, Options{})
	if err != nil {
		t.Fatalf("reopening beside other tables: %v", err)
	}
	s.Close()
}
