package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/usemysub/caddy-codex-proxy/claims"
)

// TokenBundle is a user's ChatGPT login: the OAuth tokens and what the
// proxy needs to know about them. Its String and GoString hide the tokens.
type TokenBundle struct {
	IDToken      string
	AccessToken  string
	RefreshToken string
	// AccountID is sent upstream as ChatGPT-Account-ID.
	AccountID string
	PlanType  string
	Email     string
	// Expiry is the access token's expiry (its JWT exp, else what the token
	// endpoint's expires_in said); zero if unknown.
	Expiry      time.Time
	LastRefresh time.Time
	// Version increases with every stored change; the vault assigns it.
	Version uint64
	// RelinkNeeded is set when the refresh token was rejected for good.
	RelinkNeeded bool
	RelinkReason string
}

// String describes the bundle without its tokens.
func (b TokenBundle) String() string {
	return fmt.Sprintf("TokenBundle{AccountID:%q PlanType:%q Email:%q Expiry:%s LastRefresh:%s Version:%d RelinkNeeded:%t IDToken:%s AccessToken:%s RefreshToken:%s}",
		b.AccountID, b.PlanType, b.Email, b.Expiry.Format(time.RFC3339), b.LastRefresh.Format(time.RFC3339),
		b.Version, b.RelinkNeeded, redacted(b.IDToken), redacted(b.AccessToken), redacted(b.RefreshToken))
}

// GoString is String, so %#v does not print the tokens either.
func (b TokenBundle) GoString() string { return b.String() }

// redacted says whether a secret is set without showing it.
func redacted(s string) string {
	if s == "" {
		return `""`
	}
	return "[redacted]"
}

// TokenInfo is a token bundle's metadata, without secrets, for dashboards.
type TokenInfo struct {
	AccountID    string    `json:"account_id"`
	PlanType     string    `json:"plan_type"`
	Email        string    `json:"email"`
	Expiry       time.Time `json:"expiry"`
	LastRefresh  time.Time `json:"last_refresh"`
	Version      uint64    `json:"version"`
	RelinkNeeded bool      `json:"relink_needed"`
	RelinkReason string    `json:"relink_reason,omitempty"`
	Updated      time.Time `json:"updated"`
}

// tokenSecrets is the sealed part of a tokenRecord.
type tokenSecrets struct {
	IDToken      string `json:"id_token,omitempty"`
	AccessToken  string `json:"access_token,omitempty"`
	RefreshToken string `json:"refresh_token"`
}

// PutTokens stores a user's ChatGPT tokens (after linking or an auth.json
// import), replacing any previous ones and clearing RelinkNeeded. Metadata
// missing from b is derived from the tokens' claims; b.Version is ignored.
func (v *Vault) PutTokens(userID string, b TokenBundle) error {
	if b.RefreshToken == "" {
		return errors.New("vault: token bundle has no refresh token")
	}
	b = withClaims(b, false)
	b.RelinkNeeded, b.RelinkReason = false, ""
	if b.LastRefresh.IsZero() {
		// Tokens handed over without a date were just obtained.
		b.LastRefresh = v.now().UTC()
	}
	b.Version = 0
	st := v.tokenStateOf(userID)
	if st != nil {
		if cur := st.cur.Load(); cur != nil {
			b.Version = cur.b.Version
		}
	}
	base := b.Version
	err := v.updateTokens(context.Background(), userID, func(cur *TokenRecord) (*TokenRecord, error) {
		b.Version = base
		if cur != nil && cur.Version > b.Version {
			b.Version = cur.Version
		}
		b.Version++
		return v.sealBundle(userID, b)
	})
	if err != nil {
		return err
	}
	v.stateFor(userID).store(v.newCached(b))
	return nil
}

// TokenInfo returns the metadata of the user's stored tokens, or
// ErrNotLinked.
func (v *Vault) TokenInfo(userID string) (TokenInfo, error) {
	rec, err := v.store.GetTokens(context.Background(), userID)
	if err != nil {
		return TokenInfo{}, notLinked(err)
	}
	return rec.TokenInfo, nil
}

// Unlink forgets the user's ChatGPT tokens. Unlinking a user without
// tokens is not an error.
func (v *Vault) Unlink(userID string) error {
	if err := v.store.DeleteTokens(context.Background(), userID); err != nil {
		return err
	}
	v.dropTokenState(userID)
	return nil
}

// ReencryptAll re-seals every token bundle that is not under the first
// configured key, and returns how many it re-sealed. Run it after putting a
// new key first; the old key can be removed once it returns without error.
// Each bundle is re-sealed in its own compare-and-swap, so a refresh
// running meanwhile is neither lost nor blocked for long.
func (v *Vault) ReencryptAll() (int, error) {
	ctx := context.Background()
	all, err := v.store.ListTokens(ctx)
	if err != nil {
		return 0, err
	}
	primary := v.keyring.primaryID()
	n := 0
	var failed []string
	for user, rec := range all {
		if rec.KeyID == primary {
			continue
		}
		resealed, undecryptable := false, false
		err := v.updateTokens(ctx, user, func(cur *TokenRecord) (*TokenRecord, error) {
			resealed, undecryptable = false, false
			if cur == nil || cur.KeyID == primary {
				return nil, nil // unlinked or re-sealed meanwhile
			}
			pt, err := v.keyring.open(cur.Sealed, user)
			if err != nil {
				undecryptable = true
				return nil, nil
			}
			next := *cur
			if next.Sealed, err = v.keyring.seal(pt, user); err != nil {
				return nil, err
			}
			resealed = true
			return &next, nil
		})
		switch {
		case errors.Is(err, ErrNotFound):
			// The user was deleted meanwhile.
		case err != nil:
			return n, err
		case undecryptable:
			failed = append(failed, user)
		case resealed:
			n++
		}
	}
	if len(failed) > 0 {
		sort.Strings(failed)
		return n, fmt.Errorf("%w: %d bundle(s) could not be re-encrypted (users %v); keep their key configured or have them re-link", ErrTokenUndecryptable, len(failed), failed)
	}
	return n, nil
}

// sealBundle is the stored form of b for userID.
func (v *Vault) sealBundle(userID string, b TokenBundle) (*TokenRecord, error) {
	pt, err := json.Marshal(tokenSecrets{IDToken: b.IDToken, AccessToken: b.AccessToken, RefreshToken: b.RefreshToken})
	if err != nil {
		return nil, err
	}
	s, err := v.keyring.seal(pt, userID)
	if err != nil {
		return nil, err
	}
	return &TokenRecord{Sealed: s, TokenInfo: infoOf(b, v.now().UTC())}, nil
}

// readBundle loads and decrypts the stored bundle of a user, or fails with
// ErrNotLinked.
func (v *Vault) readBundle(ctx context.Context, userID string) (TokenBundle, error) {
	rec, err := v.store.GetTokens(ctx, userID)
	if err != nil {
		return TokenBundle{}, notLinked(err)
	}
	return v.openRecord(userID, rec)
}

// notLinked maps the store's ErrNotFound for a token record to
// ErrNotLinked.
func notLinked(err error) error {
	if errors.Is(err, ErrNotFound) {
		return ErrNotLinked
	}
	return err
}

// openRecord decrypts a stored record into a bundle.
func (v *Vault) openRecord(userID string, rec TokenRecord) (TokenBundle, error) {
	pt, err := v.keyring.open(rec.Sealed, userID)
	if err != nil {
		return TokenBundle{}, err
	}
	var s tokenSecrets
	if err := json.Unmarshal(pt, &s); err != nil {
		return TokenBundle{}, ErrTokenUndecryptable
	}
	i := rec.TokenInfo
	return TokenBundle{
		IDToken: s.IDToken, AccessToken: s.AccessToken, RefreshToken: s.RefreshToken,
		AccountID: i.AccountID, PlanType: i.PlanType, Email: i.Email,
		Expiry: i.Expiry, LastRefresh: i.LastRefresh, Version: i.Version,
		RelinkNeeded: i.RelinkNeeded, RelinkReason: i.RelinkReason,
	}, nil
}

// loadTokens decrypts every stored bundle into the cache, so requests
// never decrypt. A bundle no key opens is logged and fails on use.
func (v *Vault) loadTokens(ctx context.Context) error {
	all, err := v.store.ListTokens(ctx)
	if err != nil {
		return err
	}
	for user, rec := range all {
		v.cacheRecord(user, rec)
	}
	return nil
}

// cacheRecord installs a stored record in the user's broker state unless a
// newer version is cached.
func (v *Vault) cacheRecord(user string, rec TokenRecord) {
	st := v.stateFor(user)
	b, err := v.openRecord(user, rec)
	if err != nil {
		v.logError("vault: stored ChatGPT tokens cannot be decrypted with the configured keys; the user must re-link or the old key be configured", "user_id", user, "key_id", rec.KeyID)
		return
	}
	st.store(v.newCached(b))
}

// infoOf is the stored metadata of b.
func infoOf(b TokenBundle, now time.Time) TokenInfo {
	return TokenInfo{
		AccountID: b.AccountID, PlanType: b.PlanType, Email: b.Email,
		Expiry: b.Expiry, LastRefresh: b.LastRefresh, Version: b.Version,
		RelinkNeeded: b.RelinkNeeded, RelinkReason: b.RelinkReason, Updated: now,
	}
}

// withClaims fills b's metadata from its JWTs: account, plan and email from
// the id token then the access token, expiry from the access token. With
// override, claim values replace what b had (after a refresh); otherwise
// they only fill gaps.
func withClaims(b TokenBundle, override bool) TokenBundle {
	id, _ := claims.Parse(b.IDToken)
	acc, _ := claims.Parse(b.AccessToken)
	c := id.Merge(acc)
	set := func(dst *string, val string) {
		if val != "" && (override || *dst == "") {
			*dst = val
		}
	}
	set(&b.AccountID, c.AccountID)
	set(&b.PlanType, c.PlanType)
	set(&b.Email, c.Email)
	if !acc.Expiry.IsZero() && (override || b.Expiry.IsZero()) {
		b.Expiry = acc.Expiry
	}
	return b
}
