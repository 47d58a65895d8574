package vault

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// logVault is a vault whose writer only commits full batches or on Close,
// so tests decide when records reach the file.
func logVault(t *testing.T, mod func(*Options)) (*Vault, string, *fakeClock) {
	return newTestVault(t, func(o *Options) {
		o.LogFlushInterval = time.Hour
		if mod != nil {
			mod(o)
		}
	})
}

func TestRequestLogSurvivesClose(t *testing.T) {
	v, path, clock := logVault(t, nil)
	const n = 1300 // two full batches and a partial one
	for i := range n {
		v.LogRequest(LogRecord{Time: t0.Add(time.Duration(i) * time.Millisecond), UserID: "u1", KeyID: "k1",
			RequestID: fmt.Sprint("req-", i), Route: "/v1/chat/completions", Model: "gpt-5", Effort: "high",
			ServiceTier: "priority", Status: 200, Duration: time.Second, TTFB: 100 * time.Millisecond,
			InputTokens: 10, OutputTokens: 5, CachedTokens: 2, ReasoningTokens: 1})
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if d := v.DroppedLogs(); d != 0 {
		t.Fatalf("%d records dropped", d)
	}
	v2 := openAt(t, path, testOptions(clock))
	recs, err := v2.RecentRequests("u1", time.Time{}, 1000, StatusAll)
	if err != nil || len(recs) != 1000 {
		t.Fatalf("got %d records, %v", len(recs), err)
	}
	if recs[0].RequestID != "req-1299" || recs[999].RequestID != "req-300" {
		t.Fatalf("not newest first: %s … %s", recs[0].RequestID, recs[999].RequestID)
	}
	want := LogRecord{Time: t0.Add(1299 * time.Millisecond), UserID: "u1", KeyID: "k1", RequestID: "req-1299",
		Route: "/v1/chat/completions", Model: "gpt-5", Effort: "high", ServiceTier: "priority", Status: 200,
		Duration: time.Second, TTFB: 100 * time.Millisecond, InputTokens: 10, OutputTokens: 5, CachedTokens: 2, ReasoningTokens: 1}
	if !reflect.DeepEqual(recs[0], want) {
		t.Fatalf("record changed in storage:\n%+v\n%+v", recs[0], want)
	}
	days, _ := v2.Usage("u1", t0, t0)
	if len(days) != 1 || days[0].Requests != n || days[0].InputTokens != 10*n {
		t.Fatalf("usage %+v", days)
	}
}

func TestRecentRequestsQuery(t *testing.T) {
	v, path, clock := logVault(t, nil)
	// Logged out of order: the query orders by request time.
	for _, r := range []LogRecord{
		{Time: t0.Add(3 * time.Second), UserID: "alice", RequestID: "a3", Status: 500, ErrorCode: "upstream_error"},
		{Time: t0.Add(1 * time.Second), UserID: "alice", RequestID: "a1", Status: 200},
		{Time: t0.Add(2 * time.Second), UserID: "bob", RequestID: "b2", Status: 200},
		{Time: t0.Add(4 * time.Second), UserID: "alice", RequestID: "a4", Status: 200},
		{Time: t0.Add(5 * time.Second), UserID: "alice", RequestID: "a5", Status: 200, ErrorCode: "client_gone"},
		{Time: t0.Add(6 * time.Second), RequestID: "anon", Status: 401},
	} {
		v.LogRequest(r)
	}
	v.Close()
	v2 := openAt(t, path, testOptions(clock))
	for _, tc := range []struct {
		name   string
		user   string
		before time.Duration // 0 = no cursor
		limit  int
		filter StatusFilter
		want   string
	}{
		{"all of alice", "alice", 0, 10, StatusAll, "[a5 a4 a3 a1]"},
		{"limit", "alice", 0, 2, StatusAll, "[a5 a4]"},
		{"page 2", "alice", 4 * time.Second, 2, StatusAll, "[a3 a1]"},
		{"failed", "alice", 0, 10, StatusFailed, "[a5 a3]"},
		{"success", "alice", 0, 10, StatusSuccess, "[a4 a1]"},
		{"bob", "bob", 0, 10, StatusAll, "[b2]"},
		{"everyone", "", 0, 10, StatusAll, "[anon a5 a4 a3 b2 a1]"},
		{"everyone before", "", 3 * time.Second, 10, StatusAll, "[b2 a1]"},
		{"nobody", "carol", 0, 10, StatusAll, "[]"},
		{"default limit", "alice", 0, 0, StatusAll, "[a5 a4 a3 a1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before time.Time
			if tc.before != 0 {
				before = t0.Add(tc.before)
			}
			recs, err := v2.RecentRequests(tc.user, before, tc.limit, tc.filter)
			if err != nil {
				t.Fatal(err)
			}
			ids := []string{}
			for _, r := range recs {
				ids = append(ids, r.RequestID)
			}
			if got := fmt.Sprint(ids); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestUsageRollups(t *testing.T) {
	v, path, clock := logVault(t, func(o *Options) { o.LogBatchSize = 2 }) // several batches
	day1, day2 := t0, t0.Add(24*time.Hour)
	for _, r := range []LogRecord{
		{Time: day1, UserID: "alice", Status: 200, InputTokens: 100, OutputTokens: 10, CachedTokens: 50, ReasoningTokens: 5},
		{Time: day1.Add(time.Hour), UserID: "alice", Status: 429, ErrorCode: "usage_limit_reached"},
		{Time: day1.Add(2 * time.Hour), UserID: "alice", Status: 200, InputTokens: 1, OutputTokens: 2, CachedTokens: 3, ReasoningTokens: 4},
		{Time: day2, UserID: "alice", Status: 200, InputTokens: 7},
		{Time: day2, UserID: "bob", Status: 200, InputTokens: 1000},
	} {
		v.LogRequest(r)
	}
	v.Close()
	v2 := openAt(t, path, testOptions(clock))
	midnight := t0.Truncate(24 * time.Hour)
	for _, tc := range []struct {
		name     string
		user     string
		from, to time.Time
		want     []DayUsage
	}{
		{"alice both days", "alice", day1, day2, []DayUsage{
			{Day: midnight, Requests: 3, Errors: 1, InputTokens: 101, OutputTokens: 12, CachedTokens: 53, ReasoningTokens: 9},
			{Day: midnight.Add(24 * time.Hour), Requests: 1, InputTokens: 7},
		}},
		{"alice day 2", "alice", day2, day2, []DayUsage{{Day: midnight.Add(24 * time.Hour), Requests: 1, InputTokens: 7}}},
		{"everyone day 2", "", day2, day2, []DayUsage{{Day: midnight.Add(24 * time.Hour), Requests: 2, InputTokens: 1007}}},
		{"bob day 1", "bob", day1, day1, []DayUsage{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := v2.Usage(tc.user, tc.from, tc.to)
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, %v\nwant %+v", got, err, tc.want)
			}
		})
	}
}

// bucketLen counts the keys of a bucket.
func bucketLen(t *testing.T, v *Vault, name []byte) int {
	n := 0
	if err := boltOf(v).DB().View(func(tx *bbolt.Tx) error {
		return tx.Bucket(name).ForEach(func(_, _ []byte) error { n++; return nil })
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRetentionPurge(t *testing.T) {
	v, path, clock := logVault(t, func(o *Options) { o.LogRetention = 30 * 24 * time.Hour })
	for _, age := range []int{40, 31, 20, 1} {
		v.LogRequest(LogRecord{Time: t0.Add(-time.Duration(age) * 24 * time.Hour), UserID: "alice", RequestID: fmt.Sprint(age), Status: 200})
	}
	v.Close()
	opts := testOptions(clock)
	opts.LogRetention = 30 * 24 * time.Hour
	v2 := openAt(t, path, opts) // purges at open
	ids := func() string {
		recs, _ := v2.RecentRequests("alice", time.Time{}, 10, StatusAll)
		var out []string
		for _, r := range recs {
			out = append(out, r.RequestID)
		}
		return fmt.Sprint(out)
	}
	if got := ids(); got != "[1 20]" {
		t.Fatalf("after open: %s", got)
	}
	clock.Advance(15 * 24 * time.Hour)
	if n, err := v2.purgeLogs(); err != nil || n != 1 {
		t.Fatalf("purge = %d, %v", n, err)
	}
	if got := ids(); got != "[1]" {
		t.Fatalf("after purge: %s", got)
	}
	if a, b := bucketLen(t, v2, bucketRequests), bucketLen(t, v2, bucketRequestsByUsr); a != 1 || b != 1 {
		t.Fatalf("records %d, index entries %d; want 1, 1", a, b)
	}
}

func TestLogRequestNeverBlocks(t *testing.T) {
	v, _, _ := logVault(t, func(o *Options) { o.LogBuffer = 4; o.LogBatchSize = 1 })
	// Hold the file's writer lock: the log writer stalls on its commit.
	release := make(chan struct{})
	held := make(chan struct{})
	go boltOf(v).DB().Update(func(*bbolt.Tx) error { close(held); <-release; return nil })
	<-held
	start := time.Now()
	for range 100 {
		v.LogRequest(LogRecord{UserID: "u", Status: 200})
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("LogRequest blocked for %v", d)
	}
	close(release)
	// The writer may have taken up to 16 batches before it stalled, and the
	// queue holds 4: everything else must have been dropped and counted.
	if d := v.DroppedLogs(); d < 100-4-16 {
		t.Fatalf("%d drops counted, want at least %d of 100", d, 100-4-16)
	}
	v.Close()
	v.LogRequest(LogRecord{UserID: "u"}) // after Close: dropped, no panic
}
