package postgres

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/internal/pgtest"
	"github.com/usemysub/caddy-codex-proxy/vault"
	"github.com/usemysub/caddy-codex-proxy/vault/bolt"
	"github.com/usemysub/caddy-codex-proxy/vault/migrate"
	"github.com/usemysub/caddy-codex-proxy/vault/storetest"
)

// TestCopyAcrossEngines copies a bbolt store into PostgreSQL and back into
// a new bbolt file: every kind arrives, reads answer the same, and the
// nanosecond times bbolt keeps verify against PostgreSQL's microseconds.
func TestCopyAcrossEngines(t *testing.T) {
	ctx := context.Background()
	srv := pgtest.Start(t)
	dir := t.TempDir()
	file, err := bolt.Open(filepath.Join(dir, "a.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	storetest.Fill(t, file)
	// A time with nanoseconds, as the bbolt engine keeps them.
	nano := time.Date(2026, 3, 12, 8, 0, 0, 123456789, time.UTC)
	if err := file.AppendLogs(ctx, []vault.LogRecord{{Time: nano, UserID: "u-a", RequestID: "nano", Status: 200}}, nil); err != nil {
		t.Fatal(err)
	}

	pg, err := Open(ctx, srv.NewDB(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	n, err := migrate.Copy(ctx, file, pg, migrate.Options{LogBatch: 3})
	if err != nil {
		t.Fatal(err)
	}
	if n[vault.KindRequestLogs] != 6 || n[vault.KindUsers] != 3 {
		t.Fatalf("copied %v", n)
	}
	v, err := migrate.Verify(ctx, file, pg)
	if err != nil || !v.OK() {
		t.Fatalf("bbolt → PostgreSQL: %v; matched %v of %v; %q", err, v.Matched, v.Source, v.Problems)
	}
	got, err := pg.RecentLogs(ctx, vault.LogQuery{Limit: 1})
	if err != nil || len(got) != 1 || !got[0].Time.Equal(nano.Truncate(time.Microsecond)) {
		t.Fatalf("newest record in PostgreSQL: %v %v", got, err)
	}

	back, err := bolt.Open(filepath.Join(dir, "b.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	if _, err := migrate.Copy(ctx, pg, back, migrate.Options{}); err != nil {
		t.Fatal(err)
	}
	storetest.CheckSame(t, pg, back)
}
