package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// GetTokens reads a user's token record.
func (s *boltStore) GetTokens(_ context.Context, userID string) (TokenRecord, error) {
	var rec TokenRecord
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		rec, err = getTokenRecord(tx.Bucket(bucketTokens), userID)
		return err
	})
	return rec, err
}

// ListTokens reads every token record.
func (s *boltStore) ListTokens(context.Context) (map[string]TokenRecord, error) {
	out := map[string]TokenRecord{}
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTokens).ForEach(func(k, data []byte) error {
			var rec TokenRecord
			if err := json.Unmarshal(data, &rec); err != nil {
				return fmt.Errorf("token record %q: %w", k, err)
			}
			out[string(k)] = rec
			return nil
		})
	})
	return out, err
}

// UpdateTokens runs fn inside one write transaction: bbolt has a single
// writer, so nothing else writes between the read and the put.
func (s *boltStore) UpdateTokens(_ context.Context, userID string, fn func(cur *TokenRecord) (*TokenRecord, error)) error {
	err := s.update(func(tx *bolt.Tx) error {
		if !userExists(tx, userID) {
			return ErrNotFound
		}
		bk := tx.Bucket(bucketTokens)
		var cur *TokenRecord
		if rec, err := getTokenRecord(bk, userID); err == nil {
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
		return putJSON(bk, []byte(userID), next)
	})
	if errors.Is(err, errNoWrite) {
		return nil
	}
	return err
}

// errNoWrite ends a write transaction that turned out to have nothing to
// write.
var errNoWrite = errors.New("vault: nothing to write")

// DeleteTokens forgets a user's token record.
func (s *boltStore) DeleteTokens(_ context.Context, userID string) error {
	return s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTokens).Delete([]byte(userID))
	})
}

// getTokenRecord reads a user's token record, or ErrNotFound.
func getTokenRecord(bk *bolt.Bucket, userID string) (TokenRecord, error) {
	var rec TokenRecord
	found, err := getJSON(bk, []byte(userID), &rec)
	if err != nil {
		return TokenRecord{}, fmt.Errorf("vault: token record: %w", err)
	}
	if !found {
		return TokenRecord{}, ErrNotFound
	}
	return rec, nil
}
