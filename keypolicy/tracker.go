package keypolicy

import (
	"fmt"
	"sync"
	"time"
)

// rateWindow is the span RPM counts requests over.
const rateWindow = time.Minute

// concurrencyRetry is the Retry-After of a refusal for too many requests
// in progress: when one ends is unknowable, a second is a fair guess.
const concurrencyRetry = time.Second

// Tracker counts each key's requests and tokens in memory and decides
// whether a key may start another request. The owner feeds it every
// finished request (Record) and rebuilds it from the request log at start.
// Request rates and concurrency are this process's own; token usage is
// what the store holds (committed) plus what this process recorded and has
// not written yet (pending), so instances sharing a store can enforce a
// budget on their total (see Committed and SetCommitted). Safe for
// concurrent use.
type Tracker struct {
	now  func() time.Time
	mu   sync.Mutex
	keys map[string]*counter
}

// counter is one key's state.
type counter struct {
	starts   []time.Time // admitted requests of the last rateWindow, oldest first
	reads    []time.Time // admitted token-free reads of the last rateWindow
	inFlight int
	day      window
	week     window
	resetAt  time.Time // counts before it are forgotten
}

// window is a token budget period: its start and what it has seen.
// committed is the tokens the store holds for the window (as last read,
// plus this process's writes confirmed since); pending is the tokens this
// process recorded and has not confirmed written. No request is in both,
// so their sum is the window's usage.
type window struct {
	start     time.Time
	committed int64
	pending   int64
	requests  int64
	// reserved is what the requests in progress are expected to use (see
	// Hold); it is not usage, only a bar to admitting more.
	reserved int64
	// estimated is the part of the window's tokens this process knows to
	// be the proxy's estimates (recorded, or loaded from the request log).
	estimated int64
}

// tokens is the window's usage.
func (w *window) tokens() int64 { return w.committed + w.pending }

// NewTracker returns an empty tracker; now nil means time.Now.
func NewTracker(now func() time.Time) *Tracker {
	if now == nil {
		now = time.Now
	}
	return &Tracker{now: now, keys: map[string]*counter{}}
}

// DayStart is midnight UTC of t's day.
func DayStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// WeekStart is Monday 00:00 UTC of t's ISO week.
func WeekStart(t time.Time) time.Time {
	d := DayStart(t)
	back := (int(d.Weekday()) + 6) % 7 // Monday → 0, Sunday → 6
	return d.AddDate(0, 0, -back)
}

// counterLocked returns the key's counter, its windows rolled to now; mu
// is held.
func (t *Tracker) counterLocked(keyID string, now time.Time) *counter {
	c := t.keys[keyID]
	if c == nil {
		c = &counter{}
		t.keys[keyID] = c
	}
	if d := DayStart(now); !c.day.start.Equal(d) && now.After(c.day.start) {
		c.day = window{start: d}
	}
	if w := WeekStart(now); !c.week.start.Equal(w) && now.After(c.week.start) {
		c.week = window{start: w}
	}
	cut := now.Add(-rateWindow)
	c.starts = dropUntil(c.starts, cut)
	c.reads = dropUntil(c.reads, cut)
	return c
}

// dropUntil removes the times up to cut from ts, oldest first, in place.
func dropUntil(ts []time.Time, cut time.Time) []time.Time {
	i := 0
	for i < len(ts) && !ts[i].After(cut) {
		i++
	}
	if i == 0 {
		return ts
	}
	return append(ts[:0], ts[i:]...)
}

// Admit decides whether the key, under policy p, may start a request now:
// budgets first (they say when to come back), then the request rate, then
// concurrency. On success the request is counted and release must be
// called exactly once when it ends (stream finished or client gone);
// calling it again is harmless. Expiry and the model are checked
// separately (CheckExpiry, CheckModel).
func (t *Tracker) Admit(keyID string, p Policy) (release func(), refused *Refusal) {
	h, r := t.AdmitHold(keyID, p, 0)
	if r != nil {
		return nil, r
	}
	return h.Release, nil
}

// refuseLocked is the refusal of a request with the key's counter c under
// p now, or nil: budgets first (they say when to come back; the tokens of
// requests in progress count as their reservations), then the request
// rate, then concurrency. t.mu is held.
func (t *Tracker) refuseLocked(c *counter, p Policy, now time.Time) *Refusal {
	if p.TokensPerDay > 0 && c.day.tokens()+c.day.reserved >= p.TokensPerDay {
		next := c.day.start.AddDate(0, 0, 1)
		return budgetExhausted(ReasonDayBudget, next.Sub(now), fmt.Sprintf(
			"This API key has used its %d tokens for today (UTC); the budget renews at %s.", p.TokensPerDay, next.Format(time.RFC3339)))
	}
	if p.TokensPerWeek > 0 && c.week.tokens()+c.week.reserved >= p.TokensPerWeek {
		next := c.week.start.AddDate(0, 0, 7)
		return budgetExhausted(ReasonWeekBudget, next.Sub(now), fmt.Sprintf(
			"This API key has used its %d tokens for this week (from Monday, UTC); the budget renews at %s.", p.TokensPerWeek, next.Format(time.RFC3339)))
	}
	if p.RPM > 0 && len(c.starts) >= p.RPM {
		retry := c.starts[len(c.starts)-p.RPM].Add(rateWindow).Sub(now)
		return rateLimited(ReasonRPM, retry, fmt.Sprintf(
			"This API key is limited to %d requests per minute; retry after the seconds in Retry-After.", p.RPM))
	}
	if p.Concurrency > 0 && c.inFlight >= p.Concurrency {
		return rateLimited(ReasonConcurrency, concurrencyRetry, fmt.Sprintf(
			"This API key is limited to %d requests at a time and that many are in progress; retry when one finishes.", p.Concurrency))
	}
	return nil
}

// ReadsPerMinute is the least number of token-free reads (GET /v1/usage)
// a key may make in a minute; a key whose rpm is higher may make that many.
const ReadsPerMinute = 120

// AdmitRate decides whether the key may make a request that costs no
// tokens and holds no slot (GET /v1/usage). Such reads have a rate of
// their own, the key's rpm but at least ReadsPerMinute, so that polling
// the usage endpoint is bounded while a key at its generation rate or
// budget can still read why. An admitted read is counted.
func (t *Tracker) AdmitRate(keyID string, p Policy) *Refusal {
	limit := max(p.RPM, ReadsPerMinute)
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.counterLocked(keyID, now)
	if len(c.reads) >= limit {
		retry := c.reads[len(c.reads)-limit].Add(rateWindow).Sub(now)
		return rateLimited(ReasonRPM, retry, fmt.Sprintf(
			"This API key may read its usage %d times a minute; retry after the seconds in Retry-After.", limit))
	}
	c.reads = append(c.reads, now)
	return nil
}

// Record adds the tokens of a finished request that started at started,
// as pending: not yet in the store (see Committed). Tokens count in the
// windows the request started in, so a restart that rebuilds from the
// request log arrives at the same counts. A budget crossed by a request in
// progress does not stop it; the next one is refused.
func (t *Tracker) Record(keyID string, started time.Time, tokens int64) {
	t.RecordUsage(keyID, started, tokens, false)
}

// RecordUsage is Record for tokens that may be the proxy's estimate
// (a generation that ended without the upstream's usage): they count the
// same, and the status says how many of them were estimated.
func (t *Tracker) RecordUsage(keyID string, started time.Time, tokens int64, estimated bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.recordLocked(keyID, started, tokens, estimated)
}

// recordLocked is RecordUsage with t.mu held.
func (t *Tracker) recordLocked(keyID string, started time.Time, tokens int64, estimated bool) {
	if keyID == "" || tokens <= 0 {
		return
	}
	c := t.counterLocked(keyID, t.now())
	if started.Before(c.resetAt) {
		return
	}
	if !started.Before(c.day.start) {
		c.day.pending += tokens
		c.day.addEstimate(tokens, estimated)
	}
	if !started.Before(c.week.start) {
		c.week.pending += tokens
		c.week.addEstimate(tokens, estimated)
	}
}

// addEstimate counts tokens as estimated when they are.
func (w *window) addEstimate(tokens int64, estimated bool) {
	if estimated {
		w.estimated += tokens
	}
}

// Rebuilt is one request the tracker is rebuilt from (a request-log
// record, refused requests left out).
type Rebuilt struct {
	KeyID   string
	Started time.Time
	Tokens  int64
	// Estimated marks tokens the proxy estimated (see RecordUsage).
	Estimated bool
}

// Load counts requests of the past (the request log, in any order) into
// the windows they fall in, as committed; requests before the key's reset point are
// skipped. Call it at start, before the first Admit, after SetReset.
func (t *Tracker) Load(reqs []Rebuilt) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range reqs {
		if r.KeyID == "" || r.Started.After(now) {
			continue
		}
		c := t.counterLocked(r.KeyID, now)
		if r.Started.Before(c.resetAt) {
			continue
		}
		if !r.Started.Before(c.day.start) {
			c.day.committed += r.Tokens
			c.day.requests++
			c.day.addEstimate(r.Tokens, r.Estimated)
		}
		if !r.Started.Before(c.week.start) {
			c.week.committed += r.Tokens
			c.week.requests++
			c.week.addEstimate(r.Tokens, r.Estimated)
		}
		if r.Started.After(now.Add(-rateWindow)) {
			c.starts = insertSorted(c.starts, r.Started)
		}
	}
}

// insertSorted inserts v into the sorted ts.
func insertSorted(ts []time.Time, v time.Time) []time.Time {
	i := len(ts)
	for i > 0 && ts[i-1].After(v) {
		i--
	}
	ts = append(ts, time.Time{})
	copy(ts[i+1:], ts[i:])
	ts[i] = v
	return ts
}

// SetReset records a reset point loaded from storage: counts before at
// are ignored. It does not clear what is counted already; Reset does.
func (t *Tracker) SetReset(keyID string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.counterLocked(keyID, t.now())
	if at.After(c.resetAt) {
		c.resetAt = at
	}
}

// Reset forgets the key's counted requests and tokens as of at (requests
// in progress stay in progress). The caller stores at as the key's reset
// point so a rebuild does not count them again.
func (t *Tracker) Reset(keyID string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.counterLocked(keyID, t.now())
	c.resetAt = at
	c.starts = c.starts[:0]
	c.day = window{start: c.day.start}
	c.week = window{start: c.week.start}
}

// Forget drops a key's counters (the key was revoked or deleted).
func (t *Tracker) Forget(keyID string) {
	t.mu.Lock()
	delete(t.keys, keyID)
	t.mu.Unlock()
}
