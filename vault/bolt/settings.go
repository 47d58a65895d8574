package bolt

import (
	"bytes"
	"context"

	bbolt "go.etcd.io/bbolt"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

var _ vault.SettingStore = (*Store)(nil)

// GetSetting reads name from the settings bucket.
func (s *Store) GetSetting(_ context.Context, name string) ([]byte, error) {
	var out []byte
	err := s.view(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketSettings).Get([]byte(name))
		if v == nil {
			return vault.ErrNotFound
		}
		out = bytes.Clone(v)
		return nil
	})
	return out, err
}

// PutSetting writes name.
func (s *Store) PutSetting(_ context.Context, name string, value []byte) error {
	return s.update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketSettings).Put([]byte(name), bytes.Clone(value))
	})
}

// DeleteSetting removes name.
func (s *Store) DeleteSetting(_ context.Context, name string) error {
	return s.update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketSettings).Delete([]byte(name))
	})
}

// ExportSettings reads the settings bucket.
func (s *Store) ExportSettings(context.Context) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := s.view(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketSettings).ForEach(func(k, v []byte) error {
			out[string(k)] = bytes.Clone(v)
			return nil
		})
	})
	return out, err
}
