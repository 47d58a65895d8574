package postgres

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/internal/pgtest"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// Two instances log one user's requests: each reads the cluster's exact
// prompt-cache figures from the roll-up, also after the database
// restarts; and the schema step fills the roll-up from a log written
// before it (an upgraded cluster shows its past days).
func TestCacheUsageAcrossInstances(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := srv.NewDB(t)
	fast := func(o *vault.Options) { o.LogFlushInterval = 20 * time.Millisecond }
	a, b := openInstance(t, dsn, fast), openInstance(t, dsn, fast)
	now := time.Now().UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	since := today.AddDate(0, 0, -6)
	logOn := func(inst instance, n int, key string, at time.Time, in, cached int64, failover string) {
		for i := range n {
			inst.v.LogRequest(vault.LogRecord{Time: at, UserID: "u1", KeyID: key, Model: "gpt-5.5",
				RequestID: fmt.Sprint(key, at.Unix(), i), Status: 200, InputTokens: in, OutputTokens: 1, CachedTokens: cached, FailoverFrom: failover})
		}
	}
	logOn(a, 30, "k1", now, 100, 60, "")
	logOn(b, 20, "k1", now, 100, 90, "acct-x")
	logOn(b, 10, "k2", now.AddDate(0, 0, -2), 50, 0, "")
	want := func(u vault.CacheUsage) bool {
		return u.Requests == 60 && u.InputTokens == 5500 && u.CachedTokens == 30*60+20*90 && u.Resets == 20 &&
			len(u.ByDay) == 2 && len(u.ByKey) == 2 && u.ByKey[0].KeyID == "k1" && u.ByKey[0].HitRate == 0.72
	}
	read := func(inst instance) vault.CacheUsage {
		u, err := inst.v.CacheUsage("u1", "", since)
		if err != nil {
			t.Logf("CacheUsage: %v", err)
		}
		return u
	}
	eventually(t, 10*time.Second, "both instances' records in the roll-up", func() bool { return want(read(a)) && want(read(b)) })

	srv.Stop()
	srv.Start()
	eventually(t, 15*time.Second, "the same figures after a database restart", func() bool { return want(read(a)) && want(read(b)) })

	// Back-fill: drop the table and run its schema step again over the
	// log (the later steps, if any, are in place).
	step := -1
	for i, m := range migrations {
		if m.sql == cacheUsageSchema {
			step = i
		}
	}
	ctx := context.Background()
	if _, err := a.s.pool.Exec(ctx, `DROP TABLE codex_cache_usage`); err != nil {
		t.Fatal(err)
	}
	if _, err := a.s.pool.Exec(ctx, `UPDATE codex_proxy_schema SET version = $1`, step); err != nil {
		t.Fatal(err)
	}
	if err := a.s.migrateTo(ctx, migrations[:step+1]); err != nil {
		t.Fatal(err)
	}
	if _, err := a.s.pool.Exec(ctx, `UPDATE codex_proxy_schema SET version = $1`, SchemaVersion); err != nil {
		t.Fatal(err)
	}
	if u, err := b.v.CacheUsage("u1", "", since); err != nil || !want(u) {
		t.Fatalf("after the back-fill: %+v, %v", u, err)
	}
}
