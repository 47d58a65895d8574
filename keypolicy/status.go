package keypolicy

import "time"

// Status is one key's counters against its policy at one moment, as
// GET /v1/usage, the dashboard and the CLI show it.
type Status struct {
	// RequestsPerMinute counts requests started in the last 60 seconds;
	// ResetsAt is when the oldest of them stops counting.
	RequestsPerMinute Counter `json:"requests_per_minute"`
	// Concurrent counts requests in progress; it has no reset time.
	Concurrent Counter `json:"concurrent_requests"`
	// TokensToday and TokensThisWeek are the UTC day's and ISO week's
	// tokens and requests.
	TokensToday    Counter `json:"tokens_today"`
	TokensThisWeek Counter `json:"tokens_this_week"`
	// UsageResetAt is when the key's usage was last reset by hand.
	UsageResetAt time.Time `json:"usage_reset_at,omitzero"`
	// Expired, OverBudget and RateLimited say what would refuse the next
	// request right now.
	Expired     bool `json:"expired"`
	OverBudget  bool `json:"over_budget"`
	RateLimited bool `json:"rate_limited"`
}

// Counter is one count against its limit.
type Counter struct {
	Used int64 `json:"used"`
	// Limit is 0 when the policy sets none; Remaining is then absent.
	Limit     int64  `json:"limit"`
	Remaining *int64 `json:"remaining,omitempty"`
	// Requests counts the requests of a token window.
	Requests int64 `json:"requests,omitempty"`
	// Estimated is the part of a token window's Used that the proxy
	// estimated, for generations that ended without the upstream's usage
	// (the client went away, the stream was cut), as this instance knows.
	Estimated   int64     `json:"estimated,omitempty"`
	WindowStart time.Time `json:"window_start,omitzero"`
	ResetsAt    time.Time `json:"resets_at,omitzero"`
}

func counterOf(used, limit int64) Counter {
	c := Counter{Used: used, Limit: limit}
	if limit > 0 {
		r := max(limit-used, 0)
		c.Remaining = &r
	}
	return c
}

// full reports whether the counter is at its limit.
func (c Counter) full() bool { return c.Limit > 0 && c.Used >= c.Limit }

// Status returns the key's counters against p now.
func (t *Tracker) Status(keyID string, p Policy) Status {
	now := t.now()
	t.mu.Lock()
	c := t.counterLocked(keyID, now)
	s := Status{
		RequestsPerMinute: counterOf(int64(len(c.starts)), int64(p.RPM)),
		Concurrent:        counterOf(int64(c.inFlight), int64(p.Concurrency)),
		TokensToday:       counterOf(c.day.tokens(), p.TokensPerDay),
		TokensThisWeek:    counterOf(c.week.tokens(), p.TokensPerWeek),
		UsageResetAt:      c.resetAt,
	}
	if len(c.starts) > 0 {
		s.RequestsPerMinute.ResetsAt = c.starts[0].Add(rateWindow)
	}
	s.TokensToday.Requests, s.TokensThisWeek.Requests = c.day.requests, c.week.requests
	s.TokensToday.Estimated, s.TokensThisWeek.Estimated = min(c.day.estimated, c.day.tokens()), min(c.week.estimated, c.week.tokens())
	s.TokensToday.WindowStart, s.TokensToday.ResetsAt = c.day.start, c.day.start.AddDate(0, 0, 1)
	s.TokensThisWeek.WindowStart, s.TokensThisWeek.ResetsAt = c.week.start, c.week.start.AddDate(0, 0, 7)
	t.mu.Unlock()
	s.Expired = p.Expired(now)
	s.OverBudget = s.TokensToday.full() || s.TokensThisWeek.full()
	s.RateLimited = s.RequestsPerMinute.full() || s.Concurrent.full()
	return s
}

// Sum adds o's counts into s, for a user's totals over all their keys;
// limits are not summed (each key has its own).
func (s *Status) Sum(o Status) {
	s.RequestsPerMinute.Used += o.RequestsPerMinute.Used
	s.Concurrent.Used += o.Concurrent.Used
	for _, p := range []struct{ dst, src *Counter }{{&s.TokensToday, &o.TokensToday}, {&s.TokensThisWeek, &o.TokensThisWeek}} {
		p.dst.Used += p.src.Used
		p.dst.Requests += p.src.Requests
		p.dst.Estimated += p.src.Estimated
		p.dst.WindowStart, p.dst.ResetsAt = p.src.WindowStart, p.src.ResetsAt
	}
}
