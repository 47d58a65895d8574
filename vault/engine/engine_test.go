package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

func TestIsDSN(t *testing.T) {
	for loc, want := range map[string]bool{
		"postgres://u:p@db/codex":       true,
		" PostgreSQL://db/codex":        true,
		"/var/lib/caddy/vault.db":       false,
		"postgres.db":                   false,
		"./postgres://not-a-dsn/x.db":   false,
		"mysql://u:p@db/codex":          false,
		"postgresql:/missing-slash/dbx": false,
	} {
		if got := IsDSN(loc); got != want {
			t.Errorf("IsDSN(%q) = %v, want %v", loc, got, want)
		}
	}
}

func TestDisplayHidesThePassword(t *testing.T) {
	got := Display("postgres://codex:s3cret@db.internal:5432/codex")
	if strings.Contains(got, "s3cret") || !strings.Contains(got, "db.internal") {
		t.Fatalf("Display = %s", got)
	}
	if got := Display("/srv/vault.db"); got != "/srv/vault.db" {
		t.Fatalf("a path is shown as %s", got)
	}
}

// TestOpenBoltPath: a path opens bbolt, creating its directory 0700; a
// second open of the same file fails with vault.ErrLocked.
func TestOpenBoltPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(dir, "vault.db")
	opts := vault.Options{
		EncryptionKeys: []string{"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"},
		Pepper:         "engine-test-pepper-0123",
		OpenTimeout:    50 * time.Millisecond,
	}
	v, err := Open(context.Background(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("directory: %v", err)
	}
	if _, err := Open(context.Background(), path, opts); !errors.Is(err, vault.ErrLocked) {
		t.Fatalf("second open: %v", err)
	}
}
