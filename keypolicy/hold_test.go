package keypolicy

import (
	"testing"
	"time"
)

// Requests in progress count their reservations against the budget: N
// requests started on a key's last tokens overshoot by one generation at
// most (issue 19, item 1).
func TestHoldReservationsBarOvershoot(t *testing.T) {
	tr, clk := newTracker()
	p := Policy{TokensPerDay: 1500}
	a, r := tr.AdmitHold("k", p, 1000)
	if r != nil {
		t.Fatalf("first: %v", r)
	}
	b, r := tr.AdmitHold("k", p, 1000) // 0 used + 1000 reserved < 1500: it may cross
	if r != nil {
		t.Fatalf("second: %v", r)
	}
	if _, r := tr.AdmitHold("k", p, 1000); r == nil || r.Reason != ReasonDayBudget {
		t.Fatalf("third while two are in progress: %v", r)
	}
	// The first ends having used less than it reserved.
	tr.Record("k", clk.now(), 200)
	a.Release()
	a.Release() // harmless
	if _, r := tr.AdmitHold("k", p, 0); r != nil {
		t.Fatalf("200 used + 1000 reserved: %v", r)
	}
	b.Reserve(1400) // the parsed estimate replaces the size-based one
	if _, r := tr.AdmitHold("k", p, 0); r == nil {
		t.Fatalf("200 used + 1400 reserved admitted")
	}
	tr.Record("k", clk.now(), 1300)
	b.Release()
	if _, r := tr.AdmitHold("k", p, 0); r == nil || r.Reason != ReasonDayBudget {
		t.Fatalf("1500 used: %v", r)
	}
	if s := tr.Status("k", p); s.TokensToday.Used != 1500 {
		t.Fatalf("reservations counted as usage: %+v", s.TokensToday)
	}
}

// A reservation belongs to the window it was made in: the next day starts
// with none, and releasing the old hold does not lower it.
func TestHoldAcrossMidnight(t *testing.T) {
	tr, clk := newTracker()
	p := Policy{TokensPerDay: 100}
	h, _ := tr.AdmitHold("k", p, 90)
	clk.add(24 * time.Hour)
	other, r := tr.AdmitHold("k", p, 90)
	if r != nil {
		t.Fatalf("next day refused on yesterday's reservation: %v", r)
	}
	h.Release()
	if _, r := tr.AdmitHold("k", p, 0); r != nil {
		t.Fatalf("90 reserved today: %v", r)
	}
	other.Reserve(100)
	if _, r := tr.AdmitHold("k", p, 0); r == nil {
		t.Fatalf("releasing yesterday's hold freed today's reservation")
	}
	var nilHold *Hold
	nilHold.Reserve(5)
	nilHold.Release()
}

// Estimated tokens count like any other and are shown as such, also after
// a restart that rebuilds the counters from the request log.
func TestEstimatedTokensInStatus(t *testing.T) {
	tr, clk := newTracker()
	tr.RecordUsage("k", clk.now(), 1000, true)
	tr.RecordUsage("k", clk.now(), 50, false)
	s := tr.Status("k", Policy{})
	if s.TokensToday.Used != 1050 || s.TokensToday.Estimated != 1000 || s.TokensThisWeek.Estimated != 1000 {
		t.Fatalf("%+v", s.TokensToday)
	}
	again, _ := newTracker()
	again.Load([]Rebuilt{{KeyID: "k", Started: clk.now(), Tokens: 1000, Estimated: true}, {KeyID: "k", Started: clk.now(), Tokens: 50}})
	if s := again.Status("k", Policy{}); s.TokensToday.Used != 1050 || s.TokensToday.Estimated != 1000 {
		t.Fatalf("rebuilt: %+v", s.TokensToday)
	}
}

// A refunded hold leaves no trace: not in the rate, the request counts, the
// slot or the reservation.
func TestHoldRefund(t *testing.T) {
	tr, _ := newTracker()
	p := Policy{RPM: 1, Concurrency: 1, TokensPerDay: 100}
	h, r := tr.AdmitHold("k", p, 99)
	if r != nil {
		t.Fatal(r)
	}
	h.Refund()
	h.Release() // harmless after
	if s := tr.Status("k", p); s.RequestsPerMinute.Used != 0 || s.Concurrent.Used != 0 || s.TokensToday.Requests != 0 {
		t.Fatalf("after a refund: %+v", s)
	}
	if _, r := tr.AdmitHold("k", p, 99); r != nil {
		t.Fatalf("the refunded request still counts: %v", r)
	}
}
