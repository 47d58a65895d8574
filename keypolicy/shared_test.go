package keypolicy

import (
	"testing"
	"time"
)

// sharedStore models the store instances share: a key's written tokens
// since its reset point, per UTC day.
type sharedStore struct {
	days  map[time.Time]int64
	reset time.Time
}

func (s *sharedStore) add(started time.Time, n int64) {
	if !started.Before(s.reset) {
		s.days[DayStart(started)] += n
	}
}

func (s *sharedStore) totals(now time.Time) map[string]Totals {
	var t Totals
	for d, n := range s.days {
		if d.Equal(DayStart(now)) {
			t.Day += n
		}
		if !d.Before(WeekStart(now)) {
			t.Week += n
		}
	}
	return map[string]Totals{"k": t}
}

// node is one instance: its tracker and the records it has not written.
type node struct {
	tr     *Tracker
	queued []Rebuilt
}

// TestSharedUsage: instances record at once and learn each other's written
// usage from the store; each request counts once on every instance,
// whatever the order of recording, writing and reading.
func TestSharedUsage(t *testing.T) {
	type op struct {
		on      int    // instance 0 or 1
		do      string // record, write, drop, read, reset, advance
		tokens  int64
		started time.Duration // record: start relative to the clock
		advance time.Duration
		want    [2][2]int64 // after the step: {day, week} on each instance
	}
	const (
		record, write, drop, read, reset, advance = "record", "write", "drop", "read", "reset", "advance"
	)
	for _, tc := range []struct {
		name string
		ops  []op
	}{
		{"own usage counts once through write and read", []op{
			{on: 0, do: record, tokens: 60, want: [2][2]int64{{60, 60}, {0, 0}}},
			{on: 0, do: write, want: [2][2]int64{{60, 60}, {0, 0}}},
			{on: 0, do: read, want: [2][2]int64{{60, 60}, {0, 0}}},
			{on: 1, do: read, want: [2][2]int64{{60, 60}, {60, 60}}},
		}},
		{"a read keeps what is not written yet", []op{
			{on: 0, do: record, tokens: 30, want: [2][2]int64{{30, 30}, {0, 0}}},
			{on: 1, do: record, tokens: 100, want: [2][2]int64{{30, 30}, {100, 100}}},
			{on: 1, do: write},
			{on: 0, do: read, want: [2][2]int64{{130, 130}, {100, 100}}},
			{on: 0, do: write, want: [2][2]int64{{130, 130}, {100, 100}}},
			{on: 1, do: read, want: [2][2]int64{{130, 130}, {130, 130}}},
			{on: 0, do: read, want: [2][2]int64{{130, 130}, {130, 130}}},
		}},
		{"a read before the own write's confirmation", []op{
			{on: 0, do: record, tokens: 10},
			{on: 0, do: record, tokens: 5},
			{on: 0, do: read, want: [2][2]int64{{15, 15}, {0, 0}}},
			{on: 0, do: write, want: [2][2]int64{{15, 15}, {0, 0}}},
			{on: 0, do: record, tokens: 1},
			{on: 0, do: read, want: [2][2]int64{{16, 16}, {0, 0}}},
		}},
		{"a lost write stays counted where it was seen", []op{
			{on: 0, do: record, tokens: 40},
			{on: 0, do: drop, want: [2][2]int64{{40, 40}, {0, 0}}},
			{on: 1, do: record, tokens: 2},
			{on: 1, do: write},
			{on: 0, do: read, want: [2][2]int64{{42, 42}, {2, 2}}},
			{on: 1, do: read, want: [2][2]int64{{42, 42}, {2, 2}}},
		}},
		{"a reset applies to written, pending and late requests", []op{
			{on: 0, do: record, tokens: 50, started: -time.Minute},
			{on: 0, do: write},
			{on: 0, do: record, tokens: 7, started: -time.Minute},
			{on: 1, do: read, want: [2][2]int64{{57, 57}, {50, 50}}},
			{on: 1, do: reset, want: [2][2]int64{{57, 57}, {0, 0}}},
			{on: 0, do: reset, want: [2][2]int64{{0, 0}, {0, 0}}}, // the reset reaches instance 0
			{on: 0, do: write, want: [2][2]int64{{0, 0}, {0, 0}}}, // started before the reset
			{on: 0, do: record, tokens: 3, started: time.Second},
			{on: 0, do: write},
			{on: 1, do: read, want: [2][2]int64{{3, 3}, {3, 3}}},
			{on: 0, do: read, want: [2][2]int64{{3, 3}, {3, 3}}},
		}},
		{"a new day keeps the week", []op{
			{on: 0, do: record, tokens: 20},
			{on: 0, do: write},
			{on: 1, do: read, want: [2][2]int64{{20, 20}, {20, 20}}},
			{do: advance, advance: 9 * time.Hour, want: [2][2]int64{{0, 20}, {0, 20}}},
			{on: 1, do: record, tokens: 4, started: -time.Second},
			{on: 1, do: write},
			{on: 0, do: read, want: [2][2]int64{{4, 24}, {4, 24}}},
			{on: 1, do: read, want: [2][2]int64{{4, 24}, {4, 24}}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := &clock{t: now}
			store := &sharedStore{days: map[time.Time]int64{}}
			nodes := [2]*node{{tr: NewTracker(clk.now)}, {tr: NewTracker(clk.now)}}
			for i, o := range tc.ops {
				n := nodes[o.on]
				switch o.do {
				case record:
					r := Rebuilt{KeyID: "k", Started: clk.now().Add(o.started), Tokens: o.tokens}
					n.tr.Record(r.KeyID, r.Started, r.Tokens)
					n.queued = append(n.queued, r)
				case write:
					for _, r := range n.queued {
						store.add(r.Started, r.Tokens)
					}
					n.tr.Committed(n.queued)
					n.queued = nil
				case drop:
					n.queued = nil
				case read:
					n.tr.SetCommitted(DayStart(clk.now()), WeekStart(clk.now()), store.totals(clk.now()))
				case reset:
					store.reset = clk.now()
					clear(store.days)
					n.tr.Reset("k", clk.now())
				case advance:
					clk.add(o.advance)
				}
				if o.want == [2][2]int64{} {
					continue
				}
				for j, n := range nodes {
					s := n.tr.Status("k", Policy{})
					if got := [2]int64{s.TokensToday.Used, s.TokensThisWeek.Used}; got != o.want[j] {
						t.Fatalf("step %d (%s on %d): instance %d counts day/week %v, want %v", i, o.do, o.on, j, got, o.want[j])
					}
				}
			}
		})
	}
}

// TestSharedBudget: a budget refuses on the total of both instances.
func TestSharedBudget(t *testing.T) {
	clk := &clock{t: now}
	a, b := NewTracker(clk.now), NewTracker(clk.now)
	p := Policy{TokensPerDay: 100}
	rel, r := a.Admit("k", p)
	if r != nil {
		t.Fatal(r)
	}
	a.Record("k", now, 70)
	rel()
	a.Committed([]Rebuilt{{KeyID: "k", Started: now, Tokens: 70}})
	rel, r = b.Admit("k", p)
	if r != nil {
		t.Fatalf("b refused before it knows of a's usage: %v", r)
	}
	b.Record("k", now, 20)
	rel()
	// b learns of a's 70: 90 < 100 still admits, a's next 10 makes it full.
	b.SetCommitted(DayStart(now), WeekStart(now), map[string]Totals{"k": {Day: 70, Week: 70}})
	if _, r := b.Admit("k", p); r != nil {
		t.Fatalf("b refused at 90 of 100: %v", r)
	}
	b.SetCommitted(DayStart(now), WeekStart(now), map[string]Totals{"k": {Day: 80, Week: 80}})
	if _, r := b.Admit("k", p); r == nil || r.Reason != ReasonDayBudget {
		t.Fatalf("b admitted at 80 written + 20 pending of 100: %v", r)
	}
	// A read of yesterday is ignored.
	b.SetCommitted(DayStart(now).AddDate(0, 0, -1), WeekStart(now), map[string]Totals{"k": {Day: 0, Week: 80}})
	if s := b.Status("k", p); s.TokensToday.Used != 100 {
		t.Fatalf("a read of a past day changed today: %+v", s.TokensToday)
	}
}
