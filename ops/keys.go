package ops

import (
	"context"
	"errors"
	"net/http"

	"github.com/usemysub/caddy-codex-proxy/keypolicy"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// viewKeys adds current usage to active keys.
func (l local) viewKeys(keys []vault.Key) []KeyView {
	out := make([]KeyView, len(keys))
	for i, k := range keys {
		out[i].Key = k
		if !k.Disabled {
			s := l.v.KeyStatus(k)
			out[i].Usage = &s
		}
	}
	return out
}

// ListKeys implements [Service].
func (l local) ListKeys(_ context.Context, email string) (KeysResult, error) {
	u, err := l.userByEmail(email)
	if err != nil {
		return KeysResult{}, err
	}
	keys, err := l.v.ListKeys(u.ID)
	if err != nil {
		return KeysResult{}, err
	}
	return KeysResult{User: u, Keys: l.viewKeys(keys)}, nil
}

// CreateKey implements [Service]. The policy is checked in full before the
// key exists, so a bad flag mints nothing.
func (l local) CreateKey(_ context.Context, req KeyRequest) (CreatedKey, error) {
	u, err := l.userByEmail(req.Email)
	if err != nil {
		return CreatedKey{}, err
	}
	policy, err := ApplyPolicy(keypolicy.Policy{}, req.Policy)
	if err != nil {
		return CreatedKey{}, err
	}
	if policy.Account != "" {
		if err := l.checkAccount(u.ID, policy.Account); err != nil {
			return CreatedKey{}, err
		}
	}
	plaintext, k, err := l.v.CreateKeyWithPolicy(u.ID, req.Label, policy)
	if err != nil {
		return CreatedKey{}, err
	}
	return CreatedKey{Key: k, Plaintext: plaintext}, nil
}

// RevokeKey implements [Service].
func (l local) RevokeKey(_ context.Context, email, id string) (RevokeResult, error) {
	u, err := l.userByEmail(email)
	if err != nil {
		return RevokeResult{}, err
	}
	if err := l.v.RevokeKey(u.ID, id); err != nil {
		if errors.Is(err, vault.ErrNotFound) {
			return RevokeResult{}, errorf(http.StatusNotFound, "%s has no key with id %s", u.Email, id)
		}
		return RevokeResult{}, err
	}
	keys, err := l.v.ListKeys(u.ID)
	if err != nil {
		return RevokeResult{}, err
	}
	for _, k := range keys {
		if k.ID == id {
			return RevokeResult{Revoked: k}, nil
		}
	}
	return RevokeResult{}, errorf(http.StatusInternalServerError, "key %s vanished after revocation", id)
}

// UpdateKeyPolicy implements [Service]. A revoked key is "not found": its
// policy no longer matters and changing it would look like it does.
func (l local) UpdateKeyPolicy(_ context.Context, id string, req KeyUpdateRequest) (KeyUpdateResult, error) {
	u, err := l.userByEmail(req.Email)
	if err != nil {
		return KeyUpdateResult{}, err
	}
	k, err := l.v.GetKey(u.ID, id)
	if err == nil && k.Disabled {
		err = vault.ErrNotFound
	}
	if errors.Is(err, vault.ErrNotFound) {
		return KeyUpdateResult{}, errorf(http.StatusNotFound, "%s has no active key with id %s", u.Email, id)
	} else if err != nil {
		return KeyUpdateResult{}, err
	}
	p, err := ApplyPolicy(k.Policy, req.Policy)
	if err != nil {
		return KeyUpdateResult{}, err
	}
	if p.Account != "" && p.Account != k.Policy.Account {
		if err := l.checkAccount(u.ID, p.Account); err != nil {
			return KeyUpdateResult{}, err
		}
	}
	if k, err = l.v.UpdateKeyPolicy(u.ID, id, p); err != nil {
		return KeyUpdateResult{}, err // keypolicy.ErrInvalid is a 400 (StatusOf)
	}
	return KeyUpdateResult{Key: l.viewKeys([]vault.Key{k})[0]}, nil
}

// ResetKeyUsage implements [Service].
func (l local) ResetKeyUsage(_ context.Context, email, id string) (KeyUpdateResult, error) {
	u, err := l.userByEmail(email)
	if err != nil {
		return KeyUpdateResult{}, err
	}
	if err := l.v.ResetKeyUsage(u.ID, id); err != nil {
		if errors.Is(err, vault.ErrNotFound) {
			return KeyUpdateResult{}, errorf(http.StatusNotFound, "%s has no active key with id %s", u.Email, id)
		}
		return KeyUpdateResult{}, err
	}
	k, err := l.v.GetKey(u.ID, id)
	if err != nil {
		return KeyUpdateResult{}, err
	}
	return KeyUpdateResult{Key: l.viewKeys([]vault.Key{k})[0]}, nil
}
