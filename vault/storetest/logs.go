package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// logRec is a request-log record with every field set.
func logRec(id, userID string, at time.Time, status int, code string) vault.LogRecord {
	return vault.LogRecord{
		Time: at, UserID: userID, KeyID: "k-" + userID, RequestID: id, Route: "/v1/chat/completions",
		Model: "gpt-5-codex", Effort: "medium", ServiceTier: "priority", RequestedTier: "fast", Status: status,
		Duration: 2 * time.Second, TTFB: 300 * time.Millisecond, InputTokens: 1200, OutputTokens: 300,
		CachedTokens: 800, ReasoningTokens: 64, ErrorCode: code,
		AccountID: "acct-1", FailoverFrom: "acct-0", Estimated: true,
	}
}

// midnight is the UTC day of t.
func midnight(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// appendLogs appends one batch without roll-ups.
func appendLogs(t *testing.T, s vault.Store, recs ...vault.LogRecord) {
	t.Helper()
	must(t, s.AppendLogs(ctx, recs, nil))
}

func testLogOrder(t *testing.T, h *harness) {
	s := h.store()
	sec := time.Second
	appendLogs(t, s,
		logRec("r1", "alice", t0, 200, ""),
		logRec("r2", "bob", t0.Add(sec), 200, ""),
		logRec("r3", "alice", t0.Add(2*sec), 500, ""),
	)
	appendLogs(t, s,
		logRec("r4", "alice", t0.Add(2*sec), 200, ""), // same time as r3, appended later
		logRec("r5", "bob", t0.Add(3*sec), 200, "upstream_error"),
		logRec("r0", "alice", t0.Add(-sec), 200, ""), // arrives late
	)
	for _, tc := range []struct {
		name string
		q    vault.LogQuery
		want string
	}{
		{"everyone, newest first", vault.LogQuery{Limit: 10}, "[r5 r4 r3 r2 r1 r0]"},
		{"limit", vault.LogQuery{Limit: 2}, "[r5 r4]"},
		{"next page: strictly before", vault.LogQuery{Limit: 2, Before: t0.Add(2 * sec)}, "[r2 r1]"},
		{"last page", vault.LogQuery{Limit: 2, Before: t0}, "[r0]"},
		{"before everything", vault.LogQuery{Limit: 2, Before: t0.Add(-time.Hour)}, "[]"},
		{"one user", vault.LogQuery{UserID: "alice", Limit: 10}, "[r4 r3 r1 r0]"},
		{"one user, paged", vault.LogQuery{UserID: "alice", Limit: 10, Before: t0.Add(sec)}, "[r1 r0]"},
		{"other user", vault.LogQuery{UserID: "bob", Limit: 1}, "[r5]"},
		{"unknown user", vault.LogQuery{UserID: "carol", Limit: 10}, "[]"},
		{"user id is not a prefix match", vault.LogQuery{UserID: "alic", Limit: 10}, "[]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.RecentLogs(ctx, tc.q)
			must(t, err)
			if ids(got) != tc.want {
				t.Fatalf("got %s, want %s", ids(got), tc.want)
			}
		})
	}
	got, err := s.RecentLogs(ctx, vault.LogQuery{Limit: 1})
	must(t, err)
	same(t, "record round trip", got, []vault.LogRecord{logRec("r5", "bob", t0.Add(3*sec), 200, "upstream_error")})
}

func testLogFilter(t *testing.T, h *harness) {
	s := h.store()
	var recs []vault.LogRecord
	for i, st := range []struct {
		status int
		code   string
	}{{200, ""}, {429, ""}, {200, "stream_cut"}, {201, ""}, {500, "upstream"}, {200, ""}} {
		recs = append(recs, logRec(fmt.Sprint("r", i), "alice", t0.Add(time.Duration(i)*time.Second), st.status, st.code))
	}
	appendLogs(t, s, recs...)
	for _, tc := range []struct {
		name string
		q    vault.LogQuery
		want string
	}{
		{"failed", vault.LogQuery{Limit: 10, Filter: vault.StatusFailed}, "[r4 r2 r1]"},
		{"failed, limit counts matches", vault.LogQuery{Limit: 2, Filter: vault.StatusFailed}, "[r4 r2]"},
		{"failed, paged", vault.LogQuery{Limit: 2, Filter: vault.StatusFailed, Before: t0.Add(2 * time.Second)}, "[r1]"},
		{"success", vault.LogQuery{UserID: "alice", Limit: 10, Filter: vault.StatusSuccess}, "[r5 r3 r0]"},
		{"all", vault.LogQuery{UserID: "alice", Limit: 3, Filter: vault.StatusAll}, "[r5 r4 r3]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.RecentLogs(ctx, tc.q)
			must(t, err)
			if ids(got) != tc.want {
				t.Fatalf("got %s, want %s", ids(got), tc.want)
			}
		})
	}
}

func testUsage(t *testing.T, h *harness) {
	s := h.store()
	d1, d2 := midnight(t0), midnight(t0).Add(day)
	u := func(reqs, errs int64) vault.DayUsage {
		return vault.DayUsage{Requests: reqs, Errors: errs, InputTokens: 10 * reqs, OutputTokens: 5 * reqs, CachedTokens: 2 * reqs, ReasoningTokens: reqs}
	}
	delta := func(user string, d time.Time, du vault.DayUsage) vault.UsageDelta {
		du.Day = d
		return vault.UsageDelta{UserID: user, DayUsage: du}
	}
	must(t, s.AppendLogs(ctx, nil, []vault.UsageDelta{delta("alice", d1, u(2, 1)), delta("bob", d1, u(3, 0)), delta("alice", d2, u(1, 0))}))
	must(t, s.AppendLogs(ctx, nil, []vault.UsageDelta{delta("alice", d1, u(4, 2))})) // adds up
	at := func(d time.Time, du vault.DayUsage) vault.DayUsage { du.Day = d; return du }
	for _, tc := range []struct {
		name     string
		user     string
		from, to time.Time
		want     []vault.DayUsage
	}{
		{"one user, both days", "alice", d1, d2.Add(23 * time.Hour), []vault.DayUsage{at(d1, u(6, 3)), at(d2, u(1, 0))}},
		{"times inside the days", "alice", t0, t0.Add(day), []vault.DayUsage{at(d1, u(6, 3)), at(d2, u(1, 0))}},
		{"one day", "alice", d2, d2, []vault.DayUsage{at(d2, u(1, 0))}},
		{"everyone summed", "", d1, d1, []vault.DayUsage{at(d1, u(9, 3))}},
		{"everyone, both days", "", d1, d2, []vault.DayUsage{at(d1, u(9, 3)), at(d2, u(1, 0))}},
		{"no data", "alice", d2.Add(day), d2.Add(5 * day), []vault.DayUsage{}},
		{"unknown user", "carol", d1, d2, []vault.DayUsage{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Usage(ctx, tc.user, tc.from, tc.to)
			must(t, err)
			if got == nil {
				got = []vault.DayUsage{}
			}
			same(t, "Usage", got, tc.want)
		})
	}
}

func testPurgeLogs(t *testing.T, h *harness) {
	s := h.store()
	// More old records than an engine might delete in one go.
	const old = 5003
	var recs []vault.LogRecord
	for i := range old {
		recs = append(recs, logRec(fmt.Sprint("old", i), "alice", t0.Add(-40*day+time.Duration(i)*time.Millisecond), 200, ""))
	}
	recs = append(recs,
		logRec("d31", "bob", t0.Add(-31*day), 200, ""),
		logRec("d20", "alice", t0.Add(-20*day), 200, ""),
		logRec("d1", "bob", t0.Add(-day), 200, ""),
	)
	must(t, s.AppendLogs(ctx, recs, []vault.UsageDelta{{UserID: "alice", DayUsage: vault.DayUsage{Day: midnight(t0.Add(-40 * day)), Requests: old}}}))
	n, err := s.PurgeLogs(ctx, t0.Add(-30*day))
	must(t, err)
	if n != old+1 {
		t.Fatalf("purged %d, want %d", n, old+1)
	}
	all, err := s.RecentLogs(ctx, vault.LogQuery{Limit: 10})
	must(t, err)
	if ids(all) != "[d1 d20]" {
		t.Fatalf("after purge: %s", ids(all))
	}
	for user, want := range map[string]string{"alice": "[d20]", "bob": "[d1]"} {
		got, err := s.RecentLogs(ctx, vault.LogQuery{UserID: user, Limit: 10})
		must(t, err)
		if ids(got) != want {
			t.Fatalf("%s after purge: %s, want %s", user, ids(got), want)
		}
	}
	// Roll-ups are history: they stay.
	us, err := s.Usage(ctx, "alice", t0.Add(-41*day), t0)
	must(t, err)
	if len(us) != 1 || us[0].Requests != old {
		t.Fatalf("usage after purge: %+v", us)
	}
	if n, err := s.PurgeLogs(ctx, t0.Add(-30*day)); err != nil || n != 0 {
		t.Fatalf("second purge: %d, %v", n, err)
	}
}
