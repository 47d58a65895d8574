package caddymodule

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/usemysub/caddy-codex-proxy/internal/pgtest"
	"github.com/usemysub/caddy-codex-proxy/vault"
	"github.com/usemysub/caddy-codex-proxy/vault/bolt"
	"github.com/usemysub/caddy-codex-proxy/vault/postgres"
)

// seedVault provisions ada with a ChatGPT login and a key through the CLI
// (Caddy stopped) into the bbolt vault of a config whose secrets come from
// the environment, logs three requests, and returns the config and key.
func seedVault(t *testing.T, dir, vaultPath string) (cfg, apiKey string) {
	t.Helper()
	t.Setenv("CODEX_TEST_ENC_KEY", testEncKey)
	t.Setenv("CODEX_TEST_PEPPER", testPepper)
	cfg = writeCaddyfile(t, dir, "off", "\t\tvault "+vaultPath+"\n\t\tencryption_key {env.CODEX_TEST_ENC_KEY}\n\t\tapi_key_pepper {env.CODEX_TEST_PEPPER}")
	auth := writeFile(t, dir, "auth.json", authJSON(t, "ada@example.com", "pro"))
	out, _ := mustRun(t, "provision", "--config", cfg, "--email", "ada@example.com", "--auth-file", auth)
	v := openTestVault(t, vaultPath, testEncKey, testPepper)
	u, err := v.UserByEmail("ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().UTC().Add(-time.Hour)
	for i, id := range []string{"req-1", "req-2", "req-3"} {
		v.LogRequest(vault.LogRecord{Time: base.Add(time.Duration(i) * time.Second), UserID: u.ID, RequestID: id, Route: "/v1/responses", Model: "gpt-5.4", Status: 200, InputTokens: 10})
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	return cfg, strings.TrimSpace(out)
}

// checkMigrated opens the vault on store with the test secrets: the key
// still verifies, the login decrypts, the request log is there.
func checkMigrated(t *testing.T, store vault.Store, apiKey string) {
	t.Helper()
	v, err := vault.New(store, vault.Options{EncryptionKeys: []string{testEncKey}, Pepper: testPepper})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	_, u, err := v.VerifyKey(apiKey)
	if err != nil || u.Email != "ada@example.com" {
		t.Fatalf("the API key after migrating: %v", err)
	}
	if ti, err := v.TokenInfo(u.ID); err != nil || ti.PlanType != "pro" {
		t.Fatalf("the ChatGPT login after migrating: %v %+v", err, ti)
	}
	recs, err := v.RecentRequests(u.ID, time.Time{}, 10, vault.StatusAll)
	if err != nil || len(recs) != 3 || recs[0].RequestID != "req-3" {
		t.Fatalf("request log after migrating: %v %+v", err, recs)
	}
}

// TestVaultMigrateBoltToPostgresAndBack: the whole vault moves to
// PostgreSQL and back; a non-empty target is refused unless --force; the
// summary and the decrypt check are printed; no secret is shown.
func TestVaultMigrateBoltToPostgresAndBack(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := strings.Replace(srv.NewDB(t), "codex@", "codex:Pg-Secret-9@", 1) // trust auth ignores it
	dir := t.TempDir()
	boltPath := filepath.Join(dir, "vault.db")
	cfg, apiKey := seedVault(t, dir, boltPath)

	out, errOut := mustRun(t, "vault", "migrate", "--from", boltPath, "--to", dsn, "--config", cfg)
	for _, want := range []string{"KIND", "users  ", "request log"} {
		if !strings.Contains(out, want) {
			t.Fatalf("summary lacks %q:\n%s", want, out)
		}
	}
	if !regexpMatch(`(?m)^request log\s+3\s+3\s+3$`, out) || !regexpMatch(`(?m)^users\s+1\s+1\s+1$`, out) {
		t.Fatalf("summary:\n%s", out)
	}
	if !strings.Contains(errOut, "decrypted 1 of 1 ChatGPT logins (a sample) with the config's encryption_key") {
		t.Fatalf("stderr: %s", errOut)
	}
	if strings.Contains(out+errOut, "Pg-Secret-9") {
		t.Fatalf("the DSN password is shown:\n%s%s", out, errOut)
	}
	assertNoSecrets(t, dir, out, errOut)
	pg, err := postgres.Open(context.Background(), dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkMigrated(t, pg, apiKey)

	_, errOut, err = runCLI(t, "", "vault", "migrate", "--from", boltPath, "--to", dsn)
	if err == nil || !strings.Contains(err.Error(), "is not empty: it holds 1 users, 1 api keys, 1 chatgpt logins") ||
		!strings.Contains(err.Error(), "--force") || strings.Contains(err.Error(), "Pg-Secret-9") {
		t.Fatalf("migrating into a non-empty target: %v\n%s", err, errOut)
	}
	out, _ = mustRun(t, "vault", "migrate", "--from", boltPath, "--to", dsn, "--force", "--encryption-key", "{env.CODEX_TEST_ENC_KEY}")
	if !regexpMatch(`(?m)^request log\s+3\s+3\s+3$`, out) {
		t.Fatalf("--force did not replace the target:\n%s", out)
	}

	back := filepath.Join(dir, "back", "vault.db")
	out, _ = mustRun(t, "vault", "migrate", "--from", dsn, "--to", back, "--config", cfg)
	if !regexpMatch(`(?m)^api keys\s+1\s+1\s+1$`, out) {
		t.Fatalf("summary:\n%s", out)
	}
	s, err := bolt.Open(back, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkMigrated(t, s, apiKey)
}

// TestVaultMigrateRefusals: a bbolt source in use, the same vault on both
// sides, a missing source, wrong keys.
func TestVaultMigrateRefusals(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "vault.db")
	seedVault(t, dir, src)

	held := openTestVault(t, src, testEncKey, testPepper) // a running Caddy
	_, _, err := runCLI(t, "", "vault", "migrate", "--from", src, "--to", filepath.Join(dir, "copy.db"))
	held.Close()
	if err == nil || !strings.Contains(err.Error(), "is in use (a running Caddy holds its lock): stop Caddy, or use `caddy codex-proxy vault backup") {
		t.Fatalf("source in use: %v", err)
	}
	_, _, err = runCLI(t, "", "vault", "migrate", "--from", src, "--to", src)
	if err == nil || !strings.Contains(err.Error(), "the same vault") {
		t.Fatalf("same vault: %v", err)
	}
	_, _, err = runCLI(t, "", "vault", "migrate", "--from", filepath.Join(dir, "nope.db"), "--to", filepath.Join(dir, "copy.db"))
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing source: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "nope.db")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a missing source was created")
	}

	otherKey := strings.Repeat("ab", 32)
	_, _, err = runCLI(t, "", "vault", "migrate", "--from", src, "--to", filepath.Join(dir, "wrong-key.db"), "--encryption-key", otherKey)
	if err == nil || !strings.Contains(err.Error(), "1 of 1 sampled ChatGPT logins do not decrypt with --encryption-key") {
		t.Fatalf("wrong key: %v", err)
	}
	if strings.Contains(err.Error(), otherKey) {
		t.Fatal("the error shows the key")
	}
}

// TestVaultMigrateWithoutKeysWarns: with no way to get the encryption
// keys, the copy is made and the skipped decrypt check said loudly.
func TestVaultMigrateWithoutKeysWarns(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "vault.db")
	seedVault(t, dir, src) // secrets from the config, none generated beside it
	out, errOut := mustRun(t, "vault", "migrate", "--from", src, "--to", filepath.Join(dir, "other", "vault.db"))
	if !strings.Contains(errOut, "WARNING: the copied ChatGPT logins were NOT decrypt-checked") || !regexpMatch(`(?m)^chatgpt logins\s+1\s+1\s+1$`, out) {
		t.Fatalf("stdout:\n%s\nstderr:\n%s", out, errOut)
	}
}

// TestVaultBackup: through the admin API while the vault is open (so its
// file is locked), from the file when Caddy is stopped; the copy is 0600
// and opens with the users in it; an existing file is never overwritten;
// a PostgreSQL vault gets the pg_dump command, its password masked.
func TestVaultBackup(t *testing.T) {
	dir := t.TempDir()
	vaultPath := filepath.Join(dir, "vault.db")
	seedVault(t, dir, vaultPath)

	pool := caddy.NewUsagePool()
	poolVault(t, pool, vaultPath)
	admin := newFakeAdmin(t, serveAdmin(adminAPI{pool: pool}))
	cfg := writeCaddyfile(t, dir, admin.addr(), "\t\tvault "+vaultPath+"\n\t\tencryption_key {env.CODEX_TEST_ENC_KEY}\n\t\tapi_key_pepper {env.CODEX_TEST_PEPPER}")
	out := filepath.Join(dir, "backup.db")
	_, errOut := mustRun(t, "vault", "backup", "--config", cfg, "--out", out)
	if !strings.Contains(errOut, "through the admin API") || !strings.Contains(errOut, "holds 1 users, 1 api keys, 1 chatgpt logins") {
		t.Fatalf("stderr: %s", errOut)
	}
	if !slices.Contains(admin.requests(), "GET /codex_proxy/backup") {
		t.Fatalf("admin requests %q", admin.requests())
	}
	checkBackupFile(t, out)

	_, _, err := runCLI(t, "", "vault", "backup", "--config", cfg, "--out", out)
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("overwrote a file: %v", err)
	}

	// Caddy stopped: from the file.
	_, _ = pool.Delete(vaultPath)
	cfg = writeCaddyfile(t, dir, "off", "\t\tvault "+vaultPath+"\n\t\tencryption_key {env.CODEX_TEST_ENC_KEY}\n\t\tapi_key_pepper {env.CODEX_TEST_PEPPER}")
	out2 := filepath.Join(dir, "backup2.db")
	_, errOut = mustRun(t, "vault", "backup", "--config", cfg, "--out", out2)
	if !strings.Contains(errOut, "through the file") {
		t.Fatalf("stderr: %s", errOut)
	}
	checkBackupFile(t, out2)

	t.Setenv("CODEX_TEST_DSN", "postgres://codex:Pg-Secret-9@db.internal:5432/usemysub?sslmode=verify-full")
	cfg = writeCaddyfile(t, dir, "off", "\t\tvault {env.CODEX_TEST_DSN}\n\t\tencryption_key {env.CODEX_TEST_ENC_KEY}\n\t\tapi_key_pepper {env.CODEX_TEST_PEPPER}")
	stdout, _, err := runCLI(t, "", "vault", "backup", "--config", cfg, "--out", filepath.Join(dir, "pg.dump"))
	if err == nil || !strings.Contains(err.Error(), "pg_dump") {
		t.Fatalf("PostgreSQL vault: %v", err)
	}
	if !strings.HasPrefix(stdout, "pg_dump --dbname='postgres://codex:") || !strings.Contains(stdout, "db.internal:5432/usemysub") ||
		!strings.Contains(stdout, "--table='codex_*'") || strings.Contains(stdout, "Pg-Secret-9") {
		t.Fatalf("pg_dump command: %s", stdout)
	}
	if _, err := os.Stat(filepath.Join(dir, "pg.dump")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a file was written for a PostgreSQL vault")
	}
}

// checkBackupFile checks a backup is private and opens as a vault with ada.
func checkBackupFile(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup mode %v", fi.Mode().Perm())
	}
	v := openTestVault(t, path, testEncKey, testPepper)
	defer v.Close()
	if _, err := v.UserByEmail("ada@example.com"); err != nil {
		t.Fatalf("the backup lacks the user: %v", err)
	}
	if entries, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*.tmp")); len(entries) > 0 {
		t.Fatalf("temporary files left: %v", entries)
	}
}

// regexpMatch reports whether pattern matches s.
func regexpMatch(pattern, s string) bool { return regexp.MustCompile(pattern).MatchString(s) }
