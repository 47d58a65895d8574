package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// CreateUser stores u and its email index entry.
func (s *Store) CreateUser(_ context.Context, u vault.User) error {
	data, err := json.Marshal(u)
	if err != nil {
		return err
	}
	return s.update(func(tx *bbolt.Tx) error {
		idx := tx.Bucket(bucketUsersByEmail)
		if idx.Get([]byte(u.Email)) != nil {
			return vault.ErrEmailTaken
		}
		users := tx.Bucket(bucketUsers)
		if users.Get([]byte(u.ID)) != nil {
			return fmt.Errorf("%w: user id", vault.ErrDuplicate)
		}
		if err := idx.Put([]byte(u.Email), []byte(u.ID)); err != nil {
			return err
		}
		return users.Put([]byte(u.ID), data)
	})
}

// GetUser reads one user.
func (s *Store) GetUser(_ context.Context, id string) (vault.User, error) {
	var u vault.User
	err := s.view(func(tx *bbolt.Tx) error {
		found, err := getJSON(tx.Bucket(bucketUsers), []byte(id), &u)
		if err == nil && !found {
			err = vault.ErrNotFound
		}
		return err
	})
	return u, err
}

// UserByEmail reads the user the email index names.
func (s *Store) UserByEmail(_ context.Context, email string) (vault.User, error) {
	var u vault.User
	err := s.view(func(tx *bbolt.Tx) error {
		id := tx.Bucket(bucketUsersByEmail).Get([]byte(email))
		if id == nil {
			return vault.ErrNotFound
		}
		found, err := getJSON(tx.Bucket(bucketUsers), id, &u)
		if err == nil && !found {
			err = vault.ErrNotFound
		}
		return err
	})
	return u, err
}

// ListUsers reads every user.
func (s *Store) ListUsers(context.Context) ([]vault.User, error) {
	var out []vault.User
	err := s.view(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketUsers).ForEach(func(k, data []byte) error {
			var u vault.User
			if err := json.Unmarshal(data, &u); err != nil {
				return fmt.Errorf("user record %q: %w", k, err)
			}
			out = append(out, u)
			return nil
		})
	})
	return out, err
}

// UpdateUser replaces a user, keeping its email.
func (s *Store) UpdateUser(_ context.Context, u vault.User) error {
	return s.update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketUsers)
		var old vault.User
		found, err := getJSON(b, []byte(u.ID), &old)
		if err != nil {
			return err
		}
		if !found {
			return vault.ErrNotFound
		}
		u.Email = old.Email
		return putJSON(b, []byte(u.ID), u)
	})
}

// DeleteUser removes a user and everything that is theirs but history.
func (s *Store) DeleteUser(_ context.Context, id string) error {
	return s.update(func(tx *bbolt.Tx) error {
		users := tx.Bucket(bucketUsers)
		var u vault.User
		found, err := getJSON(users, []byte(id), &u)
		if err != nil {
			return err
		}
		if !found {
			return vault.ErrNotFound
		}
		if err := deleteUserKeys(tx, id); err != nil {
			return err
		}
		if err := deletePrefix(tx.Bucket(bucketTokens), accountKey(id, "")); err != nil {
			return err
		}
		if err := deletePrefix(tx.Bucket(bucketQuotas), accountKey(id, "")); err != nil {
			return err
		}
		if err := deleteSessionsOf(tx, id); err != nil {
			return err
		}
		if err := deletePrefix(tx.Bucket(bucketResponses), accountKey(id, "")); err != nil {
			return err
		}
		if err := deletePrefix(tx.Bucket(bucketResponseItems), accountKey(id, "")); err != nil {
			return err
		}
		if err := tx.Bucket(bucketUsersByEmail).Delete([]byte(u.Email)); err != nil {
			return err
		}
		return users.Delete([]byte(id))
	})
}

// userExists reports whether the user is in the file.
func userExists(tx *bbolt.Tx, id string) bool {
	return tx.Bucket(bucketUsers).Get([]byte(id)) != nil
}

// getJSON reads the JSON record at key into dst.
func getJSON(b *bbolt.Bucket, key []byte, dst any) (bool, error) {
	data := b.Get(key)
	if data == nil {
		return false, nil
	}
	if err := json.Unmarshal(data, dst); err != nil {
		return false, fmt.Errorf("vault: stored record: %w", err)
	}
	return true, nil
}

// putJSON stores v as JSON under k.
func putJSON(b *bbolt.Bucket, k []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(k, data)
}

// deleteWhere deletes the records of b for which match is true and
// returns how many.
func deleteWhere(b *bbolt.Bucket, match func(data []byte) bool) (int, error) {
	var doomed [][]byte
	err := b.ForEach(func(k, data []byte) error {
		if match(data) {
			doomed = append(doomed, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, k := range doomed {
		if err := b.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(doomed), nil
}
