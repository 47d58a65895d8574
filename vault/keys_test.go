package vault

import (
	"encoding/base64"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestCreateKeyFormat(t *testing.T) {
	v, _, _ := newTestVault(t, nil)
	u := mustUser(t, v, "a@example.com")
	plain, k, err := v.CreateKey(u.ID, " laptop ")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(plain, "cpk_") || len(plain) != 47 {
		t.Fatalf("key %d chars, prefix %q", len(plain), plain[:4])
	}
	if raw, err := base64.RawURLEncoding.DecodeString(plain[4:]); err != nil || len(raw) != 32 {
		t.Fatalf("body is not 32 bytes of base64url: %v", err)
	}
	if k.Prefix != plain[:12] || k.Label != "laptop" || k.UserID != u.ID || !k.Created.Equal(t0) {
		t.Fatalf("metadata %+v", k)
	}
	if _, _, err := v.CreateKey("no-such-user", ""); err == nil {
		t.Fatal("key created for an unknown user")
	}
	if _, _, err := v.CreateKey(u.ID, strings.Repeat("x", 101)); err == nil {
		t.Fatal("overlong label accepted")
	}
}

func TestVerifyKey(t *testing.T) {
	v, path, clock := newTestVault(t, nil)
	alice, bob := mustUser(t, v, "alice@example.com"), mustUser(t, v, "bob@example.com")
	valid, vk, _ := v.CreateKey(alice.ID, "valid")
	clock.Advance(time.Second)
	revoked, rk, _ := v.CreateKey(alice.ID, "revoked")
	bobs, _, _ := v.CreateKey(bob.ID, "bob")
	if err := v.RevokeKey(bob.ID, rk.ID); err != ErrNotFound {
		t.Fatalf("revoking another user's key: %v", err)
	}
	if err := v.RevokeKey(alice.ID, rk.ID); err != nil {
		t.Fatal(err)
	}
	if err := v.RevokeKey(alice.ID, rk.ID); err != nil {
		t.Fatalf("revoking twice: %v", err)
	}
	check := func(v *Vault) {
		t.Helper()
		for _, tc := range []struct {
			name, key string
			user      string // "" = must fail
		}{
			{"valid", valid, alice.ID},
			{"other user's valid key", bobs, bob.ID},
			{"revoked", revoked, ""},
			{"unknown", "cpk_" + strings.Repeat("A", 43), ""},
			{"truncated", valid[:46], ""},
			{"empty", "", ""},
			{"garbage", "Bearer xyz", ""},
			{"huge", strings.Repeat("x", 10000), ""},
		} {
			k, u, err := v.VerifyKey(tc.key)
			if tc.user == "" {
				if err != ErrKeyInvalid {
					t.Errorf("%s: err = %v, want ErrKeyInvalid", tc.name, err)
				}
				continue
			}
			if err != nil || u.ID != tc.user || k.UserID != tc.user {
				t.Errorf("%s: %v user %q", tc.name, err, u.ID)
			}
		}
	}
	check(v)
	v.Close()
	v2 := openAt(t, path, testOptions(clock))
	check(v2)
	keys, err := v2.ListKeys(alice.ID)
	if err != nil || len(keys) != 2 || keys[0].ID != vk.ID || keys[0].Disabled || !keys[1].Disabled {
		t.Fatalf("ListKeys = %+v, %v", keys, err)
	}
}

func TestRevokeTakesEffectAtOnce(t *testing.T) {
	v, _, _ := newTestVault(t, nil)
	u := mustUser(t, v, "a@example.com")
	plain, k, _ := v.CreateKey(u.ID, "")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					v.VerifyKey(plain)
				}
			}
		}()
	}
	if err := v.RevokeKey(u.ID, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := v.VerifyKey(plain); err != ErrKeyInvalid {
		t.Fatalf("revoked key still accepted: %v", err)
	}
	close(stop)
	wg.Wait()
}

func TestLastUsedIsThrottledAndWrittenOffThePath(t *testing.T) {
	v, path, clock := newTestVault(t, nil)
	u := mustUser(t, v, "a@example.com")
	plain, k, _ := v.CreateKey(u.ID, "")
	lastUsed := func() time.Time {
		keys, err := v.ListKeys(u.ID)
		if err != nil {
			t.Fatal(err)
		}
		return keys[0].LastUsed
	}
	if !lastUsed().IsZero() {
		t.Fatal("new key has a last-used time")
	}
	commits := boltOf(v).Commits()
	stats := boltOf(v).DB().Stats()
	for range 1000 {
		if _, _, err := v.VerifyKey(plain); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(30 * time.Second)
	got, _, _ := v.VerifyKey(plain)
	after := boltOf(v).DB().Stats()
	diff := after.TxStats.Sub(&stats.TxStats)
	if c := boltOf(v).Commits(); c != commits || diff.GetWrite() != 0 || after.TxN != stats.TxN {
		t.Fatalf("VerifyKey touched the file: %d commits, %d page writes, %d read txs",
			c-commits, diff.GetWrite(), after.TxN-stats.TxN)
	}
	if !got.LastUsed.Equal(t0) || !lastUsed().Equal(t0) {
		t.Fatalf("last used %v, want %v (once a minute at most)", got.LastUsed, t0)
	}
	clock.Advance(31 * time.Second)
	if got, _, _ := v.VerifyKey(plain); !got.LastUsed.Equal(t0.Add(61 * time.Second)) {
		t.Fatalf("last used %v after a minute", got.LastUsed)
	}
	// The flusher writes it in one commit; without new uses it writes nothing.
	v.flushKeyUsage()
	v.flushKeyUsage()
	if c := boltOf(v).Commits(); c != commits+1 {
		t.Fatalf("%d commits for the flush, want 1", c-commits)
	}
	v.Close()
	v2 := openAt(t, path, testOptions(clock))
	keys, _ := v2.ListKeys(u.ID)
	if len(keys) != 1 || keys[0].ID != k.ID || !keys[0].LastUsed.Equal(t0.Add(61*time.Second)) {
		t.Fatalf("after reopen: %+v", keys)
	}
}

func TestLastUsedFlushedOnClose(t *testing.T) {
	v, path, clock := newTestVault(t, nil)
	u := mustUser(t, v, "a@example.com")
	plain, _, _ := v.CreateKey(u.ID, "")
	v.VerifyKey(plain)
	v.Close()
	v2 := openAt(t, path, testOptions(clock))
	if keys, _ := v2.ListKeys(u.ID); !keys[0].LastUsed.Equal(t0) {
		t.Fatalf("last used lost on close: %v", keys[0].LastUsed)
	}
}
