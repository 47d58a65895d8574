package bolt

import (
	"context"
	"encoding/json"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// PutQuotas writes snapshots of existing accounts in one transaction.
func (s *Store) PutQuotas(_ context.Context, snaps map[vault.AccountRef]vault.QuotaSnapshot) error {
	return s.update(func(tx *bbolt.Tx) error {
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
func (s *Store) ListQuotas(context.Context) (map[vault.AccountRef]vault.QuotaSnapshot, error) {
	out := map[vault.AccountRef]vault.QuotaSnapshot{}
	err := s.view(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketQuotas).ForEach(func(k, data []byte) error {
			ref, ok := splitAccountKey(k)
			if !ok {
				return fmt.Errorf("quota record %q: key is not user and account", k)
			}
			var q vault.QuotaSnapshot
			if err := json.Unmarshal(data, &q); err != nil {
				return fmt.Errorf("quota record %q: %w", k, err)
			}
			out[ref] = q
			return nil
		})
	})
	return out, err
}
