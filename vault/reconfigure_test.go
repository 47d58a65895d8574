package vault

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestSetEncryptionKeysRotatesWithoutReopening: the rotation recipe on an
// open vault — new key first, re-encrypt, drop the old key — loses no
// bundle, and dropping a key too early is refused with the counts.
func TestSetEncryptionKeysRotatesWithoutReopening(t *testing.T) {
	v, path, clock := newTestVault(t, nil)
	id1, _ := KeyID(testKey1)
	id2, _ := KeyID(testKey2)
	var users []User
	for _, e := range []string{"a@x.io", "b@x.io"} {
		u := mustUser(t, v, e)
		if err := v.PutTokens(u.ID, bundle("rt-"+e, t0.Add(2*time.Hour))); err != nil {
			t.Fatal(err)
		}
		users = append(users, u)
	}

	// Dropping the only key in use is refused, and nothing changes.
	err := v.SetEncryptionKeys([]string{testKey2})
	var inUse *KeyInUseError
	if !errors.Is(err, ErrKeyStillInUse) || !errors.As(err, &inUse) || inUse.Bundles[id1] != 2 {
		t.Fatalf("dropping a used key: %v", err)
	}
	if strings.Contains(err.Error(), testKey1) {
		t.Fatal("the error shows the key")
	}
	if v.keyring.primaryID() != id1 {
		t.Fatal("a refused change took effect")
	}

	if err := v.SetEncryptionKeys([]string{testKey2, testKey1}); err != nil {
		t.Fatal(err)
	}
	// New bundles are sealed with the new first key at once.
	u3 := mustUser(t, v, "c@x.io")
	if err := v.PutTokens(u3.ID, bundle("rt-c", t0.Add(2*time.Hour))); err != nil {
		t.Fatal(err)
	}
	users = append(users, u3)
	if got, _ := v.BundlesByKey(); got[id1] != 2 || got[id2] != 1 {
		t.Fatalf("bundles by key before re-encryption: %v", got)
	}
	// Still too early to drop the old key.
	if err := v.SetEncryptionKeys([]string{testKey2}); !errors.Is(err, ErrKeyStillInUse) {
		t.Fatalf("dropping before re-encryption: %v", err)
	}
	if n, err := v.ReencryptAll(); err != nil || n != 2 {
		t.Fatalf("ReencryptAll = %d, %v", n, err)
	}
	if err := v.SetEncryptionKeys([]string{testKey2}); err != nil {
		t.Fatalf("dropping after re-encryption: %v", err)
	}
	for _, u := range users {
		if _, _, err := v.AccessToken(context.Background(), u.ID, false); err != nil {
			t.Fatalf("%s after rotation: %v", u.Email, err)
		}
	}
	v.Close()

	// And a fresh open with the new key alone reads every bundle from disk.
	opts := testOptions(clock)
	opts.EncryptionKeys = []string{testKey2}
	v2 := openAt(t, path, opts)
	for _, u := range users {
		if got := storedBundle(t, v2, u.ID); got.RefreshToken != "rt-"+u.Email && got.RefreshToken != "rt-c" {
			t.Fatalf("after reopen: %q", got.RefreshToken)
		}
	}
}

// TestSetEncryptionKeysIgnoresForeignBundles: a bundle sealed with a key
// that was never configured here (already unreadable) does not block a
// change.
func TestSetEncryptionKeysIgnoresForeignBundles(t *testing.T) {
	v, path, clock := newTestVault(t, nil)
	u := mustUser(t, v, "a@x.io")
	if err := v.PutTokens(u.ID, bundle("rt", t0.Add(2*time.Hour))); err != nil {
		t.Fatal(err)
	}
	v.Close()
	opts := testOptions(clock)
	opts.EncryptionKeys = []string{testKey2}
	v2 := openAt(t, path, opts)
	third := strings.Repeat("ab", 32)
	if err := v2.SetEncryptionKeys([]string{third}); err != nil {
		t.Fatalf("a foreign bundle blocked the change: %v", err)
	}
	if err := v2.SetEncryptionKeys([]string{"short"}); err == nil || strings.Contains(err.Error(), "short") {
		t.Fatalf("bad key: %v", err)
	}
}

// TestSetPepperInvalidatesOldKeys: after a pepper change, keys made before
// fail and keys made after work.
func TestSetPepperInvalidatesOldKeys(t *testing.T) {
	v, _, _ := newTestVault(t, nil)
	u := mustUser(t, v, "a@x.io")
	old, _, err := v.CreateKey(u.ID, "old")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := v.VerifyKey(old); err != nil {
		t.Fatal(err)
	}
	if err := v.SetPepper("short"); err == nil {
		t.Fatal("a short pepper was accepted")
	}
	if err := v.SetPepper("another-pepper-0123456789"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := v.VerifyKey(old); !errors.Is(err, ErrKeyInvalid) {
		t.Fatalf("old key after a pepper change: %v", err)
	}
	fresh, _, err := v.CreateKey(u.ID, "new")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := v.VerifyKey(fresh); err != nil {
		t.Fatalf("new key: %v", err)
	}
}

// TestSetLogRetentionPurges: a shorter retention applies at the next purge.
func TestSetLogRetentionPurges(t *testing.T) {
	v, _, clock := newTestVault(t, nil)
	v.LogRequest(LogRecord{Time: clock.Now(), UserID: "u1", RequestID: "r1", Status: 200})
	deadline := time.Now().Add(5 * time.Second)
	for {
		recs, err := v.RecentRequests("u1", time.Time{}, 10, StatusAll)
		if err == nil && len(recs) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the record was not written: %d, %v", len(recs), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	clock.Advance(48 * time.Hour)
	if n, err := v.purgeLogs(); err != nil || n != 0 {
		t.Fatalf("purge under the default retention: %d, %v", n, err)
	}
	v.SetLogRetention(24 * time.Hour)
	if n, err := v.purgeLogs(); err != nil || n != 1 {
		t.Fatalf("purge under a 24h retention: %d, %v", n, err)
	}
}

// TestCheckSecrets accepts what Open accepts, without a file.
func TestCheckSecrets(t *testing.T) {
	for _, c := range []struct {
		keys []string
		ok   bool
	}{
		{[]string{testKey1}, true},
		{[]string{testKey1, testKey2}, true},
		{nil, false},
		{[]string{"nope"}, false},
	} {
		if err := CheckKeys(c.keys); (err == nil) != c.ok {
			t.Errorf("CheckKeys(%d keys) = %v", len(c.keys), err)
		}
	}
	if err := CheckPepper(testPepper); err != nil {
		t.Error(err)
	}
	if err := CheckPepper("short"); err == nil {
		t.Error("a short pepper passed")
	}
}
