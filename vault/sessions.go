package vault

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
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

// minStateLen keeps OAuth states unguessable.
const minStateLen = 16

// CreateSession starts a dashboard session for the user and returns its
// bearer token.
func (v *Vault) CreateSession(userID string, ttl time.Duration) (string, error) {
	return v.CreateSessionWith(userID, ttl, SessionOptions{})
}

// SessionOptions is what a session carries besides its user; the zero
// value is a member's email-link session.
type SessionOptions struct {
	// AdminByClaim marks a session begun by an OpenID Connect sign-in
	// whose ID token carried the configured admin claim.
	AdminByClaim bool
}

// CreateSessionWith is CreateSession with options.
func (v *Vault) CreateSessionWith(userID string, ttl time.Duration, o SessionOptions) (string, error) {
	if ttl <= 0 {
		return "", errors.New("vault: session lifetime must be positive")
	}
	token, err := newSecret()
	if err != nil {
		return "", err
	}
	now := v.now().UTC()
	rec := SessionRecord{UserID: userID, Created: now, Expires: now.Add(ttl), AdminByClaim: o.AdminByClaim}
	if err := v.store.PutSession(context.Background(), secretKey(token), rec); err != nil {
		return "", err
	}
	return token, nil
}

// SessionUser returns the user a session token belongs to; unknown and
// expired sessions fail with ErrInvalidToken (expired ones are deleted).
func (v *Vault) SessionUser(token string) (User, error) {
	u, _, err := v.Session(token)
	return u, err
}

// Session is SessionUser with the session's record (its expiry and
// AdminByClaim).
func (v *Vault) Session(token string) (User, SessionRecord, error) {
	rec, err := v.store.GetSession(context.Background(), secretKey(token))
	if err != nil {
		return User{}, SessionRecord{}, invalidToken(err)
	}
	if !v.now().Before(rec.Expires) {
		_ = v.DeleteSession(token)
		return User{}, SessionRecord{}, ErrInvalidToken
	}
	u, err := v.User(rec.UserID)
	if errors.Is(err, ErrNotFound) {
		// A user another instance has just created (a first sign-in there)
		// may not have reached this one's cache yet: the session's row
		// says they exist, so ask the store rather than sign them out.
		u, err = v.store.GetUser(context.Background(), rec.UserID)
	}
	if err != nil {
		return User{}, SessionRecord{}, ErrInvalidToken
	}
	if u.Disabled {
		return User{}, SessionRecord{}, ErrUserDisabled
	}
	return u, rec, nil
}

// DeleteSession ends a dashboard session (logout). Unknown tokens are not
// an error.
func (v *Vault) DeleteSession(token string) error {
	return v.store.DeleteSession(context.Background(), secretKey(token))
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
	rec := LoginRecord{Email: e, Expires: v.now().UTC().Add(ttl)}
	if err := v.store.PutLoginToken(context.Background(), secretKey(token), rec); err != nil {
		return "", err
	}
	return token, nil
}

// ConsumeLoginToken redeems a login token once and returns its email.
func (v *Vault) ConsumeLoginToken(token string) (string, error) {
	rec, err := v.store.TakeLoginToken(context.Background(), secretKey(token))
	if err != nil {
		return "", invalidToken(err)
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
	rec := OAuthRecord{UserID: s.UserID, Verifier: sv, Expires: s.Expires.UTC()}
	return v.store.PutOAuthSession(context.Background(), key, rec)
}

// TakeOAuthSession returns and deletes the OAuth flow for state; a state
// is good for one callback only.
func (v *Vault) TakeOAuthSession(state string) (OAuthSession, error) {
	key := secretKey(state)
	rec, err := v.store.TakeOAuthSession(context.Background(), key)
	if err != nil {
		return OAuthSession{}, invalidToken(err)
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

// purgeExpiredSecrets deletes expired sessions, login tokens and OAuth
// states and returns how many.
func (v *Vault) purgeExpiredSecrets() (int, error) {
	return v.store.PurgeExpiredSessions(context.Background(), v.now())
}

// invalidToken maps the store's ErrNotFound for a bearer secret to
// ErrInvalidToken.
func invalidToken(err error) error {
	if errors.Is(err, ErrNotFound) {
		return ErrInvalidToken
	}
	return err
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

// LoginTokenEmail returns the email a login token signs in, without using
// the token; unknown and expired tokens fail with ErrInvalidToken.
func (v *Vault) LoginTokenEmail(token string) (string, error) {
	rec, err := v.store.GetLoginToken(context.Background(), secretKey(token))
	if err != nil {
		return "", invalidToken(err)
	}
	if !v.now().Before(rec.Expires) {
		return "", ErrInvalidToken
	}
	return rec.Email, nil
}

// DeleteUserSessions ends every dashboard session of a user and drops
// their pending ChatGPT sign-ins ("sign out everywhere"); it returns how
// many sessions ended.
func (v *Vault) DeleteUserSessions(userID string) (int, error) {
	return v.store.DeleteUserSessions(context.Background(), userID)
}
