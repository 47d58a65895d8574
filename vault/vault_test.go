package vault

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
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
			_, err := Open(filepath.Join(t.TempDir(), "v.db"), opts)
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
	_, err := Open(path, opts)
	if err == nil || !strings.Contains(err.Error(), "is locked") {
		t.Fatalf("second open: %v", err)
	}
	if !errors.Is(err, ErrLocked) {
		t.Errorf("second open: %v is not ErrLocked", err)
	}
}

// setSchema writes a schema version straight into a closed file.
func setSchema(t *testing.T, path string, version uint64) {
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		var buf [8]byte
		binary.BigEndian.PutUint64(buf[:], version)
		return tx.Bucket(bucketMeta).Put(keySchemaVersion, buf[:])
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestSchemaMigrations(t *testing.T) {
	v, path, clock := newTestVault(t, nil)
	u := mustUser(t, v, "a@example.com")
	var version uint64
	boltOf(v).db.View(func(tx *bolt.Tx) error { version = schemaVersion(tx); return nil })
	if version != latestSchema() {
		t.Fatalf("new file at schema %d, want %d", version, latestSchema())
	}
	v.Close()

	// A later release adds a migration: it runs once, on the existing data.
	saved := migrations
	t.Cleanup(func() { migrations = saved })
	runs := 0
	migrations = append(migrations[:len(migrations):len(migrations)], migration{
		to: latestSchema() + 1, name: "test", fn: func(tx *bolt.Tx) error {
			runs++
			_, err := tx.CreateBucketIfNotExists([]byte("test_bucket"))
			return err
		},
	})
	for range 2 {
		v2, err := Open(path, testOptions(clock))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v2.User(u.ID); err != nil {
			t.Fatalf("data lost in migration: %v", err)
		}
		v2.Close()
	}
	if runs != 1 {
		t.Fatalf("migration ran %d times, want 1", runs)
	}

	// A file from the future is refused, not damaged.
	migrations = saved
	_, err := Open(path, testOptions(clock))
	if err == nil || !strings.Contains(err.Error(), "newer version") {
		t.Fatalf("newer schema: %v", err)
	}
	setSchema(t, path, latestSchema())
	openAt(t, path, testOptions(clock))
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
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketKeysByHash, bucketQuotas} {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
		}
		var buf [8]byte
		binary.BigEndian.PutUint64(buf[:], 1)
		return tx.Bucket(bucketMeta).Put(keySchemaVersion, buf[:])
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
