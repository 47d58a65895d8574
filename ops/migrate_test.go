package ops

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usemysub/caddy-codex-proxy/vault"
	"github.com/usemysub/caddy-codex-proxy/vault/bolt"
	"github.com/usemysub/caddy-codex-proxy/vault/engine"
	"github.com/usemysub/caddy-codex-proxy/vault/migrate"
)

// boltStore opens a bbolt store in a temporary directory.
func boltStore(t *testing.T, path string) vault.Store {
	t.Helper()
	s, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestMigrate copies a vault with a user, a key and a login between two
// bbolt stores, refuses a non-empty target, and checks the decryption.
func TestMigrate(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	v, err := engine.Open(context.Background(), filepath.Join(dir, "src.db"), vault.Options{EncryptionKeys: []string{testEncKey}, Pepper: testPepper})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Local(v).UpsertUser(ctx, UserRequest{Email: "ada@example.com", AuthJSON: authJSON(t, "ada@example.com", "pro")}); err != nil {
		t.Fatal(err)
	}
	if _, err := createTestKey(ctx, Local(v), "ada@example.com", nil); err != nil {
		t.Fatal(err)
	}
	v.Close()
	src := boltStore(t, filepath.Join(dir, "src.db"))
	dst := boltStore(t, filepath.Join(dir, "dst.db"))

	res, err := Migrate(ctx, src, dst, false)
	if err != nil || !res.Verified.OK() || res.Copied[vault.KindUsers] != 1 || res.Verified.Matched[vault.KindKeys] != 1 {
		t.Fatalf("migrate: %v %+v", err, res)
	}
	var ne *migrate.NotEmptyError
	if _, err := Migrate(ctx, src, dst, false); !errors.As(err, &ne) {
		t.Fatalf("into a non-empty target: %v", err)
	}
	if res, err := Migrate(ctx, src, dst, true); err != nil || !res.Verified.OK() {
		t.Fatalf("replace: %v %+v", err, res)
	}

	for _, tc := range []struct {
		keys    []string
		checked int
		failed  int
	}{
		{[]string{testEncKey}, 1, 0},
		{[]string{strings.Repeat("ab", 32)}, 1, 1},
		{nil, 0, 0},
	} {
		d, err := CheckDecrypts(ctx, dst, tc.keys)
		if err != nil || d.Total != 1 || d.Checked != tc.checked || len(d.Failed) != tc.failed {
			t.Errorf("keys %d: %v %+v", len(tc.keys), err, d)
		}
	}

	var buf bytes.Buffer
	if n, err := BackupStore(dst, &buf); err != nil || n == 0 {
		t.Fatalf("backup: %d %v", n, err)
	}
	counts, err := CountStore(ctx, dst)
	if err != nil || counts[vault.KindUsers] != 1 {
		t.Fatalf("count: %v %v", err, counts)
	}
}
