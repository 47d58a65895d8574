package vault

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"
)

func TestOpenOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Options)
		want string
	}{
		{"no keys", func(o *Options) { o.EncryptionKeys = nil }, "EncryptionKeys"},
		{"short pepper", func(o *Options) { o.Pepper = "short" }, "Pepper"},
		{"bad key", func(o *Options) { o.EncryptionKeys = []string{"abc"} }, "encryption key #1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := testOptions(newClock())
			tc.mod(&opts)
			_, err := openFile(filepath.Join(t.TempDir(), "v.db"), opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error about %s", err, tc.want)
			}
		})
	}
}

func TestFileIsPrivate(t *testing.T) {
	dir := t.TempDir()
	fresh := filepath.Join(dir, "fresh.db")
	openAt(t, fresh, testOptions(newClock()))
	loose := filepath.Join(dir, "loose.db")
	if err := os.WriteFile(loose, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(loose, 0o644); err != nil { // umask may have narrowed it
		t.Fatal(err)
	}
	openAt(t, loose, testOptions(newClock()))
	for _, p := range []string{fresh, loose} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", filepath.Base(p), fi.Mode().Perm())
		}
	}
}

func TestOpenLockedFile(t *testing.T) {
	_, path, clock := newTestVault(t, nil)
	opts := testOptions(clock)
	opts.OpenTimeout = 50 * time.Millisecond
	_, err := openFile(path, opts)
	if err == nil || !strings.Contains(err.Error(), "is locked") {
		t.Fatalf("second open: %v", err)
	}
	if !errors.Is(err, ErrLocked) {
		t.Errorf("second open: %v is not ErrLocked", err)
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	v, _, _ := newTestVault(t, nil)
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := v.CreateUser("a@example.com", ""); err != ErrClosed {
		t.Fatalf("after Close: %v", err)
	}
}

// TestUpgradeFromSchema1 opens a file as the previous release left it
// (no key-hash index, no quotas bucket): the migration fills the index
// from the existing keys and nothing is lost.
func TestUpgradeFromSchema1(t *testing.T) {
	v, path, clock := newTestVault(t, nil)
	u := mustUser(t, v, "a@example.com")
	plain, k, err := v.CreateKey(u.ID, "old key")
	if err != nil {
		t.Fatal(err)
	}
	if err := v.PutTokens(u.ID, bundle("rt-0", t0.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	v.Close()
	// Turn it back into a schema 1 file.
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bucketKeysByHash, bucketQuotas} {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
		}
		return putSchema(tx, 1)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	v2 := openAt(t, path, testOptions(clock))
	if got, _, err := v2.VerifyKey(plain); err != nil || got.ID != k.ID {
		t.Fatalf("key after upgrade: %+v, %v", got, err)
	}
	if tok, _, err := v2.AccessToken(t.Context(), u.ID, false); err != nil || tok == "" {
		t.Fatalf("tokens after upgrade: %v", err)
	}
	// The index knows the old key's hash: it cannot be stored twice.
	sum := v2.keyHash(plain)
	dup := KeyRecord{Key: Key{ID: "dup", UserID: u.ID, Created: t0}, Hash: sum[:]}
	if err := v2.store.CreateKey(t.Context(), dup); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("duplicate of a pre-upgrade key hash: %v", err)
	}
	v2.RecordQuota(u.ID, QuotaSnapshot{PlanType: "plus"})
	v2.flushQuotas()
	if q, err := v2.store.ListQuotas(t.Context()); err != nil || q[first(t, v2, u.ID)].PlanType != "plus" {
		t.Fatalf("quotas after upgrade: %v, %v", q, err)
	}
}
