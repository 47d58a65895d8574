package keypolicy

import (
	"net/http"
	"sync"
	"testing"
	"time"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTracker() (*Tracker, *clock) {
	c := &clock{t: now}
	return NewTracker(c.now), c
}

func TestAdmit(t *testing.T) {
	type step struct {
		advance time.Duration
		tokens  int64  // recorded for the request if admitted, released at once
		hold    bool   // keep the request in flight
		want    Reason // "" admitted
		retry   time.Duration
	}
	for _, tc := range []struct {
		name  string
		p     Policy
		steps []step
	}{
		{"no policy admits everything", Policy{}, []step{{hold: true}, {hold: true}, {tokens: 1e9}, {}}},
		{"rpm", Policy{RPM: 2}, []step{
			{}, {advance: 10 * time.Second}, {advance: 10 * time.Second, want: ReasonRPM, retry: 40 * time.Second},
			{advance: 40 * time.Second}, {want: ReasonRPM, retry: 10 * time.Second}, {advance: 10 * time.Second},
		}},
		{"concurrency", Policy{Concurrency: 2}, []step{
			{hold: true}, {hold: true}, {want: ReasonConcurrency, retry: time.Second},
		}},
		{"day budget", Policy{TokensPerDay: 100}, []step{
			{tokens: 60}, {tokens: 60}, // the second crosses the budget and still finishes
			{want: ReasonDayBudget, retry: 8*time.Hour + 55*time.Minute + 55*time.Second},
			{advance: 9 * time.Hour, tokens: 10}, // next day
		}},
		{"week budget", Policy{TokensPerWeek: 100, TokensPerDay: 1000}, []step{
			{tokens: 100}, {advance: 24 * time.Hour, want: ReasonWeekBudget, retry: 3*24*time.Hour + 8*time.Hour + 55*time.Minute + 55*time.Second},
			{advance: 5 * 24 * time.Hour},
		}},
		{"day budget before rate", Policy{TokensPerDay: 1, RPM: 1}, []step{
			{tokens: 1}, {want: ReasonDayBudget, retry: 8*time.Hour + 55*time.Minute + 55*time.Second},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, clk := newTracker()
			for i, s := range tc.steps {
				clk.add(s.advance)
				release, refused := tr.Admit("k", tc.p)
				switch {
				case s.want == "" && refused != nil:
					t.Fatalf("step %d refused: %v", i, refused)
				case s.want != "" && refused == nil:
					t.Fatalf("step %d admitted, want %s", i, s.want)
				case s.want != "":
					if refused.Reason != s.want || refused.RetryAfter != s.retry || refused.Status != http.StatusTooManyRequests {
						t.Fatalf("step %d: %s retry %v status %d, want %s retry %v 429", i, refused.Reason, refused.RetryAfter, refused.Status, s.want, s.retry)
					}
					wantCode := CodeRateLimited
					if s.want == ReasonDayBudget || s.want == ReasonWeekBudget {
						wantCode = CodeBudgetExhausted
					}
					if refused.Code != wantCode {
						t.Fatalf("step %d code %s, want %s", i, refused.Code, wantCode)
					}
					continue
				}
				tr.Record("k", clk.now(), s.tokens)
				if !s.hold {
					release()
					release() // twice is harmless
				}
			}
		})
	}
}

func TestReleaseFreesSlot(t *testing.T) {
	tr, _ := newTracker()
	p := Policy{Concurrency: 1}
	release, r := tr.Admit("k", p)
	if r != nil {
		t.Fatal(r)
	}
	if _, r := tr.Admit("k", p); r == nil {
		t.Fatal("second concurrent request admitted")
	}
	release()
	if _, r := tr.Admit("k", p); r != nil {
		t.Fatalf("slot not freed: %v", r)
	}
	if _, r := tr.Admit("other", p); r != nil {
		t.Fatalf("another key shares the slot: %v", r)
	}
}

func TestConcurrentAdmitsNeverExceed(t *testing.T) {
	tr, _ := newTracker()
	p := Policy{Concurrency: 3}
	var mu sync.Mutex
	in, peak := 0, 0
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			for range 20 {
				release, r := tr.Admit("k", p)
				if r != nil {
					continue
				}
				mu.Lock()
				in++
				peak = max(peak, in)
				mu.Unlock()
				mu.Lock()
				in--
				mu.Unlock()
				release()
			}
		})
	}
	wg.Wait()
	if peak > 3 {
		t.Fatalf("%d requests in flight at once, limit 3", peak)
	}
	if s := tr.Status("k", p); s.Concurrent.Used != 0 {
		t.Fatalf("%d still in flight after all released", s.Concurrent.Used)
	}
}

func TestLoadAndReset(t *testing.T) {
	tr, clk := newTracker()
	reset := now.Add(-2 * time.Hour)
	tr.SetReset("k", reset)
	tr.Load([]Rebuilt{
		{KeyID: "k", Started: now.Add(-30 * time.Second), Tokens: 5},   // today, last minute
		{KeyID: "k", Started: now.Add(-time.Hour), Tokens: 10},         // today
		{KeyID: "k", Started: now.Add(-3 * time.Hour), Tokens: 1000},   // before the reset
		{KeyID: "k", Started: now.Add(-24 * time.Hour), Tokens: 1000},  // yesterday, but before the reset
		{KeyID: "j", Started: now.Add(-24 * time.Hour), Tokens: 100},   // yesterday, this week
		{KeyID: "j", Started: now.Add(-3 * 24 * time.Hour), Tokens: 7}, // last week (Sunday)
		{KeyID: "j", Started: now.Add(time.Hour), Tokens: 7},           // future: ignored
		{KeyID: "", Started: now, Tokens: 7},
	})
	p := Policy{RPM: 1, TokensPerDay: 15}
	s := tr.Status("k", p)
	if s.TokensToday.Used != 15 || s.TokensThisWeek.Used != 15 || s.RequestsPerMinute.Used != 1 || s.TokensToday.Requests != 2 {
		t.Fatalf("k rebuilt as %+v", s)
	}
	if !s.OverBudget || !s.RateLimited || s.Expired {
		t.Fatalf("k badges: %+v", s)
	}
	if *s.TokensToday.Remaining != 0 || !s.TokensToday.ResetsAt.Equal(time.Date(2026, 3, 12, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("k today %+v", s.TokensToday)
	}
	if s := tr.Status("j", Policy{}); s.TokensToday.Used != 0 || s.TokensThisWeek.Used != 100 || s.TokensToday.Remaining != nil {
		t.Fatalf("j rebuilt as %+v", s)
	}
	if _, r := tr.Admit("k", p); r == nil || r.Reason != ReasonDayBudget {
		t.Fatalf("rebuilt budget not enforced: %v", r)
	}

	// Reset by hand: counts go, a request in flight stays.
	release, _ := tr.Admit("j", Policy{})
	tr.Reset("k", clk.now())
	tr.Reset("j", clk.now())
	if s := tr.Status("k", p); s.TokensToday.Used != 0 || s.RequestsPerMinute.Used != 0 || s.OverBudget || !s.UsageResetAt.Equal(now) {
		t.Fatalf("after reset %+v", s)
	}
	if s := tr.Status("j", Policy{}); s.Concurrent.Used != 1 || s.TokensThisWeek.Used != 0 {
		t.Fatalf("j after reset %+v", s)
	}
	release()
	// A request that started before the reset and ends after it does not count.
	tr.Record("k", now.Add(-time.Second), 50)
	if s := tr.Status("k", p); s.TokensToday.Used != 0 {
		t.Fatalf("pre-reset request counted: %+v", s.TokensToday)
	}
}

func TestStatusSum(t *testing.T) {
	tr, _ := newTracker()
	for _, k := range []string{"a", "b"} {
		rel, _ := tr.Admit(k, Policy{})
		tr.Record(k, now, 10)
		rel()
	}
	var total Status
	total.Sum(tr.Status("a", Policy{TokensPerDay: 100}))
	total.Sum(tr.Status("b", Policy{}))
	if total.TokensToday.Used != 20 || total.TokensToday.Requests != 2 || total.RequestsPerMinute.Used != 2 || total.TokensToday.Limit != 0 {
		t.Fatalf("sum %+v", total)
	}
}

// AdmitRate has its own count, the key's rpm but at least ReadsPerMinute,
// and ignores budgets, concurrency and the generations' rate: a key at its
// limits can still read why.
func TestAdmitRate(t *testing.T) {
	tr, clk := newTracker()
	p := Policy{RPM: 1, TokensPerDay: 1, Concurrency: 1}
	if _, refused := tr.Admit("k", p); refused != nil { // held: the slot stays taken
		t.Fatalf("first generation refused: %v", refused)
	}
	tr.Record("k", clk.now(), 5) // over the day budget now
	for i := range ReadsPerMinute {
		if r := tr.AdmitRate("k", p); r != nil {
			t.Fatalf("read %d refused: %v", i+1, r)
		}
	}
	r := tr.AdmitRate("k", p)
	if r == nil || r.Reason != ReasonRPM || r.Status != http.StatusTooManyRequests || r.RetryAfter != time.Minute {
		t.Fatalf("read %d in a minute: %+v", ReadsPerMinute+1, r)
	}
	if s := tr.Status("k", p); s.RequestsPerMinute.Used != 1 {
		t.Fatalf("reads counted as generations: %+v", s.RequestsPerMinute)
	}
	clk.add(time.Minute)
	if r := tr.AdmitRate("k", p); r != nil {
		t.Fatalf("after the window: %v", r)
	}
	// A key allowed more requests than the floor may read as often.
	fast := Policy{RPM: 2 * ReadsPerMinute}
	for i := range fast.RPM {
		if r := tr.AdmitRate("fast", fast); r != nil {
			t.Fatalf("fast key read %d refused: %v", i+1, r)
		}
	}
}
