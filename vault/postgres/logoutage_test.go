package postgres

import (
	"fmt"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/internal/pgtest"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// TestRequestLogSurvivesRestart: records logged while PostgreSQL is
// stopped are kept by the vault's writer and appear, with their usage,
// once it is started again, without reopening anything.
func TestRequestLogSurvivesRestart(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := srv.NewDB(t)
	inst := openInstance(t, dsn, func(o *vault.Options) { o.LogFlushInterval = 20 * time.Millisecond })
	now := time.Now().UTC()
	logRange := func(from, to int) {
		for i := from; i < to; i++ {
			inst.v.LogRequest(vault.LogRecord{Time: now, UserID: "u1", KeyID: "k1",
				RequestID: fmt.Sprint("req-", i), Status: 200, InputTokens: 3, OutputTokens: 4})
		}
	}
	count := func() int {
		recs, err := inst.v.RecentRequests("u1", time.Time{}, 1000, vault.StatusAll)
		if err != nil {
			return -1
		}
		return len(recs)
	}
	logRange(0, 10)
	eventually(t, 10*time.Second, "records before the outage", func() bool { return count() == 10 })

	srv.Stop()
	logRange(10, 60)
	time.Sleep(500 * time.Millisecond) // a few failed writes and retries
	logRange(60, 100)
	srv.Start()

	took := eventually(t, 15*time.Second, "records logged during the outage", func() bool { return count() == 100 })
	t.Logf("all 100 records stored %s after PostgreSQL came back", took.Round(time.Millisecond))
	if d := inst.v.DroppedLogs(); d != 0 {
		t.Fatalf("%d records dropped", d)
	}
	days, err := inst.v.Usage("u1", now, now)
	if err != nil || len(days) != 1 || days[0].Requests != 100 || days[0].InputTokens != 300 {
		t.Fatalf("usage after the outage: %+v, %v", days, err)
	}
}
