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
	unlock, err := s.LockRefresh(ctx, "u-a", "a1")
	must(t, err)

	// Held: another attempt for the same user waits until its ctx ends.
	short, cancel := context.WithTimeout(ctx, waitShort)
	_, err = s.LockRefresh(short, "u-a", "a1")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second lock of a held user: %v, want context.DeadlineExceeded", err)
	}
	// Other users, and the user's other accounts, are not blocked.
	short, cancel = context.WithTimeout(ctx, 5*time.Second)
	unlockB, err := s.LockRefresh(short, "u-b", "a1")
	cancel()
	must(t, err)
	unlockB()
	short, cancel = context.WithTimeout(ctx, 5*time.Second)
	unlockA2, err := s.LockRefresh(short, "u-a", "a2")
	cancel()
	must(t, err)
	unlockA2()

	// A waiter gets the lock once the holder lets go, not before.
	got := make(chan func(), 1)
	go func() {
		u, err := s.LockRefresh(ctx, "u-a", "a1")
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
				u, err := s.LockRefresh(ctx, "u-c", "a1")
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
	u, err := s.LockRefresh(short, "u-c", "a1")
	must(t, err)
	u()
}
