package vault

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// accountKey is the key of an account's token record and quota snapshot:
// user id \x00 account id (schema 3). Neither id contains a NUL.
func accountKey(userID, accountID string) []byte {
	return []byte(userID + "\x00" + accountID)
}

// splitAccountKey is the inverse of accountKey.
func splitAccountKey(k []byte) (AccountRef, bool) {
	i := bytes.IndexByte(k, 0)
	if i < 0 {
		return AccountRef{}, false
	}
	return AccountRef{UserID: string(k[:i]), ID: string(k[i+1:])}, true
}

// GetTokens reads one account's token record.
func (s *boltStore) GetTokens(_ context.Context, userID, accountID string) (TokenRecord, error) {
	var rec TokenRecord
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		rec, err = getTokenRecord(tx.Bucket(bucketTokens), accountKey(userID, accountID))
		return err
	})
	return rec, err
}

// ListTokens reads every token record.
func (s *boltStore) ListTokens(context.Context) (map[AccountRef]TokenRecord, error) {
	out := map[AccountRef]TokenRecord{}
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTokens).ForEach(func(k, data []byte) error {
			ref, ok := splitAccountKey(k)
			if !ok {
				return fmt.Errorf("token record %q: key is not user and account", k)
			}
			var rec TokenRecord
			if err := json.Unmarshal(data, &rec); err != nil {
				return fmt.Errorf("token record %q: %w", k, err)
			}
			out[ref] = rec
			return nil
		})
	})
	return out, err
}

// ListUserTokens reads the records of one user's accounts: a prefix scan.
func (s *boltStore) ListUserTokens(_ context.Context, userID string) (map[string]TokenRecord, error) {
	out := map[string]TokenRecord{}
	err := s.view(func(tx *bolt.Tx) error {
		prefix := accountKey(userID, "")
		c := tx.Bucket(bucketTokens).Cursor()
		for k, data := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, data = c.Next() {
			var rec TokenRecord
			if err := json.Unmarshal(data, &rec); err != nil {
				return fmt.Errorf("token record %q: %w", k, err)
			}
			out[string(k[len(prefix):])] = rec
		}
		return nil
	})
	return out, err
}

// UpdateTokens runs fn inside one write transaction: bbolt has a single
// writer, so nothing else writes between the read and the put.
func (s *boltStore) UpdateTokens(_ context.Context, userID, accountID string, fn func(cur *TokenRecord) (*TokenRecord, error)) error {
	err := s.update(func(tx *bolt.Tx) error {
		if !userExists(tx, userID) {
			return ErrNotFound
		}
		bk := tx.Bucket(bucketTokens)
		key := accountKey(userID, accountID)
		var cur *TokenRecord
		if rec, err := getTokenRecord(bk, key); err == nil {
			cur = &rec
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		next, err := fn(cur)
		if err != nil {
			return err
		}
		if next == nil {
			return errNoWrite // roll back: no commit for nothing
		}
		return putJSON(bk, key, next)
	})
	if errors.Is(err, errNoWrite) {
		return nil
	}
	return err
}

// errNoWrite ends a write transaction that turned out to have nothing to
// write.
var errNoWrite = errors.New("vault: nothing to write")

// DeleteTokens forgets one account's token record and quota snapshot.
func (s *boltStore) DeleteTokens(_ context.Context, userID, accountID string) error {
	return s.update(func(tx *bolt.Tx) error {
		key := accountKey(userID, accountID)
		if err := tx.Bucket(bucketTokens).Delete(key); err != nil {
			return err
		}
		return tx.Bucket(bucketQuotas).Delete(key)
	})
}

// deletePrefix deletes every key of b that starts with prefix.
func deletePrefix(b *bolt.Bucket, prefix []byte) error {
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Seek(prefix) {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// getTokenRecord reads a token record, or ErrNotFound.
func getTokenRecord(bk *bolt.Bucket, key []byte) (TokenRecord, error) {
	var rec TokenRecord
	found, err := getJSON(bk, key, &rec)
	if err != nil {
		return TokenRecord{}, fmt.Errorf("vault: token record: %w", err)
	}
	if !found {
		return TokenRecord{}, ErrNotFound
	}
	return rec, nil
}
