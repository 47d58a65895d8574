package vault

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"
)

// API key format: "cpk_" + base64url(32 random bytes), no padding.
const (
	keyPrefix      = "cpk_"
	keyRandomBytes = 32
	keyDisplayLen  = 12 // characters of the plaintext shown in dashboards
	maxKeyInputLen = 256
	maxLabelLen    = 100
	// lastUsedEvery is the resolution of Key.LastUsed: a key used all day
	// costs one write a minute, not one per request.
	lastUsedEvery = time.Minute
)

// Key is an API key's metadata. The plaintext is shown once, at creation;
// the vault keeps only its HMAC.
type Key struct {
	ID       string    `json:"id"`
	UserID   string    `json:"user_id"`
	Prefix   string    `json:"prefix"` // first characters, to tell keys apart
	Label    string    `json:"label"`
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"last_used"` // zero if never used
	Disabled bool      `json:"disabled"`
}

// keyRecord is a Key as stored, with its HMAC.
type keyRecord struct {
	Key
	Hash []byte `json:"hash"`
}

// keyEntry is an active key in the in-memory index.
type keyEntry struct {
	key      Key // LastUsed here is ignored; see lastUsed
	hash     [32]byte
	lastUsed atomic.Int64 // unix nanoseconds, 0 = never
	dirty    atomic.Bool  // lastUsed not yet written
}

// dummyHash is compared against when no key matches, so a miss costs the
// same as a hit.
var dummyHash [32]byte

// CreateKey makes a new API key for the user and returns its plaintext,
// which is never stored.
func (v *Vault) CreateKey(userID, label string) (string, Key, error) {
	label = strings.TrimSpace(label)
	if len(label) > maxLabelLen {
		return "", Key{}, fmt.Errorf("vault: key label is longer than %d bytes", maxLabelLen)
	}
	var raw [keyRandomBytes]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", Key{}, fmt.Errorf("vault: random key: %w", err)
	}
	plaintext := keyPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	sum := v.keyHash(plaintext)
	k := Key{
		ID:      uuid.NewString(),
		UserID:  userID,
		Prefix:  plaintext[:keyDisplayLen],
		Label:   label,
		Created: v.now().UTC(),
	}
	data, err := json.Marshal(keyRecord{Key: k, Hash: sum[:]})
	if err != nil {
		return "", Key{}, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.users[userID]; !ok {
		return "", Key{}, ErrNotFound
	}
	err = v.update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketKeysByUser).Put(userKeyIndex(userID, k.ID), nil); err != nil {
			return err
		}
		return tx.Bucket(bucketKeys).Put([]byte(k.ID), data)
	})
	if err != nil {
		return "", Key{}, err
	}
	v.indexKey(k, sum)
	return plaintext, k, nil
}

// VerifyKey checks an API key and returns it with its user. It reads only
// memory: no disk access, no write. Unknown and revoked keys both fail with
// ErrKeyInvalid.
func (v *Vault) VerifyKey(plaintext string) (Key, User, error) {
	if len(plaintext) > maxKeyInputLen {
		return Key{}, User{}, ErrKeyInvalid
	}
	sum := v.keyHash(plaintext)
	v.mu.RLock()
	e := v.keysByHash[sum]
	var u User
	var userOK bool
	if e != nil {
		u, userOK = v.users[e.key.UserID]
	}
	v.mu.RUnlock()
	if e == nil {
		hmac.Equal(sum[:], dummyHash[:])
		return Key{}, User{}, ErrKeyInvalid
	}
	// The map lookup found it by hash already; the constant-time compare is
	// what decides.
	if !hmac.Equal(sum[:], e.hash[:]) || !userOK {
		return Key{}, User{}, ErrKeyInvalid
	}
	if u.Disabled {
		return Key{}, User{}, ErrUserDisabled
	}
	k := e.key
	k.LastUsed = v.touchKey(e)
	return k, u, nil
}

// touchKey records a use in memory, at most once per lastUsedEvery; the
// background flusher writes it. It returns the recorded last-used time.
func (v *Vault) touchKey(e *keyEntry) time.Time {
	now := v.now().UnixNano()
	last := e.lastUsed.Load()
	if now-last >= int64(lastUsedEvery) && e.lastUsed.CompareAndSwap(last, now) {
		e.dirty.Store(true)
		v.keysDirty.Store(true)
	}
	return unixNano(e.lastUsed.Load())
}

// RevokeKey disables one of the user's keys. When it returns, VerifyKey
// already rejects the key.
func (v *Vault) RevokeKey(userID, keyID string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	err := v.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKeys)
		rec, err := getKeyRecord(b, keyID)
		if err != nil {
			return err
		}
		if rec.UserID != userID {
			return ErrNotFound
		}
		if rec.Disabled {
			return nil
		}
		rec.Disabled = true
		if e, ok := v.keysByID[keyID]; ok {
			rec.LastUsed = maxTime(rec.LastUsed, unixNano(e.lastUsed.Load()))
		}
		return putJSON(b, []byte(keyID), rec)
	})
	if err != nil {
		return err
	}
	if e, ok := v.keysByID[keyID]; ok {
		delete(v.keysByHash, e.hash)
		delete(v.keysByID, keyID)
	}
	return nil
}

// ListKeys returns the user's keys, revoked ones included, oldest first.
func (v *Vault) ListKeys(userID string) ([]Key, error) {
	var out []Key
	err := v.view(func(tx *bolt.Tx) error {
		keys := tx.Bucket(bucketKeys)
		prefix := userKeyIndex(userID, "")
		c := tx.Bucket(bucketKeysByUser).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			rec, err := getKeyRecord(keys, string(k[len(prefix):]))
			if err != nil {
				return err
			}
			out = append(out, rec.Key)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	v.mu.RLock()
	for i := range out {
		if e, ok := v.keysByID[out[i].ID]; ok {
			out[i].LastUsed = maxTime(out[i].LastUsed, unixNano(e.lastUsed.Load()))
		}
	}
	v.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// flushKeyUsage writes the last-used times recorded since the last flush.
func (v *Vault) flushKeyUsage() {
	if !v.keysDirty.Swap(false) {
		return
	}
	type use struct {
		e  *keyEntry
		at time.Time
	}
	var uses []use
	v.mu.RLock()
	for _, e := range v.keysByID {
		if e.dirty.Swap(false) {
			uses = append(uses, use{e, unixNano(e.lastUsed.Load())})
		}
	}
	v.mu.RUnlock()
	if len(uses) == 0 {
		return
	}
	err := v.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKeys)
		for _, u := range uses {
			rec, err := getKeyRecord(b, u.e.key.ID)
			if errors.Is(err, ErrNotFound) {
				continue // deleted meanwhile
			} else if err != nil {
				return err
			}
			if !u.at.After(rec.LastUsed) {
				continue
			}
			rec.LastUsed = u.at
			if err := putJSON(b, []byte(rec.ID), rec); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		// Keep them dirty so the next tick tries again.
		for _, u := range uses {
			u.e.dirty.Store(true)
		}
		v.keysDirty.Store(true)
		v.logf("vault: writing API key last-used times failed", "error", err)
	}
}

// loadKeys builds the in-memory index of active keys.
func (v *Vault) loadKeys() error {
	return v.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketKeys).ForEach(func(id, data []byte) error {
			var rec keyRecord
			if err := json.Unmarshal(data, &rec); err != nil {
				return fmt.Errorf("key record %q: %w", id, err)
			}
			if rec.Disabled || len(rec.Hash) != sha256.Size {
				return nil
			}
			var sum [32]byte
			copy(sum[:], rec.Hash)
			v.indexKey(rec.Key, sum).lastUsed.Store(timeNano(rec.LastUsed))
			return nil
		})
	})
}

// indexKey adds an active key to the in-memory index; v.mu must be held
// (or v not yet shared).
func (v *Vault) indexKey(k Key, sum [32]byte) *keyEntry {
	e := &keyEntry{key: k, hash: sum}
	e.key.LastUsed = time.Time{}
	v.keysByHash[sum] = e
	v.keysByID[k.ID] = e
	return e
}

// deleteUserKeys removes all of a user's keys from the file and returns
// their ids.
func deleteUserKeys(tx *bolt.Tx, userID string) ([]string, error) {
	prefix := userKeyIndex(userID, "")
	idx := tx.Bucket(bucketKeysByUser)
	var ids []string
	c := idx.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		ids = append(ids, string(k[len(prefix):]))
	}
	keys := tx.Bucket(bucketKeys)
	for _, id := range ids {
		if err := keys.Delete([]byte(id)); err != nil {
			return nil, err
		}
		if err := idx.Delete(userKeyIndex(userID, id)); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// keyHash is the HMAC-SHA-256 of an API key under the pepper.
func (v *Vault) keyHash(plaintext string) [32]byte {
	// Pooled MACs: Reset restores the keyed state, cheaper than hmac.New.
	pepper, macs := v.pepper, &v.macs
	if p := v.repeppered.Load(); p != nil { // SetPepper ran
		pepper, macs = p.pepper, &p.macs
	}
	h, _ := macs.Get().(hash.Hash)
	if h == nil {
		h = hmac.New(sha256.New, pepper)
	}
	h.Reset()
	h.Write([]byte(plaintext))
	var sum [32]byte
	h.Sum(sum[:0])
	macs.Put(h)
	return sum
}

// userKeyIndex is the keys_by_user key for a user's key.
func userKeyIndex(userID, keyID string) []byte {
	return []byte(userID + "\x00" + keyID)
}

// getKeyRecord reads one key record.
func getKeyRecord(b *bolt.Bucket, id string) (keyRecord, error) {
	data := b.Get([]byte(id))
	if data == nil {
		return keyRecord{}, ErrNotFound
	}
	var rec keyRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return keyRecord{}, fmt.Errorf("vault: key record: %w", err)
	}
	return rec, nil
}

// putJSON stores v as JSON under k.
func putJSON(b *bolt.Bucket, k []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(k, data)
}

// unixNano converts a stored nanosecond time; 0 is the zero time.
func unixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// timeNano is the inverse of unixNano.
func timeNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// maxTime returns the later of a and b.
func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
