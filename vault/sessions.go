package vault

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Dashboard sessions, login (magic-link) tokens and OAuth states are bearer
// secrets: the file keys them by SHA-256 so a copy of it cannot be replayed.

// OAuthSession is a pending "Sign in with ChatGPT" flow, keyed by its state.
type OAuthSession struct {
	UserID   string
	Verifier string // PKCE code verifier; stored encrypted
	Expires  time.Time
}

// String describes the session without its verifier.
func (s OAuthSession) String() string {
	return fmt.Sprintf("OAuthSession{UserID:%q Verifier:%s Expires:%s}", s.UserID, redacted(s.Verifier), s.Expires.Format(time.RFC3339))
}

// GoString is String, so %#v does not print the verifier either.
func (s OAuthSession) GoString() string { return s.String() }

// sessionRecord is a dashboard session as stored.
type sessionRecord struct {
	UserID  string    `json:"user_id"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

// loginRecord is a login token as stored.
type loginRecord struct {
	Email   string    `json:"email"`
	Expires time.Time `json:"expires"`
}

// oauthRecord is an OAuth session as stored, the verifier sealed.
type oauthRecord struct {
	UserID   string    `json:"user_id"`
	Verifier sealed    `json:"verifier"`
	Expires  time.Time `json:"expires"`
}

// minStateLen keeps OAuth states unguessable.
const minStateLen = 16

// CreateSession starts a dashboard session for the user and returns its
// bearer token.
func (v *Vault) CreateSession(userID string, ttl time.Duration) (string, error) {
	if ttl <= 0 {
		return "", errors.New("vault: session lifetime must be positive")
	}
	token, err := newSecret()
	if err != nil {
		return "", err
	}
	now := v.now().UTC()
	rec := sessionRecord{UserID: userID, Created: now, Expires: now.Add(ttl)}
	err = v.update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketUsers).Get([]byte(userID)) == nil {
			return ErrNotFound
		}
		return putJSON(tx.Bucket(bucketSessions), secretKey(token), rec)
	})
	if err != nil {
		return "", err
	}
	return token, nil
}

// SessionUser returns the user a session token belongs to; unknown and
// expired sessions fail with ErrInvalidToken (expired ones are deleted).
func (v *Vault) SessionUser(token string) (User, error) {
	var rec sessionRecord
	found := false
	err := v.view(func(tx *bolt.Tx) error {
		var err error
		found, err = getJSON(tx.Bucket(bucketSessions), secretKey(token), &rec)
		return err
	})
	if err != nil {
		return User{}, err
	}
	if !found {
		return User{}, ErrInvalidToken
	}
	if !v.now().Before(rec.Expires) {
		_ = v.DeleteSession(token)
		return User{}, ErrInvalidToken
	}
	u, err := v.User(rec.UserID)
	if err != nil {
		return User{}, ErrInvalidToken
	}
	if u.Disabled {
		return User{}, ErrUserDisabled
	}
	return u, nil
}

// DeleteSession ends a dashboard session (logout). Unknown tokens are not
// an error.
func (v *Vault) DeleteSession(token string) error {
	return v.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSessions).Delete(secretKey(token))
	})
}

// CreateLoginToken makes a single-use token (for a magic link) that proves
// control of email.
func (v *Vault) CreateLoginToken(email string, ttl time.Duration) (string, error) {
	e, err := NormalizeEmail(email)
	if err != nil {
		return "", err
	}
	if ttl <= 0 {
		return "", errors.New("vault: login token lifetime must be positive")
	}
	token, err := newSecret()
	if err != nil {
		return "", err
	}
	rec := loginRecord{Email: e, Expires: v.now().UTC().Add(ttl)}
	err = v.update(func(tx *bolt.Tx) error {
		return putJSON(tx.Bucket(bucketLoginTokens), secretKey(token), rec)
	})
	if err != nil {
		return "", err
	}
	return token, nil
}

// ConsumeLoginToken redeems a login token once and returns its email.
func (v *Vault) ConsumeLoginToken(token string) (string, error) {
	var rec loginRecord
	err := v.update(func(tx *bolt.Tx) error {
		return take(tx.Bucket(bucketLoginTokens), secretKey(token), &rec)
	})
	if err != nil {
		return "", err
	}
	if !v.now().Before(rec.Expires) {
		return "", ErrInvalidToken
	}
	return rec.Email, nil
}

// PutOAuthSession remembers a pending OAuth flow under its state.
func (v *Vault) PutOAuthSession(state string, s OAuthSession) error {
	if len(state) < minStateLen {
		return fmt.Errorf("vault: OAuth state must be at least %d characters", minStateLen)
	}
	if !s.Expires.After(v.now()) {
		return errors.New("vault: OAuth session must expire in the future")
	}
	key := secretKey(state)
	sv, err := v.keyring.seal([]byte(s.Verifier), oauthContext(key))
	if err != nil {
		return err
	}
	rec := oauthRecord{UserID: s.UserID, Verifier: sv, Expires: s.Expires.UTC()}
	return v.update(func(tx *bolt.Tx) error {
		return putJSON(tx.Bucket(bucketOAuthSessions), key, rec)
	})
}

// TakeOAuthSession returns and deletes the OAuth flow for state; a state
// is good for one callback only.
func (v *Vault) TakeOAuthSession(state string) (OAuthSession, error) {
	key := secretKey(state)
	var rec oauthRecord
	err := v.update(func(tx *bolt.Tx) error {
		return take(tx.Bucket(bucketOAuthSessions), key, &rec)
	})
	if err != nil {
		return OAuthSession{}, err
	}
	if !v.now().Before(rec.Expires) {
		return OAuthSession{}, ErrInvalidToken
	}
	verifier, err := v.keyring.open(rec.Verifier, oauthContext(key))
	if err != nil {
		return OAuthSession{}, err
	}
	return OAuthSession{UserID: rec.UserID, Verifier: string(verifier), Expires: rec.Expires}, nil
}

// deleteSessionsOf removes a user's dashboard and OAuth sessions.
func deleteSessionsOf(tx *bolt.Tx, userID string) error {
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

// purgeExpiredSecrets deletes expired sessions, login tokens and OAuth
// states and returns how many.
func (v *Vault) purgeExpiredSecrets() (int, error) {
	now := v.now()
	n := 0
	err := v.update(func(tx *bolt.Tx) error {
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

// deleteWhere deletes the records of b for which match is true and
// returns how many.
func deleteWhere(b *bolt.Bucket, match func(data []byte) bool) (int, error) {
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

// take reads the JSON record at key into dst and deletes it, or fails with
// ErrInvalidToken.
func take(b *bolt.Bucket, key []byte, dst any) error {
	found, err := getJSON(b, key, dst)
	if err != nil {
		return err
	}
	if !found {
		return ErrInvalidToken
	}
	return b.Delete(key)
}

// getJSON reads the JSON record at key into dst.
func getJSON(b *bolt.Bucket, key []byte, dst any) (bool, error) {
	data := b.Get(key)
	if data == nil {
		return false, nil
	}
	if err := json.Unmarshal(data, dst); err != nil {
		return false, fmt.Errorf("vault: stored record: %w", err)
	}
	return true, nil
}

// newSecret returns 32 random bytes, base64url without padding.
func newSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("vault: random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// secretKey is the storage key of a bearer secret: its SHA-256.
func secretKey(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// oauthContext binds a sealed verifier to its state's hash.
func oauthContext(key []byte) string { return "oauth\x00" + hex.EncodeToString(key) }
