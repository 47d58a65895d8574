package vault

import (
	"fmt"
	"testing"
	"time"
)

// The cache hit rate per day, model and key comes back from the request
// log as written to a real bbolt file, across pages of the log (with a
// page boundary among records of one instant), and one key sees its own.
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
	if u.InputTokens != wantIn || u.CachedTokens != wantCached || u.Requests != 1403 || u.Resets != 1 || u.Partial {
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
