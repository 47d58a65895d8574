package bolt

import (
	"encoding/base64"
	"encoding/binary"
	"path/filepath"
	"strings"
	"testing"

	bbolt "go.etcd.io/bbolt"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// testOptions are the smallest valid vault options.
func testOptions() vault.Options {
	return vault.Options{
		EncryptionKeys: []string{base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))},
		Pepper:         "test-pepper-0123456789abcdef",
	}
}

// openVault opens a vault on the file at path.
func openVault(t *testing.T, path string) (*vault.Vault, error) {
	t.Helper()
	s, err := Open(path, Options{})
	if err != nil {
		return nil, err
	}
	v, err := vault.New(s, testOptions())
	if err != nil {
		s.Close()
		return nil, err
	}
	return v, nil
}

// setSchema writes a schema version straight into a closed file.
func setSchema(t *testing.T, path string, version uint64) {
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bbolt.Tx) error {
		var buf [8]byte
		binary.BigEndian.PutUint64(buf[:], version)
		return tx.Bucket(bucketMeta).Put(keySchemaVersion, buf[:])
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestSchemaMigrations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault.db")
	v, err := openVault(t, path)
	if err != nil {
		t.Fatal(err)
	}
	u, err := v.CreateUser("a@example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	var version uint64
	v.Close()
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.DB().View(func(tx *bbolt.Tx) error { version = schemaVersion(tx); return nil })
	s.Close()
	if version != latestSchema() {
		t.Fatalf("new file at schema %d, want %d", version, latestSchema())
	}

	// A later release adds a migration: it runs once, on the existing data.
	saved := migrations
	t.Cleanup(func() { migrations = saved })
	runs := 0
	migrations = append(migrations[:len(migrations):len(migrations)], migration{
		to: latestSchema() + 1, name: "test", fn: func(tx *bbolt.Tx) error {
			runs++
			_, err := tx.CreateBucketIfNotExists([]byte("test_bucket"))
			return err
		},
	})
	for range 2 {
		v2, err := openVault(t, path)
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
	_, err = openVault(t, path)
	if err == nil || !strings.Contains(err.Error(), "newer version") {
		t.Fatalf("newer schema: %v", err)
	}
	setSchema(t, path, latestSchema())
	v3, err := openVault(t, path)
	if err != nil {
		t.Fatal(err)
	}
	v3.Close()
}
