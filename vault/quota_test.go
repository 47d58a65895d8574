package vault

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

// testQuota is a snapshot like the upstream's headers give.
func testQuota(used float64, seen time.Time) QuotaSnapshot {
	return QuotaSnapshot{
		PlanType: "plus", ActiveLimit: "primary",
		Primary:   &QuotaWindow{UsedPercent: used, WindowMinutes: 300, ResetAt: seen.Add(2 * time.Hour)},
		Secondary: &QuotaWindow{UsedPercent: used / 4, WindowMinutes: 10080, ResetAt: seen.Add(72 * time.Hour)},
		Credits:   &QuotaCredits{HasCredits: true, Balance: "3.50"},
		Seen:      seen,
	}
}

func TestQuotaSurvivesRestart(t *testing.T) {
	v, path, clock := newTestVault(t, nil)
	alice, bob := mustUser(t, v, "alice@example.com"), mustUser(t, v, "bob@example.com")
	linkAll(t, v, alice, bob)
	if _, err := v.Quota(alice.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Quota before any record: %v", err)
	}
	want := testQuota(42, t0.Add(-time.Minute))
	v.RecordQuota(alice.ID, want)
	v.RecordQuota(bob.ID, QuotaSnapshot{PlanType: "pro"}) // zero Seen: now
	got, err := v.Quota(alice.ID)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Quota = %+v, %v; want %+v", got, err, want)
	}
	// The caller's windows are not shared with the vault.
	want.Primary.UsedPercent = 99
	if got, _ := v.Quota(alice.ID); got.Primary.UsedPercent != 42 {
		t.Fatal("RecordQuota kept the caller's window")
	}
	want.Primary.UsedPercent = 42
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}

	// After a restart the dashboard still has them, with when they were seen.
	clock.Advance(time.Hour)
	v2 := openAt(t, path, testOptions(clock))
	got, err = v2.Quota(alice.ID)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("after reopen Quota = %+v, %v; want %+v", got, err, want)
	}
	if got, err := v2.Quota(bob.ID); err != nil || got.PlanType != "pro" || !got.Seen.Equal(t0) {
		t.Fatalf("bob after reopen = %+v, %v", got, err)
	}
	// Deleting the user deletes the snapshot, in memory and on disk.
	if err := v2.DeleteUser(alice.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := v2.Quota(alice.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Quota of a deleted user: %v", err)
	}
	v2.Close()
	v3 := openAt(t, path, testOptions(clock))
	if _, err := v3.Quota(alice.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Quota of a deleted user after reopen: %v", err)
	}
}

// TestQuotaWritesCoalesced: recording on every response costs no disk
// write; the flusher writes each changed user once per tick, all in one
// commit.
func TestQuotaWritesCoalesced(t *testing.T) {
	v, _, clock := newTestVault(t, func(o *Options) { o.QuotaFlushInterval = time.Hour })
	users := []User{mustUser(t, v, "a@example.com"), mustUser(t, v, "b@example.com"), mustUser(t, v, "c@example.com")}
	linkAll(t, v, users...)
	commits := boltOf(v).Commits()
	for i := range 1000 {
		clock.Advance(time.Millisecond)
		v.RecordQuota(users[i%3].ID, testQuota(float64(i%100), clock.Now()))
	}
	if c := boltOf(v).Commits(); c != commits {
		t.Fatalf("RecordQuota wrote to disk %d times", c-commits)
	}
	v.flushQuotas()
	v.flushQuotas() // nothing changed since
	if c := boltOf(v).Commits(); c != commits+1 {
		t.Fatalf("%d commits for two flushes of 3 users, want 1", c-commits)
	}
	// An older snapshot (a slow response finishing late) does not win.
	latest, _ := v.Quota(users[0].ID)
	v.RecordQuota(users[0].ID, testQuota(1, t0))
	if got, _ := v.Quota(users[0].ID); !got.Seen.Equal(latest.Seen) {
		t.Fatalf("older snapshot replaced the newer one: seen %v, want %v", got.Seen, latest.Seen)
	}
	v.flushQuotas()
	if c := boltOf(v).Commits(); c != commits+1 {
		t.Fatal("an ignored snapshot was written")
	}
	stored, err := v.store.ListQuotas(t.Context())
	if err != nil || len(stored) != 3 || !stored[first(t, v, users[0].ID)].Seen.Equal(latest.Seen) {
		t.Fatalf("stored %+v, %v", stored, err)
	}
}

// linkAll links one account to each user.
func linkAll(t *testing.T, v *Vault, users ...User) {
	t.Helper()
	for _, u := range users {
		if err := v.PutTokens(u.ID, bundle("rt-"+u.Email, t0.Add(time.Hour))); err != nil {
			t.Fatal(err)
		}
	}
}
