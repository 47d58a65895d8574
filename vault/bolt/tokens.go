package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// accountKey is the key of an account's token record and quota snapshot:
// user id \x00 account id (schema 3). Neither id contains a NUL.
func accountKey(userID, accountID string) []byte {
	return []byte(userID + "\x00" + accountID)
}

// splitAccountKey is the inverse of accountKey.
func splitAccountKey(k []byte) (vault.AccountRef, bool) {
	i := bytes.IndexByte(k, 0)
	if i < 0 {
		return vault.AccountRef{}, false
	}
	return vault.AccountRef{UserID: string(k[:i]), ID: string(k[i+1:])}, true
}

// GetTokens reads one account's token record.
func (s *Store) GetTokens(_ context.Context, userID, accountID string) (vault.TokenRecord, error) {
	var rec vault.TokenRecord
	err := s.view(func(tx *bbolt.Tx) error {
		var err error
		rec, err = getTokenRecord(tx.Bucket(bucketTokens), accountKey(userID, accountID))
		return err
	})
	return rec, err
}

// ListTokens reads every token record.
func (s *Store) ListTokens(context.Context) (map[vault.AccountRef]vault.TokenRecord, error) {
	out := map[vault.AccountRef]vault.TokenRecord{}
	err := s.view(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketTokens).ForEach(func(k, data []byte) error {
			ref, ok := splitAccountKey(k)
			if !ok {
				return fmt.Errorf("token record %q: key is not user and account", k)
			}
			var rec vault.TokenRecord
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
func (s *Store) ListUserTokens(_ context.Context, userID string) (map[string]vault.TokenRecord, error) {
	out := map[string]vault.TokenRecord{}
	err := s.view(func(tx *bbolt.Tx) error {
		prefix := accountKey(userID, "")
		c := tx.Bucket(bucketTokens).Cursor()
		for k, data := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, data = c.Next() {
			var rec vault.TokenRecord
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
func (s *Store) UpdateTokens(_ context.Context, userID, accountID string, fn func(cur *vault.TokenRecord) (*vault.TokenRecord, error)) error {
	err := s.update(func(tx *bbolt.Tx) error {
		if !userExists(tx, userID) {
			return vault.ErrNotFound
		}
		bk := tx.Bucket(bucketTokens)
		key := accountKey(userID, accountID)
		var cur *vault.TokenRecord
		if rec, err := getTokenRecord(bk, key); err == nil {
			cur = &rec
		} else if !errors.Is(err, vault.ErrNotFound) {
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
func (s *Store) DeleteTokens(_ context.Context, userID, accountID string) error {
	return s.update(func(tx *bbolt.Tx) error {
		key := accountKey(userID, accountID)
		if err := tx.Bucket(bucketTokens).Delete(key); err != nil {
			return err
		}
		return tx.Bucket(bucketQuotas).Delete(key)
	})
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

// getTokenRecord reads a token record, or ErrNotFound.
func getTokenRecord(bk *bbolt.Bucket, key []byte) (vault.TokenRecord, error) {
	var rec vault.TokenRecord
	found, err := getJSON(bk, key, &rec)
	if err != nil {
		return vault.TokenRecord{}, fmt.Errorf("vault: token record: %w", err)
	}
	if !found {
		return vault.TokenRecord{}, vault.ErrNotFound
	}
	return rec, nil
}
