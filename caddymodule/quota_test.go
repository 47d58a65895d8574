package caddymodule

import (
	"context"
	"testing"
	"time"
)

// TestQuotaSnapshotStored: a successful chat leaves the upstream's rate
// limits in the dashboard's store for the user.
func TestQuotaSnapshotStored(t *testing.T) {
	env := newProxyEnv(t)
	if env.h.quotas == nil {
		t.Fatal("no quota store with the dashboard on")
	}
	if _, ok := env.h.quotas.Get(env.userID); ok {
		t.Fatal("snapshot before any request")
	}
	before := time.Now()
	if _, err := env.client.Chat.Completions.New(context.Background(), userMsg("hello")); err != nil {
		t.Fatal(err)
	}
	snap, ok := env.h.quotas.Get(env.userID)
	if !ok {
		t.Fatal("no snapshot after a chat")
	}
	if snap.PlanType != "plus" || snap.Primary == nil || snap.Secondary == nil {
		t.Fatalf("snapshot %+v", snap.RateLimits)
	}
	if snap.Primary.WindowMinutes != 300 || snap.Secondary.WindowMinutes != 10080 || snap.Primary.ResetAt.IsZero() {
		t.Fatalf("windows %+v %+v", *snap.Primary, *snap.Secondary)
	}
	if snap.Seen.Before(before) {
		t.Fatalf("seen %v before the request at %v", snap.Seen, before)
	}
}
