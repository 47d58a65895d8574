package vault

import (
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// PutQuotas writes snapshots of existing accounts in one transaction.
func (s *boltStore) PutQuotas(_ context.Context, snaps map[AccountRef]QuotaSnapshot) error {
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketQuotas)
		tokens := tx.Bucket(bucketTokens)
		for ref, q := range snaps {
			key := accountKey(ref.UserID, ref.ID)
			if tokens.Get(key) == nil {
				continue
			}
			if err := putJSON(b, key, q); err != nil {
				return err
			}
		}
		return nil
	})
}

// ListQuotas reads every snapshot.
func (s *boltStore) ListQuotas(context.Context) (map[AccountRef]QuotaSnapshot, error) {
	out := map[AccountRef]QuotaSnapshot{}
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketQuotas).ForEach(func(k, data []byte) error {
			ref, ok := splitAccountKey(k)
			if !ok {
				return fmt.Errorf("quota record %q: key is not user and account", k)
			}
			var q QuotaSnapshot
			if err := json.Unmarshal(data, &q); err != nil {
				return fmt.Errorf("quota record %q: %w", k, err)
			}
			out[ref] = q
			return nil
		})
	})
	return out, err
}
