package vault

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

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

// tokenRecord is a bundle as stored: metadata in clear, tokens sealed with
// the user id as associated data.
type tokenRecord struct {
	sealed
	TokenInfo
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
	err := v.update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketUsers).Get([]byte(userID)) == nil {
			return ErrNotFound
		}
		bk := tx.Bucket(bucketTokens)
		if old, err := getTokenRecord(bk, userID); err == nil && old.Version > b.Version {
			b.Version = old.Version
		}
		b.Version++
		return v.putBundle(bk, userID, b)
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
	var info TokenInfo
	err := v.view(func(tx *bolt.Tx) error {
		rec, err := getTokenRecord(tx.Bucket(bucketTokens), userID)
		info = rec.TokenInfo
		return err
	})
	return info, err
}

// Unlink forgets the user's ChatGPT tokens. Unlinking a user without
// tokens is not an error.
func (v *Vault) Unlink(userID string) error {
	err := v.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTokens).Delete([]byte(userID))
	})
	if err != nil {
		return err
	}
	v.dropTokenState(userID)
	return nil
}

// ReencryptAll re-seals every token bundle that is not under the first
// configured key, and returns how many it re-sealed. Run it after putting a
// new key first; the old key can be removed once it returns without error.
func (v *Vault) ReencryptAll() (int, error) {
	n := 0
	var failed []string
	err := v.update(func(tx *bolt.Tx) error {
		n, failed = 0, nil
		bk := tx.Bucket(bucketTokens)
		type redo struct {
			user string
			rec  tokenRecord
		}
		var todo []redo
		err := bk.ForEach(func(k, data []byte) error {
			var rec tokenRecord
			if err := json.Unmarshal(data, &rec); err != nil {
				return fmt.Errorf("vault: token record: %w", err)
			}
			if rec.KeyID != v.keyring.primaryID() {
				todo = append(todo, redo{string(k), rec})
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, r := range todo {
			pt, err := v.keyring.open(r.rec.sealed, r.user)
			if err != nil {
				failed = append(failed, r.user)
				continue
			}
			if r.rec.sealed, err = v.keyring.seal(pt, r.user); err != nil {
				return err
			}
			if err := putJSON(bk, []byte(r.user), r.rec); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if len(failed) > 0 {
		return n, fmt.Errorf("%w: %d bundle(s) could not be re-encrypted (users %v); keep their key configured or have them re-link", ErrTokenUndecryptable, len(failed), failed)
	}
	return n, nil
}

// putBundle seals and stores b for userID inside a write transaction.
func (v *Vault) putBundle(bk *bolt.Bucket, userID string, b TokenBundle) error {
	pt, err := json.Marshal(tokenSecrets{IDToken: b.IDToken, AccessToken: b.AccessToken, RefreshToken: b.RefreshToken})
	if err != nil {
		return err
	}
	s, err := v.keyring.seal(pt, userID)
	if err != nil {
		return err
	}
	return putJSON(bk, []byte(userID), tokenRecord{sealed: s, TokenInfo: infoOf(b, v.now().UTC())})
}

// readBundle loads and decrypts the stored bundle of a user.
func (v *Vault) readBundle(userID string) (TokenBundle, error) {
	var rec tokenRecord
	err := v.view(func(tx *bolt.Tx) error {
		var err error
		rec, err = getTokenRecord(tx.Bucket(bucketTokens), userID)
		return err
	})
	if err != nil {
		return TokenBundle{}, err
	}
	return v.openRecord(userID, rec)
}

// openRecord decrypts a stored record into a bundle.
func (v *Vault) openRecord(userID string, rec tokenRecord) (TokenBundle, error) {
	pt, err := v.keyring.open(rec.sealed, userID)
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
func (v *Vault) loadTokens() error {
	return v.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTokens).ForEach(func(k, data []byte) error {
			user := string(k)
			st := &tokenState{}
			v.tokens[user] = st
			var rec tokenRecord
			if err := json.Unmarshal(data, &rec); err != nil {
				return fmt.Errorf("token record: %w", err)
			}
			b, err := v.openRecord(user, rec)
			if err != nil {
				v.logError("vault: stored ChatGPT tokens cannot be decrypted with the configured keys; the user must re-link or the old key be configured", "user_id", user, "key_id", rec.KeyID)
				return nil
			}
			st.store(v.newCached(b))
			return nil
		})
	})
}

// getTokenRecord reads a user's token record, or ErrNotLinked.
func getTokenRecord(bk *bolt.Bucket, userID string) (tokenRecord, error) {
	data := bk.Get([]byte(userID))
	if data == nil {
		return tokenRecord{}, ErrNotLinked
	}
	var rec tokenRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return tokenRecord{}, fmt.Errorf("vault: token record: %w", err)
	}
	return rec, nil
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
