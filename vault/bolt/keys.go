package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/usemysub/caddy-codex-proxy/keypolicy"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// CreateKey stores a key with its user and hash index entries.
func (s *Store) CreateKey(_ context.Context, rec vault.KeyRecord) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return s.update(func(tx *bbolt.Tx) error {
		if !userExists(tx, rec.UserID) {
			return vault.ErrNotFound
		}
		keys, byHash := tx.Bucket(bucketKeys), tx.Bucket(bucketKeysByHash)
		if keys.Get([]byte(rec.ID)) != nil {
			return fmt.Errorf("%w: key id", vault.ErrDuplicate)
		}
		if len(rec.Hash) == 0 {
			return fmt.Errorf("vault: key %s has no hash", rec.ID)
		}
		if byHash.Get(rec.Hash) != nil {
			return fmt.Errorf("%w: key hash", vault.ErrDuplicate)
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
func (s *Store) GetKey(_ context.Context, id string) (vault.KeyRecord, error) {
	var rec vault.KeyRecord
	err := s.view(func(tx *bbolt.Tx) error {
		var err error
		rec, err = getKeyRecord(tx.Bucket(bucketKeys), id)
		return err
	})
	return rec, err
}

// ListKeys reads a user's keys through the keys_by_user index.
func (s *Store) ListKeys(_ context.Context, userID string) ([]vault.KeyRecord, error) {
	var out []vault.KeyRecord
	err := s.view(func(tx *bbolt.Tx) error {
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
func (s *Store) ListAllKeys(context.Context) ([]vault.KeyRecord, error) {
	var out []vault.KeyRecord
	err := s.view(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketKeys).ForEach(func(id, data []byte) error {
			var rec vault.KeyRecord
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
func (s *Store) RevokeKey(_ context.Context, userID, keyID string, lastUsed time.Time) error {
	return s.update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketKeys)
		rec, err := getKeyRecord(b, keyID)
		if err != nil {
			return err
		}
		if rec.UserID != userID {
			return vault.ErrNotFound
		}
		if rec.Disabled && !lastUsed.After(rec.LastUsed) {
			return nil
		}
		rec.Disabled = true
		rec.LastUsed = laterOf(rec.LastUsed, lastUsed)
		return putJSON(b, []byte(keyID), rec)
	})
}

// TouchKeys raises last-used times in one transaction.
func (s *Store) TouchKeys(_ context.Context, uses map[string]time.Time) error {
	return s.update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketKeys)
		for id, at := range uses {
			rec, err := getKeyRecord(b, id)
			if errors.Is(err, vault.ErrNotFound) {
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
func deleteUserKeys(tx *bbolt.Tx, userID string) error {
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
func getKeyRecord(b *bbolt.Bucket, id string) (vault.KeyRecord, error) {
	data := b.Get([]byte(id))
	if data == nil {
		return vault.KeyRecord{}, vault.ErrNotFound
	}
	var rec vault.KeyRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return vault.KeyRecord{}, fmt.Errorf("vault: key record: %w", err)
	}
	return rec, nil
}

// UpdateKeyPolicy replaces a key's policy.
func (s *Store) UpdateKeyPolicy(_ context.Context, userID, keyID string, p keypolicy.Policy) error {
	return s.updateUserKey(userID, keyID, func(rec *vault.KeyRecord) { rec.Policy = p.Clone() })
}

// ResetKeyUsage sets a key's usage reset point.
func (s *Store) ResetKeyUsage(_ context.Context, userID, keyID string, at time.Time) error {
	return s.update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketKeys)
		rec, err := getKeyRecord(b, keyID)
		if err != nil {
			return err
		}
		if rec.UserID != userID {
			return vault.ErrNotFound
		}
		rec.UsageReset = at.UTC()
		if err := putJSON(b, []byte(keyID), rec); err != nil {
			return err
		}
		return clearKeyUsage(tx, keyID)
	})
}

// updateUserKey rewrites one key of the user with fn applied.
func (s *Store) updateUserKey(userID, keyID string, fn func(*vault.KeyRecord)) error {
	return s.update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketKeys)
		rec, err := getKeyRecord(b, keyID)
		if err != nil {
			return err
		}
		if rec.UserID != userID {
			return vault.ErrNotFound
		}
		fn(&rec)
		return putJSON(b, []byte(keyID), rec)
	})
}

// laterOf returns the later of two times.
func laterOf(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
