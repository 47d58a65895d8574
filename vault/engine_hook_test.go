package vault

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// vault's tests run on the bbolt engine, which lives in vault/bolt and
// imports vault, so these files cannot import it. bolt_hook_test.go, in
// the external test package of this same test binary, sets OpenTestStore.

// TestStore is what these tests need of the bbolt engine beyond Store: the
// database, to tamper with records or hold its write lock, and the count
// of committed writes.
type TestStore interface {
	Store
	DB() *bbolt.DB
	Commits() uint64
}

// OpenTestStore opens the bbolt file at path with vault/bolt (timeout 0:
// the engine's default).
var OpenTestStore func(path string, timeout time.Duration, logger *slog.Logger) (TestStore, error)

// openFile opens a vault on the bbolt file at path, as vault/engine does:
// options checked before the file lock is taken.
func openFile(path string, opts Options) (*Vault, error) {
	if err := opts.Check(); err != nil {
		return nil, err
	}
	o, _ := opts.withDefaults()
	store, err := OpenTestStore(path, o.OpenTimeout, o.Logger)
	if err != nil {
		return nil, err
	}
	v, err := New(store, opts)
	if err != nil {
		store.Close()
		return nil, err
	}
	return v, nil
}

// boltOf is the bbolt engine under a Vault opened with openFile.
func boltOf(v *Vault) TestStore { return v.store.(TestStore) }

// The bbolt file's layout as vault/bolt/schema.go writes it, for the tests
// that make an older release's file or tamper with a stored record.
var (
	bucketMeta          = []byte("meta")
	bucketTokens        = []byte("tokens")
	bucketQuotas        = []byte("quotas")
	bucketKeysByHash    = []byte("keys_by_hash")
	bucketRequests      = []byte("requests")
	bucketRequestsByUsr = []byte("requests_by_user")
	keySchemaVersion    = []byte("schema_version")
)

// accountKey keys an account's token record and quota snapshot.
func accountKey(userID, accountID string) []byte {
	return []byte(userID + "\x00" + accountID)
}

// putJSON stores v as JSON under k.
func putJSON(b *bbolt.Bucket, k []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(k, data)
}

// getTokenRecord reads a token record.
func getTokenRecord(bk *bbolt.Bucket, key []byte) (TokenRecord, error) {
	var rec TokenRecord
	data := bk.Get(key)
	if data == nil {
		return rec, ErrNotFound
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		return rec, fmt.Errorf("token record: %w", err)
	}
	return rec, nil
}

// deletePrefix deletes every key of b that starts with prefix.
func deletePrefix(b *bbolt.Bucket, prefix []byte) error {
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Seek(prefix) {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// putSchema writes a schema version into the meta bucket.
func putSchema(tx *bbolt.Tx, version uint64) error {
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], version)
	return tx.Bucket(bucketMeta).Put(keySchemaVersion, buf[:])
}
