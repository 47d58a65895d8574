package migrate_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/usemysub/caddy-codex-proxy/vault"
	"github.com/usemysub/caddy-codex-proxy/vault/bolt"
	"github.com/usemysub/caddy-codex-proxy/vault/migrate"
	"github.com/usemysub/caddy-codex-proxy/vault/storetest"
)

func openBolt(t *testing.T, name string) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(filepath.Join(t.TempDir(), name), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestCopyBetweenFiles: a full copy between two bbolt files verifies
// record by record, and a second copy into the now full target is refused
// with what it holds.
func TestCopyBetweenFiles(t *testing.T) {
	ctx := context.Background()
	src, dst := openBolt(t, "a.db"), openBolt(t, "b.db")
	storetest.Fill(t, src)
	n, err := migrate.Copy(ctx, src, dst, migrate.Options{})
	if err != nil || n.Total() == 0 {
		t.Fatalf("Copy = %v, %v", n, err)
	}
	storetest.CheckSame(t, src, dst)
	_, err = migrate.Copy(ctx, src, dst, migrate.Options{})
	var ne *migrate.NotEmptyError
	if !errors.Is(err, migrate.ErrNotEmpty) || !errors.As(err, &ne) || ne.Counts.Total() != n.Total() {
		t.Fatalf("copy into a full target: %v", err)
	}
}

// plainStore hides the optional interfaces of the store it wraps.
type plainStore struct{ vault.Store }

// TestCopyNeedsExport: an engine without vault.Exporter can be neither
// source nor target, and nothing is written.
func TestCopyNeedsExport(t *testing.T) {
	ctx := context.Background()
	src, dst := openBolt(t, "a.db"), openBolt(t, "b.db")
	storetest.Fill(t, src)
	if _, err := migrate.Copy(ctx, plainStore{src}, dst, migrate.Options{}); !errors.Is(err, migrate.ErrNoExport) {
		t.Fatalf("plain source: %v", err)
	}
	if _, err := migrate.Copy(ctx, src, plainStore{dst}, migrate.Options{}); !errors.Is(err, migrate.ErrNoExport) {
		t.Fatalf("plain target: %v", err)
	}
	if _, err := migrate.Verify(ctx, src, plainStore{dst}); !errors.Is(err, migrate.ErrNoExport) {
		t.Fatalf("verify with a plain target: %v", err)
	}
	if c, err := dst.Count(ctx); err != nil || c.Total() != 0 {
		t.Fatalf("the target was written: %v, %v", c, err)
	}
}
