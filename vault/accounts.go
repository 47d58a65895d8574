package vault

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Account is one of a user's linked ChatGPT accounts, without secrets.
// Its ID is the proxy's name for the link (unique per user); the ChatGPT
// account it holds is TokenInfo.AccountID.
type Account struct {
	ID string `json:"id"`
	TokenInfo
	// ExhaustedUntil is when the upstream said the account's usage limit
	// resets, while that is in the future; zero otherwise. Kept in memory
	// only.
	ExhaustedUntil time.Time `json:"exhausted_until,omitzero"`
}

// maxAccountLabelLen bounds account labels.
const maxAccountLabelLen = 100

// Account routing policies (User.AccountPolicy).
const (
	// PolicyPreferOrder uses the accounts in the user's order: the first
	// until it is exhausted, then the next. The default.
	PolicyPreferOrder = "prefer-order"
	// PolicyMostRemaining uses the account with the most quota left in its
	// tighter window, as the latest snapshots report it.
	PolicyMostRemaining = "most-remaining"
)

// AddAccount links one more ChatGPT account to the user, last in their
// order, and returns it. Tokens of a ChatGPT login the user has linked
// already (same ChatGPT account id and email) replace that account's
// tokens instead (a re-link), keeping its id and place; a non-empty
// b.Label renames it. It fails with ErrNotFound for an unknown user.
func (v *Vault) AddAccount(userID string, b TokenBundle) (Account, error) {
	return v.linkAccount(userID, b, true)
}

// linkAccount stores b for the user: on the account holding the same
// ChatGPT login, else (add) on a new account last in the order, or
// (!add) on the user's first account.
func (v *Vault) linkAccount(userID string, b TokenBundle, add bool) (Account, error) {
	if b.RefreshToken == "" {
		return Account{}, errors.New("vault: token bundle has no refresh token")
	}
	label, err := cleanLabel(b.Label)
	if err != nil {
		return Account{}, err
	}
	if _, err := v.User(userID); err != nil {
		return Account{}, err
	}
	b = withClaims(b, false)
	b.RelinkNeeded, b.RelinkReason = false, ""
	now := v.now().UTC()
	if b.LastRefresh.IsZero() {
		// Tokens handed over without a date were just obtained.
		b.LastRefresh = now
	}
	ctx := context.Background()
	existing, err := v.store.ListUserTokens(ctx, userID)
	if err != nil {
		return Account{}, err
	}
	id, lastPos := "", 0
	firstID := ""
	for aid, rec := range existing {
		lastPos = max(lastPos, rec.Position)
		if firstID == "" || less(rec.TokenInfo, aid, existing[firstID].TokenInfo, firstID) {
			firstID = aid
		}
		if b.AccountID != "" && rec.AccountID == b.AccountID && strings.EqualFold(rec.Email, b.Email) {
			id = aid
		}
	}
	if id == "" && !add {
		id = firstID
	}
	if id == "" {
		id = NewAccountID()
	}
	ref := AccountRef{UserID: userID, ID: id}
	var base uint64
	if st := v.tokenStateOf(ref); st != nil {
		if cur := st.cur.Load(); cur != nil {
			base = cur.b.Version
		}
	}
	replaced := false
	err = v.updateTokens(ctx, ref, func(cur *TokenRecord) (*TokenRecord, error) {
		b.Version = base
		b.Label, b.Position, b.Linked = label, lastPos+1, now
		replaced = false
		if cur != nil {
			b.Version = max(b.Version, cur.Version)
			b.Position, b.Linked = cur.Position, cur.Linked
			if label == "" {
				b.Label = cur.Label
			}
			replaced = cur.AccountID != b.AccountID
		}
		b.Version++
		return v.sealBundle(ref, b)
	})
	if err != nil {
		return Account{}, err
	}
	st := v.stateFor(ref)
	st.exhausted.Store(0) // new tokens: whatever was known is moot
	st.store(v.newCached(b))
	if replaced {
		v.quotas.dropAccount(ref)
	}
	return Account{ID: id, TokenInfo: infoOf(b, now)}, nil
}

// Accounts returns the user's linked accounts in their order of
// preference; none for a user without.
func (v *Vault) Accounts(userID string) ([]Account, error) {
	all, err := v.store.ListUserTokens(context.Background(), userID)
	if err != nil {
		return nil, err
	}
	now := v.now()
	out := make([]Account, 0, len(all))
	for id, rec := range all {
		a := Account{ID: id, TokenInfo: rec.TokenInfo}
		if st := v.tokenStateOf(AccountRef{UserID: userID, ID: id}); st != nil {
			a.ExhaustedUntil = st.exhaustedUntil(now)
		}
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return less(out[i].TokenInfo, out[i].ID, out[j].TokenInfo, out[j].ID) })
	return out, nil
}

// less orders accounts by position, then by when they were linked, then
// by id, so that the order is total even when positions tie.
func less(a TokenInfo, aid string, b TokenInfo, bid string) bool {
	if a.Position != b.Position {
		return a.Position < b.Position
	}
	if !a.Linked.Equal(b.Linked) {
		return a.Linked.Before(b.Linked)
	}
	return aid < bid
}

// RemoveAccount unlinks one of the user's accounts. It fails with
// ErrNoSuchAccount if the user has no account with this id.
func (v *Vault) RemoveAccount(userID, accountID string) error {
	ctx := context.Background()
	if _, err := v.store.GetTokens(ctx, userID, accountID); err != nil {
		if errors.Is(err, ErrNotFound) {
			return ErrNoSuchAccount
		}
		return err
	}
	if err := v.store.DeleteTokens(ctx, userID, accountID); err != nil {
		return err
	}
	v.dropAccountState(AccountRef{UserID: userID, ID: accountID})
	return nil
}

// SetAccountOrder puts the listed accounts first, in the order given; the
// others follow in their current order. It fails with ErrNoSuchAccount if
// an id is not one of the user's accounts, and for a repeated id.
func (v *Vault) SetAccountOrder(userID string, ids []string) error {
	accts, err := v.Accounts(userID)
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, a := range accts {
		known[a.ID] = true
	}
	order := make([]string, 0, len(accts))
	seen := map[string]bool{}
	for _, id := range ids {
		id = strings.TrimSpace(id)
		if !known[id] {
			return fmt.Errorf("%w: %q", ErrNoSuchAccount, id)
		}
		if seen[id] {
			return fmt.Errorf("vault: account %q is listed twice", id)
		}
		seen[id] = true
		order = append(order, id)
	}
	for _, a := range accts {
		if !seen[a.ID] {
			order = append(order, a.ID)
		}
	}
	for i, id := range order {
		pos := i + 1
		if err := v.updateAccountMeta(userID, id, func(i *TokenInfo) { i.Position = pos }); err != nil {
			return err
		}
	}
	return nil
}

// SetAccountLabel renames one of the user's accounts.
func (v *Vault) SetAccountLabel(userID, accountID, label string) error {
	label, err := cleanLabel(label)
	if err != nil {
		return err
	}
	return v.updateAccountMeta(userID, accountID, func(i *TokenInfo) { i.Label = label })
}

// updateAccountMeta changes an account's clear metadata in a
// compare-and-swap that keeps its tokens and version, and caches the
// result.
func (v *Vault) updateAccountMeta(userID, accountID string, change func(*TokenInfo)) error {
	ref := AccountRef{UserID: userID, ID: accountID}
	var stored TokenRecord
	err := v.updateTokens(context.Background(), ref, func(cur *TokenRecord) (*TokenRecord, error) {
		if cur == nil {
			return nil, ErrNoSuchAccount
		}
		next := *cur
		change(&next.TokenInfo)
		if next.TokenInfo == cur.TokenInfo {
			return nil, nil
		}
		stored = next
		return &next, nil
	})
	if errors.Is(err, ErrNotFound) {
		return ErrNoSuchAccount
	}
	if err != nil || stored.Sealed.Ciphertext == nil {
		return err
	}
	v.cacheRecord(ref, stored)
	return nil
}

// SetAccountPolicy sets how the user's accounts are chosen:
// PolicyPreferOrder or PolicyMostRemaining.
func (v *Vault) SetAccountPolicy(userID, policy string) (User, error) {
	switch policy {
	case PolicyPreferOrder, PolicyMostRemaining:
	default:
		return User{}, fmt.Errorf("vault: unknown account policy %q (want %s or %s)", policy, PolicyPreferOrder, PolicyMostRemaining)
	}
	v.lockCaches()
	defer v.mu.Unlock()
	u, ok := v.users[userID]
	if !ok {
		return User{}, ErrNotFound
	}
	u.AccountPolicy = policy
	if err := v.store.UpdateUser(context.Background(), u); err != nil {
		return User{}, err
	}
	v.users[userID] = u
	return u, nil
}

// cleanLabel trims a label and checks its length.
func cleanLabel(s string) (string, error) {
	s = strings.TrimSpace(s)
	if len(s) > maxAccountLabelLen {
		return "", fmt.Errorf("vault: account label is longer than %d bytes", maxAccountLabelLen)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return "", errors.New("vault: account label contains control characters")
		}
	}
	return s, nil
}

// NewAccountID is a fresh account id: 12 hex digits, short enough to type.
// An engine migrating older records to accounts names them with it.
func NewAccountID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
