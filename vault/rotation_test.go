package vault

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a log sink safe for the background re-encryption.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestReconfigureRotatesKeys: the rotation recipe through Reconfigure —
// new key first, the old one kept, then the old one dropped — re-encrypts
// in the background and refuses a drop that would strand a bundle,
// naming the key by place and id only.
func TestReconfigureRotatesKeys(t *testing.T) {
	logs := &syncBuffer{}
	v, _, _ := newTestVault(t, func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	id1, _ := KeyID(testKey1)
	id2, _ := KeyID(testKey2)
	u := mustUser(t, v, "a@x.io")
	if err := v.PutTokens(u.ID, bundle("rt-a", t0.Add(2*time.Hour))); err != nil {
		t.Fatal(err)
	}
	base := v.Settings()

	// Dropping the key in use is refused, at the check and at the change.
	drop := base
	drop.EncryptionKeys = []string{testKey2}
	for name, err := range map[string]error{"check": v.CheckKeyRemoval(drop.EncryptionKeys), "reconfigure": v.Reconfigure(drop)} {
		if !errors.Is(err, ErrKeyStillInUse) || !strings.Contains(err.Error(), "encryption_key #1 of the running config (id "+id1+")") ||
			!strings.Contains(err.Error(), reencryptedMsg) || strings.Contains(err.Error(), testKey1) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if got := v.Settings().EncryptionKeys; len(got) != 1 || got[0] != testKey1 {
		t.Fatalf("a refused change took effect: %d keys", len(got))
	}

	rotate := base
	rotate.EncryptionKeys = []string{testKey2, testKey1}
	rotate.LogRetention = 2 * time.Hour
	if err := v.Reconfigure(rotate); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "re-encryption to the new key", func() bool { got, _ := v.BundlesByKey(); return got[id2] == 1 && got[id1] == 0 })
	waitFor(t, "the re-encrypted message", func() bool { return strings.Contains(logs.String(), reencryptedMsg) })
	if v.logRetention() != 2*time.Hour || !strings.Contains(logs.String(), "log_retention changed") ||
		!strings.Contains(logs.String(), "first_key_id="+id2) {
		t.Fatalf("retention %v, logs:\n%s", v.logRetention(), logs)
	}
	if err := v.CheckKeyRemoval(drop.EncryptionKeys); err != nil {
		t.Fatalf("check after re-encryption: %v", err)
	}
	drop.LogRetention = rotate.LogRetention
	if err := v.Reconfigure(drop); err != nil {
		t.Fatalf("dropping after re-encryption: %v", err)
	}

	// Bad settings are refused with the setting's name.
	bad := drop
	bad.Pepper = "short"
	if err := v.Reconfigure(bad); err == nil || !strings.HasPrefix(err.Error(), "api_key_pepper: ") {
		t.Fatalf("short pepper: %v", err)
	}
	bad = drop
	bad.EncryptionKeys = []string{"not-a-key"}
	if err := v.Reconfigure(bad); err == nil || !strings.HasPrefix(err.Error(), "encryption_key: ") {
		t.Fatalf("bad key: %v", err)
	}
}

// TestRestoreKeepsKeysInForce: rolling back to older settings keeps the
// keys in force after the older ones, so bundles sealed meanwhile stay
// readable, and moves them back to the older first key.
func TestRestoreKeepsKeysInForce(t *testing.T) {
	v, _, _ := newTestVault(t, nil)
	id1, _ := KeyID(testKey1)
	old := v.Settings()
	next := old
	next.EncryptionKeys = []string{testKey2}
	if err := v.Reconfigure(next); err != nil {
		t.Fatal(err)
	}
	u := mustUser(t, v, "a@x.io")
	if err := v.PutTokens(u.ID, bundle("rt-a", t0.Add(2*time.Hour))); err != nil {
		t.Fatal(err)
	}
	if err := v.Restore(old); err != nil {
		t.Fatal(err)
	}
	if got := v.Settings().EncryptionKeys; len(got) != 2 || got[0] != testKey1 || got[1] != testKey2 {
		t.Fatalf("keys after the rollback: %d", len(got))
	}
	waitFor(t, "re-encryption back to the old key", func() bool { got, _ := v.BundlesByKey(); return got[id1] == 1 })
	if got := storedBundle(t, v, u.ID); got.RefreshToken != "rt-a" {
		t.Fatalf("bundle after the rollback: %q", got.RefreshToken)
	}
}
