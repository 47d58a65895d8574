package storetest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitShort is how long a lock attempt that must block is given.
const waitShort = 50 * time.Millisecond

func testRefreshLock(t *testing.T, h *harness) {
	s := h.store()
	unlock, err := s.LockUserRefresh(ctx, "u-a")
	must(t, err)

	// Held: another attempt for the same user waits until its ctx ends.
	short, cancel := context.WithTimeout(ctx, waitShort)
	_, err = s.LockUserRefresh(short, "u-a")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second lock of a held user: %v, want context.DeadlineExceeded", err)
	}
	// Other users are not blocked.
	short, cancel = context.WithTimeout(ctx, 5*time.Second)
	unlockB, err := s.LockUserRefresh(short, "u-b")
	cancel()
	must(t, err)
	unlockB()

	// A waiter gets the lock once the holder lets go, not before.
	got := make(chan func(), 1)
	go func() {
		u, err := s.LockUserRefresh(ctx, "u-a")
		if err != nil {
			t.Error(err)
			u = func() {}
		}
		got <- u
	}()
	select {
	case <-got:
		t.Fatal("waiter got a held lock")
	case <-time.After(waitShort):
	}
	unlock()
	select {
	case u := <-got:
		u()
	case <-time.After(5 * time.Second):
		t.Fatal("waiter did not get the released lock")
	}

	// Two goroutines hammering one user's lock are never inside together.
	var inside, overlaps atomic.Int32
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				u, err := s.LockUserRefresh(ctx, "u-c")
				if err != nil {
					t.Error(err)
					return
				}
				if inside.Add(1) != 1 {
					overlaps.Add(1)
				}
				time.Sleep(100 * time.Microsecond)
				inside.Add(-1)
				u()
			}
		}()
	}
	wg.Wait()
	if n := overlaps.Load(); n != 0 {
		t.Fatalf("the refresh lock was held twice at once %d times", n)
	}
	// After all that, it is free.
	short, cancel = context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	u, err := s.LockUserRefresh(short, "u-c")
	must(t, err)
	u()
}
