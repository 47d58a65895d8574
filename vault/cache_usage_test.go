package vault

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// The cache hit rate per day, model and key comes back from the roll-up
// written with the request log to a real bbolt file, exact after a
// reopen, and one key sees its own.
func TestCacheUsage(t *testing.T) {
	v, path, clock := logVault(t, nil)
	day1, day2 := t0.Add(-24*time.Hour), t0
	var n int
	log := func(at time.Time, key, model string, in, cached int64, failover string) {
		n++
		v.LogRequest(LogRecord{Time: at, UserID: "u1", KeyID: key, RequestID: fmt.Sprint("r", n), Model: model,
			Status: 200, InputTokens: in, OutputTokens: 7, CachedTokens: cached, FailoverFrom: failover})
	}
	// 1400 requests on day 2, 600 of them at one instant, so a page of
	// the log ends among them.
	for i := range 800 {
		log(day2.Add(time.Duration(i+1)*time.Second), "k1", "gpt-5.5", 100, 80, "")
	}
	for range 600 {
		log(day2, "k1", "gpt-5.5", 100, 50, "")
	}
	log(day1, "k2", "gpt-5.4-mini", 1000, 0, "acct-a") // a conversation moved: a reset
	log(day1, "k2", "gpt-5.5", 200, 100, "")
	log(day1.Add(-48*time.Hour), "k1", "gpt-5.5", 5000, 5000, "") // before the window
	log(day2, "k1", "", 0, 0, "")                                 // no input: not counted
	log(day2, "k9", "gpt-5.5", 10, 0, "")                         // a key of the same user
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	v = openAt(t, path, testOptions(clock))

	since := day1.Add(-time.Hour)
	u, err := v.CacheUsage("u1", "", since)
	if err != nil {
		t.Fatal(err)
	}
	wantIn := int64(1400*100 + 1000 + 200 + 10)
	wantCached := int64(800*80 + 600*50 + 100)
	if u.InputTokens != wantIn || u.CachedTokens != wantCached || u.Requests != 1403 || u.Resets != 1 {
		t.Fatalf("total %+v, want %d input, %d cached, 1403 requests, 1 reset", u.CacheStat, wantIn, wantCached)
	}
	if len(u.ByDay) != 2 || u.ByDay[0].Day != day1.Format(time.DateOnly) || u.ByDay[1].InputTokens != 140010 ||
		u.ByDay[0].HitRate != 0.0833 {
		t.Fatalf("by day %+v", u.ByDay)
	}
	if len(u.ByModel) != 2 || u.ByModel[0].Model != "gpt-5.5" || u.ByModel[1].HitRate != 0 || u.ByModel[1].Resets != 1 {
		t.Fatalf("by model %+v", u.ByModel)
	}
	if len(u.ByKey) != 3 || u.ByKey[0].KeyID != "k1" || u.ByKey[0].CachedTokens != 800*80+600*50 || u.ByKey[0].HitRate != 0.6714 {
		t.Fatalf("by key %+v", u.ByKey)
	}
	k2, err := v.CacheUsage("u1", "k2", since)
	if err != nil || k2.InputTokens != 1200 || k2.CachedTokens != 100 || k2.ByKey != nil || len(k2.ByModel) != 2 {
		t.Fatalf("one key: %+v %v", k2, err)
	}
}

// cacheLog appends n records of one user, spread over the 7 days before
// end, 2 keys and 3 models, straight into the store (as the writer
// batches them).
func cacheLog(t testing.TB, v *Vault, n int, end time.Time) {
	t.Helper()
	models := []string{"gpt-5.5", "gpt-5.4-mini", "gpt-6-astra"}
	batch := make([]LogRecord, 0, 5000)
	for i := range n {
		batch = append(batch, LogRecord{Time: end.Add(-time.Duration(i%(7*24)) * time.Hour), UserID: "u1",
			KeyID: []string{"k1", "k2"}[i%2], Model: models[i%3], RequestID: fmt.Sprint("r", i), Status: 200,
			InputTokens: 100, OutputTokens: 5, CachedTokens: 40})
		if len(batch) == cap(batch) || i == n-1 {
			if err := boltOf(v).AppendLogs(context.Background(), batch, nil); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
}

// A busy user's week is counted whole: every one of 25,000 requests (more
// than the 20,000 records a summary once read, when it said "partial").
func TestCacheUsageOfABusyWeek(t *testing.T) {
	v, _, _ := logVault(t, nil)
	end := t0.Truncate(24 * time.Hour).Add(23 * time.Hour)
	const n = 25000
	cacheLog(t, v, n, end)
	since := end.Truncate(24*time.Hour).AddDate(0, 0, -6)
	u, err := v.CacheUsage("u1", "", since)
	if err != nil {
		t.Fatal(err)
	}
	if u.Requests != n || u.InputTokens != 100*n || u.CachedTokens != 40*n || u.HitRate != 0.4 || len(u.ByDay) != 7 ||
		len(u.ByModel) != 3 || len(u.ByKey) != 2 || u.ByKey[0].Requests != n/2 {
		t.Fatalf("%d requests, %d input, %d cached, rate %v, %d days, %d models, %d keys; want all %d",
			u.Requests, u.InputTokens, u.CachedTokens, u.HitRate, len(u.ByDay), len(u.ByModel), len(u.ByKey), n)
	}
}

// BenchmarkCacheUsage is one /v1/usage cache summary of a user with 1,000
// and 100,000 records in the week: the same roll-up rows (7 days × 3
// models × 2 keys) either way, so the same cost.
func BenchmarkCacheUsage(b *testing.B) {
	for _, n := range []int{1000, 100000} {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			v, _, _ := newTestVault(b, func(o *Options) { o.LogFlushInterval = time.Hour })
			end := t0.Truncate(24 * time.Hour).Add(23 * time.Hour)
			cacheLog(b, v, n, end)
			since := end.Truncate(24*time.Hour).AddDate(0, 0, -6)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if u, err := v.CacheUsage("u1", "", since); err != nil || u.Requests != int64(n) {
					b.Fatalf("%d requests, %v", u.Requests, err)
				}
			}
		})
	}
}
