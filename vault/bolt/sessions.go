package bolt

import (
	"context"
	"encoding/json"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// PutSession stores a dashboard session of an existing user.
func (s *Store) PutSession(_ context.Context, key []byte, rec vault.SessionRecord) error {
	return s.update(func(tx *bbolt.Tx) error {
		if !userExists(tx, rec.UserID) {
			return vault.ErrNotFound
		}
		return putJSON(tx.Bucket(bucketSessions), key, rec)
	})
}

// GetSession reads a dashboard session.
func (s *Store) GetSession(_ context.Context, key []byte) (vault.SessionRecord, error) {
	var rec vault.SessionRecord
	err := s.view(func(tx *bbolt.Tx) error {
		found, err := getJSON(tx.Bucket(bucketSessions), key, &rec)
		if err == nil && !found {
			err = vault.ErrNotFound
		}
		return err
	})
	return rec, err
}

// DeleteSession removes a dashboard session.
func (s *Store) DeleteSession(_ context.Context, key []byte) error {
	return s.update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketSessions).Delete(key)
	})
}

// PutLoginToken stores a login token.
func (s *Store) PutLoginToken(_ context.Context, key []byte, rec vault.LoginRecord) error {
	return s.update(func(tx *bbolt.Tx) error {
		return putJSON(tx.Bucket(bucketLoginTokens), key, rec)
	})
}

// TakeLoginToken reads and deletes a login token in one transaction.
func (s *Store) TakeLoginToken(_ context.Context, key []byte) (vault.LoginRecord, error) {
	var rec vault.LoginRecord
	err := s.update(func(tx *bbolt.Tx) error {
		return take(tx.Bucket(bucketLoginTokens), key, &rec)
	})
	return rec, err
}

// PutOAuthSession stores a pending OAuth flow.
func (s *Store) PutOAuthSession(_ context.Context, key []byte, rec vault.OAuthRecord) error {
	return s.update(func(tx *bbolt.Tx) error {
		return putJSON(tx.Bucket(bucketOAuthSessions), key, rec)
	})
}

// TakeOAuthSession reads and deletes a pending OAuth flow in one
// transaction.
func (s *Store) TakeOAuthSession(_ context.Context, key []byte) (vault.OAuthRecord, error) {
	var rec vault.OAuthRecord
	err := s.update(func(tx *bbolt.Tx) error {
		return take(tx.Bucket(bucketOAuthSessions), key, &rec)
	})
	return rec, err
}

// PurgeExpiredSessions deletes what expired by now.
func (s *Store) PurgeExpiredSessions(_ context.Context, now time.Time) (int, error) {
	n := 0
	err := s.update(func(tx *bbolt.Tx) error {
		n = 0
		for _, name := range [][]byte{bucketSessions, bucketLoginTokens, bucketOAuthSessions} {
			d, err := deleteWhere(tx.Bucket(name), func(data []byte) bool {
				var r struct {
					Expires time.Time `json:"expires"`
				}
				return json.Unmarshal(data, &r) != nil || !now.Before(r.Expires)
			})
			if err != nil {
				return err
			}
			n += d
		}
		return nil
	})
	return n, err
}

// deleteSessionsOf removes a user's dashboard and OAuth sessions.
func deleteSessionsOf(tx *bbolt.Tx, userID string) error {
	for _, name := range [][]byte{bucketSessions, bucketOAuthSessions} {
		_, err := deleteWhere(tx.Bucket(name), func(data []byte) bool {
			var r struct {
				UserID string `json:"user_id"`
			}
			return json.Unmarshal(data, &r) == nil && r.UserID == userID
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// take reads the JSON record at key into dst and deletes it, or fails with
// ErrNotFound.
func take(b *bbolt.Bucket, key []byte, dst any) error {
	found, err := getJSON(b, key, dst)
	if err != nil {
		return err
	}
	if !found {
		return vault.ErrNotFound
	}
	return b.Delete(key)
}

// GetLoginToken reads a login token without deleting it.
func (s *Store) GetLoginToken(_ context.Context, key []byte) (vault.LoginRecord, error) {
	var rec vault.LoginRecord
	err := s.view(func(tx *bbolt.Tx) error {
		found, err := getJSON(tx.Bucket(bucketLoginTokens), key, &rec)
		if err == nil && !found {
			err = vault.ErrNotFound
		}
		return err
	})
	return rec, err
}

// DeleteUserSessions removes a user's dashboard sessions and OAuth flows.
func (s *Store) DeleteUserSessions(_ context.Context, userID string) (int, error) {
	n := 0
	err := s.update(func(tx *bbolt.Tx) error {
		var err error
		n, err = deleteWhere(tx.Bucket(bucketSessions), func(data []byte) bool {
			var r struct {
				UserID string `json:"user_id"`
			}
			return json.Unmarshal(data, &r) == nil && r.UserID == userID
		})
		if err != nil {
			return err
		}
		return deleteSessionsOf(tx, userID)
	})
	return n, err
}
