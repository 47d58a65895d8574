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
	// Label, Position and Linked are the account's metadata (TokenInfo);
	// AddAccount takes Label from here, the vault assigns the others.
	Label    string
	Position int
	Linked   time.Time
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
	// AccountID is the ChatGPT account (ChatGPT-Account-ID), not the id
	// the proxy gives the link (Account.ID).
	AccountID    string    `json:"account_id"`
	PlanType     string    `json:"plan_type"`
	Email        string    `json:"email"`
	Expiry       time.Time `json:"expiry"`
	LastRefresh  time.Time `json:"last_refresh"`
	Version      uint64    `json:"version"`
	RelinkNeeded bool      `json:"relink_needed"`
	RelinkReason string    `json:"relink_reason,omitempty"`
	Updated      time.Time `json:"updated"`
	// Label is the owner's name for the account ("work", "personal").
	Label string `json:"label,omitempty"`
	// Position is the account's place in the owner's order of preference,
	// 1 first.
	Position int `json:"position"`
	// Linked is when the account was first linked.
	Linked time.Time `json:"linked,omitzero"`
}

// tokenSecrets is the sealed part of a tokenRecord.
type tokenSecrets struct {
	IDToken      string `json:"id_token,omitempty"`
	AccessToken  string `json:"access_token,omitempty"`
	RefreshToken string `json:"refresh_token"`
}

// PutTokens stores a user's ChatGPT tokens as their first account (after
// linking or an auth.json import): the account holding the same ChatGPT
// login gets them if there is one, else the account first in the user's
// order is replaced, else the user's first account is created. It clears
// RelinkNeeded. Metadata missing from b is derived from the tokens'
// claims; b.Version is ignored. AddAccount links a further account.
func (v *Vault) PutTokens(userID string, b TokenBundle) error {
	_, err := v.linkAccount(userID, b, false)
	return err
}

// TokenInfo returns the metadata of the user's preferred account (the
// first in their order), or ErrNotLinked.
func (v *Vault) TokenInfo(userID string) (TokenInfo, error) {
	accts, err := v.Accounts(userID)
	if err != nil {
		return TokenInfo{}, err
	}
	if len(accts) == 0 {
		return TokenInfo{}, ErrNotLinked
	}
	return accts[0].TokenInfo, nil
}

// Unlink forgets all of the user's ChatGPT accounts. Unlinking a user
// without accounts is not an error.
func (v *Vault) Unlink(userID string) error {
	all, err := v.store.ListUserTokens(context.Background(), userID)
	if err != nil {
		return err
	}
	for id := range all {
		if err := v.store.DeleteTokens(context.Background(), userID, id); err != nil {
			return err
		}
		v.dropAccountState(AccountRef{UserID: userID, ID: id})
	}
	return nil
}

// ReencryptAll re-seals every token bundle that is not under the key new
// bundles are sealed with (the first configured key, once every live
// instance on the database holds it), and returns how many it re-sealed.
// Run it after putting a new key first; the old key can be removed once it
// returns without error with the first key sealing.
// Each bundle is re-sealed in its own compare-and-swap, so a refresh
// running meanwhile is neither lost nor blocked for long.
func (v *Vault) ReencryptAll() (int, error) {
	ctx := context.Background()
	all, err := v.store.ListTokens(ctx)
	if err != nil {
		return 0, err
	}
	primary := v.keyring.sealID()
	n := 0
	var failed []string
	for ref, rec := range all {
		if rec.KeyID == primary {
			continue
		}
		resealed, undecryptable := false, false
		err := v.updateTokens(ctx, ref, func(cur *TokenRecord) (*TokenRecord, error) {
			resealed, undecryptable = false, false
			if cur == nil || cur.KeyID == primary {
				return nil, nil // unlinked or re-sealed meanwhile
			}
			pt, _, err := v.openSealed(cur.Sealed, ref)
			if err != nil {
				undecryptable = true
				return nil, nil
			}
			next := *cur
			if next.Sealed, err = v.keyring.seal(pt, sealContext(ref)); err != nil {
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
			failed = append(failed, ref.UserID)
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

// sealContext is the associated data a bundle is sealed with: it binds the
// ciphertext to the user and the account.
func sealContext(ref AccountRef) string { return ref.UserID + "\x00account\x00" + ref.ID }

// openSealed decrypts s for ref. Bundles stored before accounts existed
// were bound to the user alone; they still open (legacy is true) until
// loadTokens re-seals them, which it does at the first start after the
// upgrade.
func (v *Vault) openSealed(s Sealed, ref AccountRef) (pt []byte, legacy bool, err error) {
	pt, err = v.keyring.open(s, sealContext(ref))
	if err == nil {
		return pt, false, nil
	}
	if pt, lerr := v.keyring.open(s, ref.UserID); lerr == nil {
		return pt, true, nil
	}
	return nil, false, err
}

// sealBundle is the stored form of b for ref, metadata included.
func (v *Vault) sealBundle(ref AccountRef, b TokenBundle) (*TokenRecord, error) {
	pt, err := json.Marshal(tokenSecrets{IDToken: b.IDToken, AccessToken: b.AccessToken, RefreshToken: b.RefreshToken})
	if err != nil {
		return nil, err
	}
	s, err := v.keyring.seal(pt, sealContext(ref))
	if err != nil {
		return nil, err
	}
	return &TokenRecord{Sealed: s, TokenInfo: infoOf(b, v.now().UTC())}, nil
}

// readBundle loads and decrypts the stored bundle of an account, or fails
// with ErrNotLinked.
func (v *Vault) readBundle(ctx context.Context, ref AccountRef) (TokenBundle, error) {
	rec, err := v.store.GetTokens(ctx, ref.UserID, ref.ID)
	if err != nil {
		return TokenBundle{}, notLinked(err)
	}
	return v.openRecord(ref, rec)
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
func (v *Vault) openRecord(ref AccountRef, rec TokenRecord) (TokenBundle, error) {
	pt, _, err := v.openSealed(rec.Sealed, ref)
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
		Label: i.Label, Position: i.Position, Linked: i.Linked,
	}, nil
}

// loadTokens decrypts every stored bundle into the cache, so requests
// never decrypt. A bundle no key opens is logged and fails on use. Bundles
// still bound to the user alone (stored before accounts existed) are
// re-sealed bound to their account.
func (v *Vault) loadTokens(ctx context.Context) error {
	all, err := v.store.ListTokens(ctx)
	if err != nil {
		return err
	}
	for ref, rec := range all {
		if _, legacy, err := v.openSealed(rec.Sealed, ref); err == nil && legacy {
			if err := v.rebind(ctx, ref); err != nil {
				v.logWarn("vault: binding a stored token bundle to its account failed; it keeps working and is retried at the next start", "user_id", ref.UserID, "account", ref.ID, "error", err)
			}
		}
		v.cacheRecord(ref, rec)
	}
	return nil
}

// rebind re-seals an account's bundle bound to the user alone so that it is
// bound to the account too.
func (v *Vault) rebind(ctx context.Context, ref AccountRef) error {
	return v.updateTokens(ctx, ref, func(cur *TokenRecord) (*TokenRecord, error) {
		if cur == nil {
			return nil, nil
		}
		pt, legacy, err := v.openSealed(cur.Sealed, ref)
		if err != nil || !legacy {
			return nil, nil
		}
		next := *cur
		if next.Sealed, err = v.keyring.seal(pt, sealContext(ref)); err != nil {
			return nil, err
		}
		return &next, nil
	})
}

// cacheRecord installs a stored record in the account's broker state
// unless a newer version is cached.
func (v *Vault) cacheRecord(ref AccountRef, rec TokenRecord) {
	st := v.stateFor(ref)
	b, err := v.openRecord(ref, rec)
	if err != nil {
		v.logError("vault: stored ChatGPT tokens cannot be decrypted with the configured keys; the user must re-link or the old key be configured", "user_id", ref.UserID, "account", ref.ID, "key_id", rec.KeyID)
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
		Label: b.Label, Position: b.Position, Linked: b.Linked,
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
