package bolt

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// A file of the release before the roll-up (its request log written, no
// cache_usage bucket) is filled from its log at the upgrade, so its past
// days show at once.
func TestCacheRollupBackfill(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	ctx := context.Background()
	recs := []vault.LogRecord{
		{Time: now, UserID: "u1", KeyID: "k1", Model: "gpt-5.5", Status: 200, InputTokens: 100, CachedTokens: 75},
		{Time: now.AddDate(0, 0, -3), UserID: "u1", KeyID: "k2", Model: "gpt-5.5", Status: 200, InputTokens: 100, FailoverFrom: "a0"},
		{Time: now, UserID: "u1", KeyID: "k1", Status: 499},
	}
	if err := s.AppendLogs(ctx, recs, nil); err != nil {
		t.Fatal(err)
	}
	step := uint64(0)
	for _, m := range migrations {
		if m.name == cacheRollupStep {
			step = m.to
		}
	}
	// Back to the release before: no bucket, the schema before the step.
	if err := s.DB().Update(func(tx *bbolt.Tx) error { return tx.DeleteBucket(bucketCacheUsage) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	setSchema(t, path, step-1)

	v, err := openVault(t, path)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	u, err := v.CacheUsage("u1", "", today.AddDate(0, 0, -6))
	if err != nil {
		t.Fatal(err)
	}
	if u.Requests != 2 || u.InputTokens != 200 || u.CachedTokens != 75 || u.Resets != 1 || len(u.ByDay) != 2 || len(u.ByKey) != 2 {
		t.Fatalf("after the upgrade: %+v", u)
	}
}

// A backup (vault backup: the file from one read transaction) carries
// the roll-up as it is.
func TestCacheRollupInBackup(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(filepath.Join(dir, "vault.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	now := time.Now().UTC()
	if err := s.AppendLogs(ctx, []vault.LogRecord{
		{Time: now, UserID: "u1", KeyID: "k1", Model: "gpt-5.5", Status: 200, InputTokens: 100, CachedTokens: 75},
		{Time: now.AddDate(0, 0, -1), UserID: "u1", KeyID: "k1", Model: "gpt-5.5", Status: 200, InputTokens: 10},
	}, nil); err != nil {
		t.Fatal(err)
	}
	want, err := s.CacheRollup(ctx, "u1", "", now.AddDate(0, 0, -7))
	if err != nil || len(want) != 2 {
		t.Fatalf("rows %+v, %v", want, err)
	}
	f, err := os.Create(filepath.Join(dir, "backup.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Backup(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	b, err := Open(f.Name(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	got, err := b.CacheRollup(ctx, "u1", "", now.AddDate(0, 0, -7))
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("rows of the backup %+v, %v; want %+v", got, err, want)
	}
}
