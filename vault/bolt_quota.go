package vault

import (
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// PutQuotas writes snapshots of existing users in one transaction.
func (s *boltStore) PutQuotas(_ context.Context, snaps map[string]QuotaSnapshot) error {
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketQuotas)
		for id, q := range snaps {
			if !userExists(tx, id) {
				continue
			}
			if err := putJSON(b, []byte(id), q); err != nil {
				return err
			}
		}
		return nil
	})
}

// ListQuotas reads every snapshot.
func (s *boltStore) ListQuotas(context.Context) (map[string]QuotaSnapshot, error) {
	out := map[string]QuotaSnapshot{}
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketQuotas).ForEach(func(k, data []byte) error {
			var q QuotaSnapshot
			if err := json.Unmarshal(data, &q); err != nil {
				return fmt.Errorf("quota record %q: %w", k, err)
			}
			out[string(k)] = q
			return nil
		})
	})
	return out, err
}
