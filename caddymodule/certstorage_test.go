package caddymodule

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/usemysub/caddy-codex-proxy/internal/pgtest"
)

// TestPostgresStorageCaddyfile: the short and block forms of the global
// option, and its mistakes.
func TestPostgresStorageCaddyfile(t *testing.T) {
	tests := []struct {
		name, body  string
		dsn, prefix string
		wantErr     string
	}{
		{"short", "codex_postgres {env.DATABASE_URL}", "{env.DATABASE_URL}", "", ""},
		{"block", "codex_postgres {\n\tdsn postgres://db/x\n\ttable_prefix edge\n}", "postgres://db/x", "edge", ""},
		{"missing dsn", "codex_postgres", "", "", "needs a dsn"},
		{"two args", "codex_postgres a b", "", "", "wrong argument count"},
		{"dsn twice", "codex_postgres a {\n\tdsn b\n}", "", "", `"dsn" given more than once`},
		{"unknown option", "codex_postgres {\n\tdns x\n}", "", "", `unrecognized codex_postgres option "dns"`},
		{"option without value", "codex_postgres {\n\tdsn\n}", "", "", "wrong argument count"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s PostgresStorage
			err := s.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.body))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.DSN != tc.dsn || s.TablePrefix != tc.prefix {
				t.Fatalf("got dsn %q prefix %q", s.DSN, s.TablePrefix)
			}
		})
	}
	// Through the adapter, the short form lands in the config's storage.
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte("{\n\tstorage codex_postgres {env.DATABASE_URL}\n}\n\n:80 {\n\trespond ok\n}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `"storage":{"dsn":"{env.DATABASE_URL}","module":"codex_postgres"}`) {
		t.Fatalf("adapted: %s", out)
	}
}

// provisionStorage provisions the module as Caddy does.
func provisionStorage(t *testing.T, s *PostgresStorage) error {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	t.Cleanup(func() { _ = s.Cleanup() })
	return s.Provision(ctx)
}

// TestPostgresStorageLazy: loading the config connects to nothing (the
// server here does not exist), and the error of the first use names the
// server without the password taken from the environment.
func TestPostgresStorageLazy(t *testing.T) {
	t.Setenv("CODEX_TEST_CERT_DSN", "postgres://codex:hunter2-secret@127.0.0.1:1/certs?sslmode=disable&connect_timeout=2")
	s := &PostgresStorage{DSN: "{env.CODEX_TEST_CERT_DSN}"}
	if err := provisionStorage(t, s); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	cm, err := s.CertMagicStorage()
	if err != nil {
		t.Fatalf("CertMagicStorage: %v", err)
	}
	_, err = cm.Load(context.Background(), "k")
	if err == nil {
		t.Fatal("Load from a server that does not exist succeeded")
	}
	for _, text := range []string{err.Error(), cm.(interface{ String() string }).String()} {
		if strings.Contains(text, "hunter2") {
			t.Fatalf("password in %q", text)
		}
	}
	if !strings.Contains(err.Error(), "127.0.0.1:1/certs") {
		t.Fatalf("error does not name the server: %v", err)
	}

	for _, dsn := range []string{"", "{env.CODEX_TEST_UNSET_VARIABLE}"} {
		if err := provisionStorage(t, &PostgresStorage{DSN: dsn}); !errors.Is(err, errNoDSN) {
			t.Errorf("dsn %q: %v, want errNoDSN", dsn, err)
		}
	}
	if err := provisionStorage(t, &PostgresStorage{DSN: "postgres://u:hunter2@h:nope/x"}); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("bad dsn: %v", err)
	}
}

// TestPostgresStorageShared: two configs (a reload, or two instances)
// with one DSN see the same keys on a real PostgreSQL.
func TestPostgresStorageShared(t *testing.T) {
	t.Setenv("CODEX_TEST_CERT_DSN", pgtest.Start(t).NewDB(t))
	ctx := context.Background()
	a, b := &PostgresStorage{DSN: "{env.CODEX_TEST_CERT_DSN}"}, &PostgresStorage{DSN: "{env.CODEX_TEST_CERT_DSN}", TablePrefix: "other"}
	for _, s := range []*PostgresStorage{a, b} {
		if err := provisionStorage(t, s); err != nil {
			t.Fatal(err)
		}
	}
	sa, _ := a.CertMagicStorage()
	sb, _ := b.CertMagicStorage()
	if err := sa.Store(ctx, "certificates/x/x.crt", []byte("pem")); err != nil {
		t.Fatal(err)
	}
	if got, err := sa.Load(ctx, "certificates/x/x.crt"); err != nil || string(got) != "pem" {
		t.Fatalf("Load = %q, %v", got, err)
	}
	if _, err := sb.Load(ctx, "certificates/x/x.crt"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("another table prefix sees the key: %v", err)
	}
	// A reload provisions a new module value on the same storage.
	c := &PostgresStorage{DSN: "{env.CODEX_TEST_CERT_DSN}"}
	if err := provisionStorage(t, c); err != nil {
		t.Fatal(err)
	}
	if sc, _ := c.CertMagicStorage(); sc != sa {
		t.Fatal("a second config with the same dsn opened a second storage")
	}
}
