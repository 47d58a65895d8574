package keypolicy

import (
	"slices"
	"sync"
	"time"
)

// Hold is an admitted request's place under its key's limits: a
// concurrency slot and a reservation of the tokens it is expected to use
// against the day and week budgets. While requests are in progress their
// reservations count as used when the next request is admitted, so N
// requests started together on a key's last tokens cannot overshoot its
// budget by N generations: the one that crosses it still runs, the others
// are refused. The reservation is settled when the request ends: Settle
// records the real (or estimated) tokens and drops it in one step.
//
// A nil *Hold is valid and holds nothing. Safe for concurrent use.
type Hold struct {
	t     *Tracker
	keyID string
	// day and week are the windows the reservation counts in: a window
	// that rolled over meanwhile no longer carries it.
	day, week time.Time
	reserved  int64
	start     time.Time // when it was admitted: its place in the rate window
	once      sync.Once
}

// AdmitHold is Admit with a reservation of reserve tokens (zero or more)
// against the key's budgets; a request in progress counts its reservation
// until its Hold is released. The budgets refuse when what was used plus
// what other requests reserve reaches them.
func (t *Tracker) AdmitHold(keyID string, p Policy, reserve int64) (*Hold, *Refusal) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.counterLocked(keyID, now)
	if r := t.refuseLocked(c, p, now); r != nil {
		return nil, r
	}
	c.starts = append(c.starts, now)
	c.inFlight++
	c.day.requests++
	c.week.requests++
	h := &Hold{t: t, keyID: keyID, day: c.day.start, week: c.week.start, start: now}
	h.adjustLocked(c, max(reserve, 0))
	return h, nil
}

// Reserve replaces the hold's reservation with tokens: the estimate once
// the request is parsed, say, in place of the one made from its size.
func (h *Hold) Reserve(tokens int64) {
	if h == nil {
		return
	}
	h.t.mu.Lock()
	defer h.t.mu.Unlock()
	if c := h.t.keys[h.keyID]; c != nil {
		h.adjustLocked(c, max(tokens, 0))
	}
}

// Release frees the slot and drops the reservation; calling it again is
// harmless. Record the request's tokens first, so that no moment counts
// neither.
func (h *Hold) Release() {
	if h == nil {
		return
	}
	h.once.Do(func() {
		h.t.mu.Lock()
		defer h.t.mu.Unlock()
		c := h.t.keys[h.keyID]
		if c == nil {
			return
		}
		if c.inFlight > 0 {
			c.inFlight--
		}
		h.adjustLocked(c, 0)
	})
}

// Settle records the request's tokens (see Tracker.RecordUsage) and
// releases the hold, in one step: no admission in between sees the tokens
// both as used and as reserved, nor as neither.
func (h *Hold) Settle(started time.Time, tokens int64, estimated bool) {
	if h == nil {
		return
	}
	h.once.Do(func() {
		h.t.mu.Lock()
		defer h.t.mu.Unlock()
		h.t.recordLocked(h.keyID, started, tokens, estimated)
		c := h.t.keys[h.keyID]
		if c == nil {
			return
		}
		if c.inFlight > 0 {
			c.inFlight--
		}
		h.adjustLocked(c, 0)
	})
}

// Refund releases the hold as if the request had never been admitted: it
// leaves the rate window and the window's request count. For a request
// refused after admission by a check that needed its body (the model
// allowlist): a refused request counts nothing.
func (h *Hold) Refund() {
	if h == nil {
		return
	}
	h.once.Do(func() {
		h.t.mu.Lock()
		defer h.t.mu.Unlock()
		c := h.t.keys[h.keyID]
		if c == nil {
			return
		}
		if i := slices.IndexFunc(c.starts, func(t time.Time) bool { return t.Equal(h.start) }); i >= 0 {
			c.starts = slices.Delete(c.starts, i, i+1)
		}
		if c.day.start.Equal(h.day) && c.day.requests > 0 {
			c.day.requests--
		}
		if c.week.start.Equal(h.week) && c.week.requests > 0 {
			c.week.requests--
		}
		if c.inFlight > 0 {
			c.inFlight--
		}
		h.adjustLocked(c, 0)
	})
}

// adjustLocked moves the hold's reservation to n tokens in the windows it
// counts in; t.mu is held.
func (h *Hold) adjustLocked(c *counter, n int64) {
	d := n - h.reserved
	h.reserved = n
	if c.day.start.Equal(h.day) {
		c.day.reserved = max(c.day.reserved+d, 0)
	}
	if c.week.start.Equal(h.week) {
		c.week.reserved = max(c.week.reserved+d, 0)
	}
}
