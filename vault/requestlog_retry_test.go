package vault

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// outageStore is a real bbolt store whose AppendLogs fails the way a
// server engine's does while its database is unreachable (an error
// wrapping ErrUnavailable), or with fail when that is set, until told
// otherwise.
type outageStore struct {
	Store
	down     atomic.Bool
	fail     atomic.Pointer[error]
	attempts atomic.Int64
}

func (s *outageStore) AppendLogs(ctx context.Context, recs []LogRecord, usage []UsageDelta) error {
	s.attempts.Add(1)
	if p := s.fail.Load(); p != nil {
		return *p
	}
	if s.down.Load() {
		return fmt.Errorf("postgres: append logs: %w", ErrUnavailable)
	}
	return s.Store.AppendLogs(ctx, recs, usage)
}

// outageVault is a vault on an outageStore that flushes every 10 ms.
func outageVault(t *testing.T, mod func(*Options)) (*Vault, *outageStore) {
	t.Helper()
	bolt, err := OpenTestStore(filepath.Join(t.TempDir(), "vault.db"), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := &outageStore{Store: bolt}
	opts := testOptions(newClock())
	opts.LogFlushInterval = 10 * time.Millisecond
	if mod != nil {
		mod(&opts)
	}
	v, err := New(st, opts)
	if err != nil {
		bolt.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v, st
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// storedIDs returns the request ids in the store, whatever the user.
func storedIDs(t *testing.T, v *Vault) map[string]bool {
	t.Helper()
	recs, err := v.RecentRequests("", time.Time{}, maxRecentLimit, StatusAll)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, r := range recs {
		ids[r.RequestID] = true
	}
	return ids
}

func logN(v *Vault, from, to int) {
	for i := from; i < to; i++ {
		v.LogRequest(LogRecord{Time: t0.Add(time.Duration(i) * time.Millisecond), UserID: "u1", KeyID: "k1",
			RequestID: fmt.Sprint("req-", i), Status: 200, InputTokens: 10, OutputTokens: 5})
	}
}

// TestRequestLogKeptWhileDatabaseUnreachable: records logged while the
// database cannot be reached are kept and written, with their usage
// roll-ups, once it is back; none is dropped.
func TestRequestLogKeptWhileDatabaseUnreachable(t *testing.T) {
	v, st := outageVault(t, nil)
	st.down.Store(true)
	logN(v, 0, 100)
	// Several failed attempts: the writer backs off and tries again.
	waitFor(t, "two failed writes", func() bool { return st.attempts.Load() >= 2 })
	logN(v, 100, 150)
	if n := len(storedIDs(t, v)); n != 0 {
		t.Fatalf("%d records stored while the database was down", n)
	}
	st.down.Store(false)
	waitFor(t, "the records after the outage", func() bool { return len(storedIDs(t, v)) == 150 })
	if d := v.DroppedLogs(); d != 0 {
		t.Fatalf("%d records dropped", d)
	}
	days, err := v.Usage("u1", t0, t0)
	if err != nil || len(days) != 1 || days[0].Requests != 150 || days[0].InputTokens != 1500 {
		t.Fatalf("usage after the outage: %+v, %v", days, err)
	}
	// The writer is back to normal: a new record is written promptly.
	logN(v, 150, 151)
	waitFor(t, "a record after recovery", func() bool { return storedIDs(t, v)["req-150"] })
}

// TestRequestLogOutageBounded: past the buffer, records logged during an
// outage are dropped and counted; the oldest, kept, are written once the
// database is back.
func TestRequestLogOutageBounded(t *testing.T) {
	const buffer = 64
	v, st := outageVault(t, func(o *Options) { o.LogBuffer = buffer; o.LogBatchSize = 16 })
	st.down.Store(true)
	logN(v, 0, 1)
	waitFor(t, "a failed write", func() bool { return st.attempts.Load() >= 1 })
	// Fill the writer's buffer and let it take them all before the rest
	// arrive: on a loaded machine a slow writer would otherwise still be
	// taking from the queue when the last records come, and keep them.
	logN(v, 1, buffer)
	waitFor(t, "the writer to take the first buffer", func() bool { return len(v.logCh) == 0 })
	logN(v, buffer, 300)
	st.down.Store(false)
	dropped := int(v.DroppedLogs())
	waitFor(t, "the kept records", func() bool { return len(storedIDs(t, v))+dropped == 300 })
	ids := storedIDs(t, v)
	// Kept: up to one buffer in the writer and one in the queue.
	if len(ids) < buffer || len(ids) > 2*buffer {
		t.Fatalf("%d records written after the outage, want between %d and %d", len(ids), buffer, 2*buffer)
	}
	if !ids["req-0"] || ids["req-299"] {
		t.Fatalf("the oldest records must be the ones kept: req-0 %v, req-299 %v", ids["req-0"], ids["req-299"])
	}
}

// TestRequestLogCloseDuringOutage: Close with the database unreachable
// makes one last attempt, then drops and counts the kept records instead
// of waiting for the database.
func TestRequestLogCloseDuringOutage(t *testing.T) {
	v, st := outageVault(t, nil)
	st.down.Store(true)
	logN(v, 0, 20)
	waitFor(t, "a failed write", func() bool { return st.attempts.Load() >= 1 })
	done := make(chan error, 1)
	go func() { done <- v.Close() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited for the database")
	}
	if d := v.DroppedLogs(); d != 20 {
		t.Fatalf("%d records counted as dropped, want 20", d)
	}
}

// TestRequestLogPermanentFailureDropped: a write that fails for another
// reason than an unreachable database drops the batch (counted) instead
// of retrying it for ever; later records are written.
func TestRequestLogPermanentFailureDropped(t *testing.T) {
	v, st := outageVault(t, nil)
	bad := errors.New("bolt: value too large")
	st.fail.Store(&bad)
	logN(v, 0, 10)
	waitFor(t, "the batch dropped", func() bool { return v.DroppedLogs() == 10 })
	st.fail.Store(nil)
	logN(v, 10, 11)
	waitFor(t, "a later record", func() bool { return storedIDs(t, v)["req-10"] })
	if ids := storedIDs(t, v); ids["req-0"] {
		t.Fatal("a dropped record was written after all")
	}
}
