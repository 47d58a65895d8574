package caddymodule

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/internal/pgtest"
	"github.com/usemysub/caddy-codex-proxy/vault"
	"github.com/usemysub/caddy-codex-proxy/vault/engine"
	"github.com/usemysub/caddy-codex-proxy/vault/postgres"
)

// TestVaultLocationForms: a DSN is kept as written (no absolute-path
// mangling), placeholders in it expanded; it needs configured secrets.
func TestVaultLocationForms(t *testing.T) {
	t.Setenv("CODEX_TEST_DSN", "postgresql://codex:pw-from-env@db.internal:5432/usemysub?sslmode=verify-full")
	for _, tc := range []struct {
		vault, want string
	}{
		{"postgres://codex@127.0.0.1:5432/usemysub?sslmode=disable", "postgres://codex@127.0.0.1:5432/usemysub?sslmode=disable"},
		{"PostgreSQL://codex@db/usemysub", "PostgreSQL://codex@db/usemysub"},
		{"{env.CODEX_TEST_DSN}", "postgresql://codex:pw-from-env@db.internal:5432/usemysub?sslmode=verify-full"},
		{"/var/lib/codex/vault.db", "/var/lib/codex/vault.db"},
	} {
		vc, err := vaultConfigOf(Handler{Vault: tc.vault})
		if err != nil {
			t.Fatalf("%s: %v", tc.vault, err)
		}
		if vc.Path != tc.want {
			t.Fatalf("vault %s resolved to %q, want %q", tc.vault, vc.Path, tc.want)
		}
	}

	vc, err := vaultConfigOf(Handler{Vault: "{env.CODEX_TEST_DSN}", APIKeyPepper: testPepper})
	if err != nil {
		t.Fatal(err)
	}
	_, _, _, err = vc.Secrets()
	if err == nil || !strings.Contains(err.Error(), "encryption_key and api_key_pepper") {
		t.Fatalf("a PostgreSQL vault without encryption_key: %v", err)
	}
	if strings.Contains(err.Error(), "pw-from-env") {
		t.Fatalf("the error shows the DSN password: %v", err)
	}
	if got := engine.Display(vc.Path); strings.Contains(got, "pw-from-env") || !strings.Contains(got, "db.internal") {
		t.Fatalf("engine.Display(%s) = %s", vc.Path, got)
	}
}

// TestCLIWithPostgresVault: the operator commands open a PostgreSQL vault
// directly, whether or not a Caddy runs (its admin API is never asked),
// and what they do is what the proxy's vault sees.
func TestCLIWithPostgresVault(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := strings.Replace(srv.NewDB(t), "codex@", "codex:Pg-Secret-9@", 1) // trust auth ignores it
	t.Setenv("CODEX_TEST_DSN", dsn)
	dir := t.TempDir()
	admin := newFakeAdmin(t, http.NotFoundHandler())
	cfg := writeCaddyfile(t, dir, admin.addr(), "\t\tvault {env.CODEX_TEST_DSN}\n\t\tencryption_key "+testEncKey+"\n\t\tapi_key_pepper "+testPepper)
	auth := writeFile(t, dir, "auth.json", authJSON(t, "ada@example.com", "plus"))

	out, errOut := mustRun(t, "provision", "--config", cfg, "--email", "ada@example.com", "--auth-file", auth, "--label", "laptop")
	if !keyLine.MatchString(out) {
		t.Fatalf("stdout is not the key alone: %q", out)
	}
	usersOut, errOut2 := mustRun(t, "users", "list", "--config", cfg)
	if !strings.Contains(usersOut, "ada@example.com") || !strings.Contains(usersOut, "plus") {
		t.Fatalf("users list:\n%s", usersOut)
	}
	for _, o := range []string{out, errOut, usersOut, errOut2} {
		if strings.Contains(o, "Pg-Secret-9") || strings.Contains(o, testRefreshToken) {
			t.Fatalf("output shows a secret:\n%s", o)
		}
	}
	if !strings.Contains(errOut, "using the PostgreSQL vault postgres://codex:xxxxx@") {
		t.Fatalf("stderr does not say which vault: %s", errOut)
	}
	if reqs := admin.requests(); len(reqs) != 0 {
		t.Fatalf("the CLI asked the admin API about a PostgreSQL vault: %v", reqs)
	}

	// A running instance on the same database (as Caddy would have it
	// open) sees the key, and sees it revoked from the CLI.
	v := openPostgresVault(t, dsn)
	key := strings.TrimSpace(out)
	_, u, err := v.VerifyKey(key)
	if err != nil {
		t.Fatalf("the provisioned key on the running instance: %v", err)
	}
	keys, err := v.ListKeys(u.ID)
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys: %v %v", keys, err)
	}
	mustRun(t, "keys", "revoke", "--config", cfg, "--email", "ada@example.com", "--id", keys[0].ID)
	deadline := time.Now().Add(time.Second)
	for {
		_, _, err := v.VerifyKey(key)
		if errors.Is(err, vault.ErrKeyInvalid) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the running instance still accepts a key the CLI revoked: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// openPostgresVault opens a Vault on dsn with the tests' secrets.
func openPostgresVault(t *testing.T, dsn string) *vault.Vault {
	t.Helper()
	s, err := postgres.Open(context.Background(), dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := vault.New(s, vault.Options{EncryptionKeys: []string{testEncKey}, Pepper: testPepper})
	if err != nil {
		s.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

// TestPostgresVaultDownIs503: a proxy on a PostgreSQL vault keeps checking
// keys while the database is down, answers a request that needs a token
// refresh with a 503 vault_unavailable (not a 502, not a relink), and
// serves again once the database is back, without a restart.
func TestPostgresVaultDownIs503(t *testing.T) {
	srv := pgtest.Start(t)
	env := newProxyEnvAt(t, srv.NewDB(t))
	if _, err := env.client.Chat.Completions.New(context.Background(), userMsg("hi")); err != nil {
		t.Fatalf("through a PostgreSQL vault: %v", err)
	}

	srv.Stop()
	env.fake.ExpireAccess(env.account) // the next request needs a refresh
	start := time.Now()
	e := apiError(t, env.client, "hi")
	if e.StatusCode != http.StatusServiceUnavailable || e.Code != "vault_unavailable" {
		t.Fatalf("with the database down: %d %s: %s", e.StatusCode, e.Code, e.Message)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("took %s to answer", took)
	}
	if ra := e.Response.Header.Get("Retry-After"); ra == "" {
		t.Fatal("no Retry-After on the 503")
	}
	if n := env.fake.RefreshCount(); n != 0 {
		t.Fatalf("refreshed %d times without the refresh lock", n)
	}

	srv.Start()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := env.client.Chat.Completions.New(context.Background(), userMsg("hi"))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still failing after the database came back: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := env.fake.RefreshCount(); n != 1 {
		t.Fatalf("%d refreshes after recovery, want 1", n)
	}
}
