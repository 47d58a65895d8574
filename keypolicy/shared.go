package keypolicy

import "time"

// Token usage shared by instances of one store. Each window's usage is
// committed (in the store) plus pending (recorded here, not yet written):
//
//   - Record adds a finished request to pending, at once.
//   - Committed moves it from pending to committed once the store has it.
//   - SetCommitted replaces committed with the store's total, which counts
//     every instance's written requests, this one's included.
//
// A request is thus counted once whatever the order, provided the owner
// never lets a store read and a Committed call overlap: a read either sees
// a written batch, and then Committed for it has run, or it does not, and
// then its requests are still pending. Requests whose write failed stay
// pending for the rest of their window: this instance saw them, the
// others never will.

// Totals is one key's tokens in the store for the current UTC day and ISO
// week, counted after the key's reset point.
type Totals struct {
	Day  int64
	Week int64
}

// Committed records that these requests, each Recorded before, are now in
// the store: their tokens move from pending to committed. Requests before
// the key's reset point or outside its current windows are skipped, as
// Record skips them.
func (t *Tracker) Committed(reqs []Rebuilt) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range reqs {
		if r.KeyID == "" || r.Tokens <= 0 {
			continue
		}
		c := t.counterLocked(r.KeyID, now)
		if r.Started.Before(c.resetAt) {
			continue
		}
		if !r.Started.Before(c.day.start) {
			c.day.commit(r.Tokens)
		}
		if !r.Started.Before(c.week.start) {
			c.week.commit(r.Tokens)
		}
	}
}

// commit moves n tokens from pending to committed. Pending may hold less
// when a reset cleared it meanwhile and the request started exactly at the
// reset point; the store counts it, so committed does too.
func (w *window) commit(n int64) {
	w.pending -= min(n, w.pending)
	w.committed += n
}

// SetCommitted replaces the committed tokens of each key in totals with
// the store's, read for the UTC day starting at day and the ISO week
// starting at week. A window that has rolled over since (day or week is no
// longer current) keeps its count: the read is about a past window.
// Pending tokens are kept: the read cannot contain them.
func (t *Tracker) SetCommitted(day, week time.Time, totals map[string]Totals) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, tot := range totals {
		c := t.counterLocked(id, now)
		if c.day.start.Equal(day) {
			c.day.committed = tot.Day
		}
		if c.week.start.Equal(week) {
			c.week.committed = tot.Week
		}
	}
}
