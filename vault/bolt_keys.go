package vault

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/usemysub/caddy-codex-proxy/keypolicy"
)

// CreateKey stores a key with its user and hash index entries.
func (s *boltStore) CreateKey(_ context.Context, rec KeyRecord) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error {
		if !userExists(tx, rec.UserID) {
			return ErrNotFound
		}
		keys, byHash := tx.Bucket(bucketKeys), tx.Bucket(bucketKeysByHash)
		if keys.Get([]byte(rec.ID)) != nil {
			return fmt.Errorf("%w: key id", ErrDuplicate)
		}
		if len(rec.Hash) == 0 {
			return fmt.Errorf("vault: key %s has no hash", rec.ID)
		}
		if byHash.Get(rec.Hash) != nil {
			return fmt.Errorf("%w: key hash", ErrDuplicate)
		}
		if err := byHash.Put(rec.Hash, []byte(rec.ID)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketKeysByUser).Put(userKeyIndex(rec.UserID, rec.ID), nil); err != nil {
			return err
		}
		return keys.Put([]byte(rec.ID), data)
	})
}

// GetKey reads one key.
func (s *boltStore) GetKey(_ context.Context, id string) (KeyRecord, error) {
	var rec KeyRecord
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		rec, err = getKeyRecord(tx.Bucket(bucketKeys), id)
		return err
	})
	return rec, err
}

// ListKeys reads a user's keys through the keys_by_user index.
func (s *boltStore) ListKeys(_ context.Context, userID string) ([]KeyRecord, error) {
	var out []KeyRecord
	err := s.view(func(tx *bolt.Tx) error {
		keys := tx.Bucket(bucketKeys)
		prefix := userKeyIndex(userID, "")
		c := tx.Bucket(bucketKeysByUser).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			rec, err := getKeyRecord(keys, string(k[len(prefix):]))
			if err != nil {
				return err
			}
			out = append(out, rec)
		}
		return nil
	})
	return out, err
}

// ListAllKeys reads every key.
func (s *boltStore) ListAllKeys(context.Context) ([]KeyRecord, error) {
	var out []KeyRecord
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketKeys).ForEach(func(id, data []byte) error {
			var rec KeyRecord
			if err := json.Unmarshal(data, &rec); err != nil {
				return fmt.Errorf("key record %q: %w", id, err)
			}
			out = append(out, rec)
			return nil
		})
	})
	return out, err
}

// RevokeKey disables a key of the user.
func (s *boltStore) RevokeKey(_ context.Context, userID, keyID string, lastUsed time.Time) error {
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKeys)
		rec, err := getKeyRecord(b, keyID)
		if err != nil {
			return err
		}
		if rec.UserID != userID {
			return ErrNotFound
		}
		if rec.Disabled && !lastUsed.After(rec.LastUsed) {
			return nil
		}
		rec.Disabled = true
		rec.LastUsed = maxTime(rec.LastUsed, lastUsed)
		return putJSON(b, []byte(keyID), rec)
	})
}

// TouchKeys raises last-used times in one transaction.
func (s *boltStore) TouchKeys(_ context.Context, uses map[string]time.Time) error {
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKeys)
		for id, at := range uses {
			rec, err := getKeyRecord(b, id)
			if errors.Is(err, ErrNotFound) {
				continue // deleted meanwhile
			} else if err != nil {
				return err
			}
			if !at.After(rec.LastUsed) {
				continue
			}
			rec.LastUsed = at.UTC()
			if err := putJSON(b, []byte(id), rec); err != nil {
				return err
			}
		}
		return nil
	})
}

// deleteUserKeys removes all of a user's keys and their index entries.
func deleteUserKeys(tx *bolt.Tx, userID string) error {
	prefix := userKeyIndex(userID, "")
	idx := tx.Bucket(bucketKeysByUser)
	var ids []string
	c := idx.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		ids = append(ids, string(k[len(prefix):]))
	}
	keys, byHash := tx.Bucket(bucketKeys), tx.Bucket(bucketKeysByHash)
	for _, id := range ids {
		if rec, err := getKeyRecord(keys, id); err == nil && len(rec.Hash) > 0 {
			if err := byHash.Delete(rec.Hash); err != nil {
				return err
			}
		}
		if err := keys.Delete([]byte(id)); err != nil {
			return err
		}
		if err := idx.Delete(userKeyIndex(userID, id)); err != nil {
			return err
		}
	}
	return nil
}

// userKeyIndex is the keys_by_user key for a user's key.
func userKeyIndex(userID, keyID string) []byte {
	return []byte(userID + "\x00" + keyID)
}

// getKeyRecord reads one key record.
func getKeyRecord(b *bolt.Bucket, id string) (KeyRecord, error) {
	data := b.Get([]byte(id))
	if data == nil {
		return KeyRecord{}, ErrNotFound
	}
	var rec KeyRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return KeyRecord{}, fmt.Errorf("vault: key record: %w", err)
	}
	return rec, nil
}

// UpdateKeyPolicy replaces a key's policy.
func (s *boltStore) UpdateKeyPolicy(_ context.Context, userID, keyID string, p keypolicy.Policy) error {
	return s.updateUserKey(userID, keyID, func(rec *KeyRecord) { rec.Policy = p.Clone() })
}

// ResetKeyUsage sets a key's usage reset point.
func (s *boltStore) ResetKeyUsage(_ context.Context, userID, keyID string, at time.Time) error {
	return s.updateUserKey(userID, keyID, func(rec *KeyRecord) { rec.UsageReset = at.UTC() })
}

// updateUserKey rewrites one key of the user with fn applied.
func (s *boltStore) updateUserKey(userID, keyID string, fn func(*KeyRecord)) error {
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKeys)
		rec, err := getKeyRecord(b, keyID)
		if err != nil {
			return err
		}
		if rec.UserID != userID {
			return ErrNotFound
		}
		fn(&rec)
		return putJSON(b, []byte(keyID), rec)
	})
}
