package vaultconf

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

const testEncKey = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// TestSecretsFallBackLikeProvision: what the config leaves out comes from
// the files generated beside the vault, generated once.
func TestSecretsFallBackLikeProvision(t *testing.T) {
	dir := t.TempDir()
	vc := Config{Path: filepath.Join(dir, "vault.db"), EncryptionKeys: []string{testEncKey}, KeysSet: true}
	keys, pepper, generated, err := vc.Secrets()
	if err != nil || !generated || !slices.Equal(keys, []string{testEncKey}) || len(pepper) < 16 {
		t.Fatalf("pepper not generated: %v %v", err, generated)
	}
	gk, gp, _, _ := vault.LoadOrCreateSecrets(dir)
	if gp != pepper || gk == testEncKey {
		t.Fatal("did not take the generated pepper, or took the generated key over the configured one")
	}
	_, again, generated, err := vc.Secrets()
	if err != nil || generated || again != pepper {
		t.Fatalf("second call: %v %v", err, generated)
	}
	if k, present := GeneratedKey(vc.Path); !present || k != gk {
		t.Fatalf("GeneratedKey: %q %v, want the generated key", k, present)
	}
	if k, present := GeneratedKey(filepath.Join(t.TempDir(), "vault.db")); present || k != "" {
		t.Fatalf("GeneratedKey with no file: %q %v", k, present)
	}
}

// TestSecretsUnsetHere: a secret the config names but this shell expands
// to nothing is an error, never a fallback to generated secrets; a DSN
// never falls back.
func TestSecretsUnsetHere(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		vc   Config
		want string
	}{
		{Config{Path: filepath.Join(dir, "v.db"), KeysSet: true}, "encryption_key is set in the config but expands to nothing here"},
		{Config{Path: filepath.Join(dir, "v.db"), PepperSet: true}, "api_key_pepper is set in the config but expands to nothing here"},
		{Config{Path: "postgres://u:pw@db/x"}, "a PostgreSQL vault needs encryption_key and api_key_pepper"},
	} {
		if _, _, _, err := tc.vc.Secrets(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.vc, err, tc.want)
		}
		if err := tc.vc.Check(); err == nil {
			t.Errorf("%+v: Check passed", tc.vc)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("files generated: %v", entries)
	}
}

// TestDistinctAndSelect: one Config per vault, the longest retention
// kept, conflicting secrets refused; --vault picks by path, or by DSN as
// given or as shown (its password masked).
func TestDistinctAndSelect(t *testing.T) {
	a := Config{Path: "/a.db", LogRetention: time.Hour}
	dsn := Config{Path: "postgres://codex:secret@db/x", LogRetention: time.Hour}
	got, err := Distinct([]Config{a, dsn, {Path: "/a.db", LogRetention: 2 * time.Hour}})
	if err != nil || len(got) != 2 || got[0].LogRetention != 2*time.Hour || got[1].Path != dsn.Path {
		t.Fatalf("Distinct: %+v %v", got, err)
	}
	if _, err := Distinct([]Config{a, {Path: "/a.db", Pepper: "other", PepperSet: true}}); err == nil || !strings.Contains(err.Error(), "different encryption keys or peppers") {
		t.Fatalf("conflicting secrets: %v", err)
	}
	for want, path := range map[string]string{"/a.db": "/a.db", "postgres://codex:xxxxx@db/x": dsn.Path, dsn.Path: dsn.Path} {
		if c, err := Select(got, want); err != nil || c.Path != path {
			t.Errorf("Select(%q): %q %v", want, c.Path, err)
		}
	}
	for want, msg := range map[string]string{"": "choose one with --vault", "/b.db": "no codex_proxy handler in the config uses the vault /b.db"} {
		_, err := Select(got, want)
		if err == nil || !strings.Contains(err.Error(), msg) || strings.Contains(err.Error(), "secret") {
			t.Errorf("Select(%q): %v, want %q and no password", want, err, msg)
		}
	}
	if c, err := Select(got[:1], ""); err != nil || c.Path != "/a.db" {
		t.Errorf("the only vault: %q %v", c.Path, err)
	}
	if _, err := Select(nil, ""); err == nil || !strings.Contains(err.Error(), "no codex_proxy handler") {
		t.Errorf("no handler: %v", err)
	}
}
