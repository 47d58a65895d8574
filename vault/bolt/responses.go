package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

var _ vault.ResponseStore = (*Store)(nil)

// PutResponse writes the record and its item index, then drops the user's
// oldest records over the cap, in one transaction.
func (s *Store) PutResponse(_ context.Context, rec vault.ResponseRecord, lim vault.ResponseLimits) (int, error) {
	dropped := 0
	err := s.batch(func(tx *bbolt.Tx) error {
		dropped = 0 // a batch may run this again
		if !userExists(tx, rec.UserID) {
			return vault.ErrNotFound
		}
		b := tx.Bucket(bucketResponses)
		key := accountKey(rec.UserID, rec.ID)
		if err := deleteResponse(tx, key); err != nil && !errors.Is(err, vault.ErrNotFound) {
			return err
		}
		if err := putJSON(b, key, rec); err != nil {
			return err
		}
		items := tx.Bucket(bucketResponseItems)
		for _, id := range rec.ItemIDs {
			if err := items.Put(accountKey(rec.UserID, id), []byte(rec.ID)); err != nil {
				return err
			}
		}
		if lim.MaxUserBytes <= 0 {
			return nil
		}
		all, err := userResponses(b, rec.UserID)
		if err != nil {
			return err
		}
		var total int64
		for _, r := range all {
			total += r.Size()
		}
		for _, r := range all { // oldest first
			if total <= lim.MaxUserBytes {
				break
			}
			if r.ID == rec.ID {
				continue
			}
			if err := deleteResponse(tx, accountKey(r.UserID, r.ID)); err != nil {
				return err
			}
			total -= r.Size()
			dropped++
		}
		return nil
	})
	return dropped, err
}

// userResponses reads a user's records, oldest first.
func userResponses(b *bbolt.Bucket, userID string) ([]vault.ResponseRecord, error) {
	var out []vault.ResponseRecord
	prefix := accountKey(userID, "")
	c := b.Cursor()
	for k, data := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, data = c.Next() {
		var r vault.ResponseRecord
		if err := json.Unmarshal(data, &r); err != nil {
			return nil, fmt.Errorf("response record %q: %w", k, err)
		}
		out = append(out, r)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// deleteResponse removes a record and the index entries still naming it.
func deleteResponse(tx *bbolt.Tx, key []byte) error {
	b := tx.Bucket(bucketResponses)
	data := b.Get(key)
	if data == nil {
		return vault.ErrNotFound
	}
	var r vault.ResponseRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return fmt.Errorf("response record %q: %w", key, err)
	}
	items := tx.Bucket(bucketResponseItems)
	for _, id := range r.ItemIDs {
		ik := accountKey(r.UserID, id)
		if string(items.Get(ik)) == r.ID {
			if err := items.Delete(ik); err != nil {
				return err
			}
		}
	}
	return b.Delete(key)
}

// GetResponse reads one record.
func (s *Store) GetResponse(_ context.Context, userID, id string) (vault.ResponseRecord, error) {
	var r vault.ResponseRecord
	err := s.view(func(tx *bbolt.Tx) error {
		found, err := getJSON(tx.Bucket(bucketResponses), accountKey(userID, id), &r)
		if err == nil && !found {
			err = vault.ErrNotFound
		}
		return err
	})
	return r, err
}

// ResponseByItem follows the item index to its record.
func (s *Store) ResponseByItem(_ context.Context, userID, itemID string) (vault.ResponseRecord, error) {
	var r vault.ResponseRecord
	err := s.view(func(tx *bbolt.Tx) error {
		id := tx.Bucket(bucketResponseItems).Get(accountKey(userID, itemID))
		if id == nil {
			return vault.ErrNotFound
		}
		found, err := getJSON(tx.Bucket(bucketResponses), accountKey(userID, string(id)), &r)
		if err == nil && !found {
			err = vault.ErrNotFound
		}
		return err
	})
	return r, err
}

// DeleteResponse removes one record.
func (s *Store) DeleteResponse(_ context.Context, userID, id string) error {
	return s.update(func(tx *bbolt.Tx) error { return deleteResponse(tx, accountKey(userID, id)) })
}

// PurgeResponses deletes expired records, and those created up to
// createdUpTo when it is set.
func (s *Store) PurgeResponses(_ context.Context, now, createdUpTo time.Time) (int, error) {
	n := 0
	err := s.update(func(tx *bbolt.Tx) error {
		n = 0
		var doomed [][]byte
		err := tx.Bucket(bucketResponses).ForEach(func(k, data []byte) error {
			var r vault.ResponseRecord
			if err := json.Unmarshal(data, &r); err != nil {
				return fmt.Errorf("response record %q: %w", k, err)
			}
			if !r.Expires.After(now) || (!createdUpTo.IsZero() && !r.Created.After(createdUpTo)) {
				doomed = append(doomed, bytes.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range doomed {
			if err := deleteResponse(tx, k); err != nil {
				return err
			}
		}
		n = len(doomed)
		return nil
	})
	return n, err
}

// ExportResponses reads every record.
func (s *Store) ExportResponses(context.Context) ([]vault.ResponseRecord, error) {
	var out []vault.ResponseRecord
	err := exportBucket(s, bucketResponses, func(_ []byte, r vault.ResponseRecord) { out = append(out, r) })
	return out, err
}
