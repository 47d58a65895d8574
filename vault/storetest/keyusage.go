package storetest

import (
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/keypolicy"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// testKeyUsage: an engine that keeps token usage per key and day
// (vault.KeyUsageStore) counts what AppendLogs writes for existing keys
// from their reset point on, sums it over the day and the ISO week, keeps
// it past the request log's retention and across a reopen, and forgets a
// key's usage when it is reset.
func testKeyUsage(t *testing.T, h *harness) {
	s := h.store()
	ks, ok := s.(vault.KeyUsageStore)
	if !ok {
		t.Skip("the engine keeps no per-key usage")
	}
	now := time.Now().UTC()
	day, week := keypolicy.DayStart(now), keypolicy.WeekStart(now)
	mustUser(t, s, "u-a", "a@example.com")
	must(t, s.CreateKey(ctx, key("k1", "u-a")))
	must(t, s.CreateKey(ctx, key("k2", "u-a")))
	rec := func(id, keyID string, at time.Time, in, out int64) vault.LogRecord {
		return vault.LogRecord{Time: at, UserID: "u-a", KeyID: keyID, RequestID: id, Route: "chat_completions", Status: 200,
			InputTokens: in, OutputTokens: out}
	}
	earlierThisWeek := week.Add(time.Hour)
	if earlierThisWeek.After(now) || !earlierThisWeek.Before(day) {
		earlierThisWeek = day.Add(-time.Hour) // Monday: last week, not counted in the week
	}
	must(t, s.AppendLogs(ctx, []vault.LogRecord{
		rec("r1", "k1", now.Add(-time.Minute), 100, 20),
		rec("r2", "k1", earlierThisWeek, 1000, 0),
		rec("r3", "k2", now.Add(-time.Minute), 5, 5),
		rec("r4", "k-gone", now.Add(-time.Minute), 7, 7), // no such key
		rec("r5", "k1", week.Add(-24*time.Hour), 9, 9),   // last week
	}, nil))
	got, err := ks.KeyUsage(ctx, nil, day, week)
	must(t, err)
	wantWeek := int64(120)
	if !earlierThisWeek.Before(week) {
		wantWeek += 1000
	}
	if got["k1"].Day != 120 || got["k1"].Week != wantWeek || got["k2"].Day != 10 || got["k-gone"] != (keypolicy.Totals{}) {
		t.Fatalf("KeyUsage(all) = %+v, want k1 %d/%d and k2 10/10", got, 120, wantWeek)
	}
	// The usage outlives the request log's retention, and a reopen.
	_, err = s.PurgeLogs(ctx, now.Add(time.Hour))
	must(t, err)
	must(t, closeOnce(s))
	s = h.store()
	ks = s.(vault.KeyUsageStore)
	got, err = ks.KeyUsage(ctx, []string{"k1"}, day, week)
	must(t, err)
	if len(got) != 1 || got["k1"].Day != 120 || got["k1"].Week != wantWeek {
		t.Fatalf("KeyUsage(k1) after purge and reopen = %+v", got)
	}
	// A reset forgets what came before it; later records count again.
	must(t, s.ResetKeyUsage(ctx, "u-a", "k1", now))
	must(t, s.AppendLogs(ctx, []vault.LogRecord{
		rec("r6", "k1", now.Add(-time.Second), 50, 0), // before the reset point
		rec("r7", "k1", now.Add(time.Second), 3, 4),
	}, nil))
	got, err = ks.KeyUsage(ctx, []string{"k1", "k2"}, day, week)
	must(t, err)
	if got["k1"].Day != 7 || got["k1"].Week != 7 || got["k2"].Day != 10 {
		t.Fatalf("KeyUsage after reset = %+v, want k1 7/7", got)
	}
	if got, err := ks.KeyUsage(ctx, []string{}, day, week); err != nil || len(got) != 0 {
		t.Fatalf("KeyUsage(none) = %+v, %v", got, err)
	}
}
