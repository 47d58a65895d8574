package certstore

import (
	"context"
	"errors"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/usemysub/caddy-codex-proxy/internal/pgtest"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// open returns a Storage on dsn, closed when the test ends.
func open(t *testing.T, cfg Config) *Storage {
	t.Helper()
	if cfg.LockPollInterval == 0 {
		cfg.LockPollInterval = 50 * time.Millisecond
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// sql runs one statement on dsn outside any Storage.
func sql(t *testing.T, dsn, query string, args ...any) pgx.Row {
	t.Helper()
	conn, err := pgx.Connect(testCtx(t), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn.QueryRow(testCtx(t), query, args...)
}

// TestStorageContract checks certmagic's Storage contract, with
// FileStorage's path semantics, on a real PostgreSQL.
func TestStorageContract(t *testing.T) {
	ctx := testCtx(t)
	s := open(t, Config{DSN: pgtest.Start(t).NewDB(t)})
	files := map[string]string{
		"certificates/acme/example.com/example.com.crt":  "crt",
		"certificates/acme/example.com/example.com.key":  "key",
		"certificates/acme/example.com/example.com.json": "{}",
		"certificates/acme/example.com0/x.crt":           "sorts after example.com/",
		"certificates/acme/example.com-1/y.crt":          "sorts before example.com/",
		"certificates/acme/other.org/other.org.crt":      "crt2",
		"acme/ca/users/ops@x/ops.json":                   "account",
		"last_clean.json":                                "{}",
	}
	for k, v := range files {
		if err := s.Store(ctx, k, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("load", func(t *testing.T) {
		for k, v := range files {
			got, err := s.Load(ctx, k)
			if err != nil || string(got) != v {
				t.Errorf("Load(%q) = %q, %v; want %q", k, got, err, v)
			}
		}
	})

	t.Run("not exist", func(t *testing.T) {
		for _, k := range []string{"nope", "certificates/acme/example.com", "certificates/acme/example", "last_clean"} {
			if _, err := s.Load(ctx, k); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Load(%q) error %v, want fs.ErrNotExist", k, err)
			}
		}
		if _, err := s.Stat(ctx, "nope/x"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Stat error %v, want fs.ErrNotExist", err)
		}
		if _, err := s.List(ctx, "certificates/acme/example", false); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("List of a mere string prefix: error %v, want fs.ErrNotExist", err)
		}
	})

	t.Run("list", func(t *testing.T) {
		tests := []struct {
			dir       string
			recursive bool
			want      []string
		}{
			{"certificates/acme/example.com", false, []string{
				"certificates/acme/example.com/example.com.crt",
				"certificates/acme/example.com/example.com.json",
				"certificates/acme/example.com/example.com.key",
			}},
			{"certificates/acme", false, []string{
				"certificates/acme/example.com",
				"certificates/acme/example.com-1",
				"certificates/acme/example.com0",
				"certificates/acme/other.org",
			}},
			{"certificates", true, []string{
				"certificates/acme",
				"certificates/acme/example.com",
				"certificates/acme/example.com-1",
				"certificates/acme/example.com-1/y.crt",
				"certificates/acme/example.com/example.com.crt",
				"certificates/acme/example.com/example.com.json",
				"certificates/acme/example.com/example.com.key",
				"certificates/acme/example.com0",
				"certificates/acme/example.com0/x.crt",
				"certificates/acme/other.org",
				"certificates/acme/other.org/other.org.crt",
			}},
			{"", false, []string{"acme", "certificates", "last_clean.json"}},
			{"/certificates/acme/other.org/", true, []string{"certificates/acme/other.org/other.org.crt"}},
			{"last_clean.json", true, []string{}}, // a file has no children
		}
		for _, tc := range tests {
			got, err := s.List(ctx, tc.dir, tc.recursive)
			if err != nil {
				t.Errorf("List(%q, %v): %v", tc.dir, tc.recursive, err)
				continue
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("List(%q, %v) =\n%q\nwant\n%q", tc.dir, tc.recursive, got, tc.want)
			}
		}
	})

	t.Run("exists and stat", func(t *testing.T) {
		tests := []struct {
			key      string
			exists   bool
			terminal bool
			size     int64
		}{
			{"certificates/acme/example.com/example.com.crt", true, true, 3},
			{"certificates/acme/example.com", true, false, 0},
			{"certificates", true, false, 0},
			{"certificates/acme/example", false, false, 0},
			{"certificates/acme/example.com/example.com.crt/more", false, false, 0},
		}
		for _, tc := range tests {
			if got := s.Exists(ctx, tc.key); got != tc.exists {
				t.Errorf("Exists(%q) = %v", tc.key, got)
			}
			info, err := s.Stat(ctx, tc.key)
			if !tc.exists {
				if !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("Stat(%q) error %v, want fs.ErrNotExist", tc.key, err)
				}
				continue
			}
			if err != nil {
				t.Errorf("Stat(%q): %v", tc.key, err)
				continue
			}
			if info.Key != tc.key || info.IsTerminal != tc.terminal || info.Size != tc.size || time.Since(info.Modified) > time.Minute {
				t.Errorf("Stat(%q) = %+v", tc.key, info)
			}
		}
	})

	t.Run("overwrite", func(t *testing.T) {
		k := "certificates/acme/other.org/other.org.crt"
		before, _ := s.Stat(ctx, k)
		time.Sleep(10 * time.Millisecond)
		if err := s.Store(ctx, k, []byte("renewed!")); err != nil {
			t.Fatal(err)
		}
		got, err := s.Load(ctx, k)
		if err != nil || string(got) != "renewed!" {
			t.Fatalf("after overwrite Load = %q, %v", got, err)
		}
		after, _ := s.Stat(ctx, k)
		if after.Size != 8 || !after.Modified.After(before.Modified) {
			t.Fatalf("Stat after overwrite = %+v, before %+v", after, before)
		}
		if err := s.Store(ctx, "empty", nil); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Load(ctx, "empty"); err != nil || len(got) != 0 {
			t.Fatalf("empty value: %q, %v", got, err)
		}
	})

	t.Run("delete", func(t *testing.T) {
		// A file.
		if err := s.Delete(ctx, "certificates/acme/example.com/example.com.key"); err != nil {
			t.Fatal(err)
		}
		if s.Exists(ctx, "certificates/acme/example.com/example.com.key") {
			t.Fatal("deleted file still exists")
		}
		// A directory takes everything below it, and nothing that merely
		// shares its spelling.
		if err := s.Delete(ctx, "certificates/acme/example.com"); err != nil {
			t.Fatal(err)
		}
		if s.Exists(ctx, "certificates/acme/example.com") || s.Exists(ctx, "certificates/acme/example.com/example.com.crt") {
			t.Fatal("deleted directory still exists")
		}
		for _, k := range []string{"certificates/acme/example.com0/x.crt", "certificates/acme/example.com-1/y.crt"} {
			if !s.Exists(ctx, k) {
				t.Fatalf("deleting example.com took %s", k)
			}
		}
		// Missing keys are no error.
		if err := s.Delete(ctx, "certificates/acme/example.com"); err != nil {
			t.Fatalf("deleting again: %v", err)
		}
		if err := s.Delete(ctx, ""); err == nil {
			t.Fatal("deleting the root was accepted")
		}
	})
}

// TestSchemaConcurrentStarts: instances starting at once on an empty
// database all come up, and the schema is created once.
func TestSchemaConcurrentStarts(t *testing.T) {
	ctx := testCtx(t)
	dsn := pgtest.Start(t).NewDB(t)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		s := open(t, Config{DSN: dsn})
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Store(ctx, "k", []byte{byte(i)})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("instance %d: %v", i, err)
		}
	}
	var rows, version int
	if err := sql(t, dsn, `SELECT count(*), max(version) FROM certmagic_schema`).Scan(&rows, &version); err != nil {
		t.Fatal(err)
	}
	if rows != 1 || version != 1 {
		t.Fatalf("schema table: %d rows, version %d", rows, version)
	}
	// A later start with the schema in place is a no-op.
	s := open(t, Config{DSN: dsn})
	if !s.Exists(ctx, "k") {
		t.Fatal("k missing after a restart")
	}
}

// TestTablePrefix: two prefixes in one database (beside the vault's
// tables) do not see each other's keys.
func TestTablePrefix(t *testing.T) {
	ctx := testCtx(t)
	dsn := pgtest.Start(t).NewDB(t)
	a := open(t, Config{DSN: dsn})
	b := open(t, Config{DSN: dsn, TablePrefix: "team_b_certs"})
	if err := a.Store(ctx, "x", []byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := b.Store(ctx, "x", []byte("b")); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.Load(ctx, "x"); string(got) != "a" {
		t.Fatalf("a sees %q", got)
	}
	var n int
	if err := sql(t, dsn, `SELECT count(*) FROM team_b_certs_data`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("team_b_certs_data: %d rows, %v", n, err)
	}
	if _, err := New(Config{DSN: dsn, TablePrefix: "Robert'); DROP TABLE x"}); !errors.Is(err, ErrConfig) {
		t.Fatalf("bad prefix accepted: %v", err)
	}
}

// TestServerRestart: the storage reconnects after PostgreSQL restarts.
func TestServerRestart(t *testing.T) {
	ctx := testCtx(t)
	srv := pgtest.Start(t)
	s := open(t, Config{DSN: srv.NewDB(t)})
	if err := s.Store(ctx, "a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	srv.Restart(0)
	var err error
	for range 3 { // the pool's stale connections fail once each
		if _, err = s.Load(ctx, "a"); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("after restart: %v", err)
	}
}

// TestNoConnectionBeforeUse: New opens nothing, and the errors of a failed
// first use name the server but never the password.
func TestNoConnectionBeforeUse(t *testing.T) {
	const pw = "s3cr3t-p%40ss"
	for _, dsn := range []string{
		"postgres://codex:" + pw + "@127.0.0.1:1/certs?sslmode=disable&connect_timeout=2",
		"host=127.0.0.1 port=1 user=codex password='" + pw + "' dbname=certs sslmode=disable connect_timeout=2",
		"postgres://codex@127.0.0.1:1/certs?sslmode=disable&password=" + pw,
	} {
		s, err := New(Config{DSN: dsn})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		_, err = s.Load(testCtx(t), "k")
		if err == nil {
			t.Fatal("Load on a closed port succeeded")
		}
		lerr := s.Lock(testCtx(t), "k")
		for _, text := range []string{err.Error(), lerr.Error(), s.String()} {
			if strings.Contains(text, "s3cr3t") {
				t.Errorf("the password leaked: %s", text)
			}
		}
		if !strings.Contains(err.Error(), "127.0.0.1:1/certs") {
			t.Errorf("error does not name the server: %v", err)
		}
		s.Close()
		if _, err := s.Load(testCtx(t), "k"); !errors.Is(err, ErrClosed) {
			t.Errorf("after Close: %v", err)
		}
	}
	for _, dsn := range []string{"", "postgres://codex:" + pw + "@127.0.0.1:notaport/x", "host=x port=nope password=" + pw} {
		_, err := New(Config{DSN: dsn})
		if !errors.Is(err, ErrConfig) {
			t.Errorf("New(bad dsn): %v, want ErrConfig", err)
		} else if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("the password leaked: %v", err)
		}
	}
}
