package ops

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

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
func (l local) CreateKey(ctx context.Context, req KeyRequest) (_ CreatedKey, err error) {
	detail := policyDetail(req.Policy)
	if req.Label != "" {
		detail = strings.TrimSpace("label=" + strconv.Quote(req.Label) + " " + detail)
	}
	op := l.begin(ctx, vault.AuditKeyCreated, vault.AuditTarget{Email: req.Email}).detail(detail)
	defer op.end(&err)
	u, err := l.userByEmail(req.Email)
	if err != nil {
		return CreatedKey{}, err
	}
	op.user(u)
	policy, err := ApplyPolicy(keypolicy.Policy{}, req.Policy)
	if err != nil {
		return CreatedKey{}, err
	}
	if policy.Account != "" {
		if err := l.checkAccount(u.ID, policy.Account); err != nil {
			return CreatedKey{}, err
		}
	}
	// The key's id is made with it: the entry names the user, and the
	// answer (and the key list) the id.
	var plaintext string
	var k vault.Key
	err = op.commit(func() error {
		var err error
		plaintext, k, err = l.v.CreateKeyWithPolicy(u.ID, req.Label, policy)
		return err
	})
	if err != nil {
		return CreatedKey{}, err
	}
	return CreatedKey{Key: k, Plaintext: plaintext}, nil
}

// RevokeKey implements [Service].
func (l local) RevokeKey(ctx context.Context, email, id string) (_ RevokeResult, err error) {
	op := l.begin(ctx, vault.AuditKeyRevoked, vault.AuditTarget{Email: email, KeyID: id})
	defer op.end(&err)
	u, err := l.userByEmail(email)
	if err != nil {
		return RevokeResult{}, err
	}
	op.user(u)
	if _, err := l.v.GetKey(u.ID, id); errors.Is(err, vault.ErrNotFound) {
		return RevokeResult{}, errorf(http.StatusNotFound, "%s has no key with id %s", u.Email, id)
	}
	if err := op.commit(func() error { return l.v.RevokeKey(u.ID, id) }); err != nil {
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
func (l local) UpdateKeyPolicy(ctx context.Context, id string, req KeyUpdateRequest) (_ KeyUpdateResult, err error) {
	op := l.begin(ctx, vault.AuditKeyPolicy, vault.AuditTarget{Email: req.Email, KeyID: id}).detail(policyDetail(req.Policy))
	defer op.end(&err)
	u, err := l.userByEmail(req.Email)
	if err != nil {
		return KeyUpdateResult{}, err
	}
	op.user(u)
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
	if err = op.commit(func() error {
		var err error
		k, err = l.v.UpdateKeyPolicy(u.ID, id, p)
		return err
	}); err != nil {
		return KeyUpdateResult{}, err // keypolicy.ErrInvalid is a 400 (StatusOf)
	}
	return KeyUpdateResult{Key: l.viewKeys([]vault.Key{k})[0]}, nil
}

// ResetKeyUsage implements [Service].
func (l local) ResetKeyUsage(ctx context.Context, email, id string) (_ KeyUpdateResult, err error) {
	op := l.begin(ctx, vault.AuditKeyUsageReset, vault.AuditTarget{Email: email, KeyID: id})
	defer op.end(&err)
	u, err := l.userByEmail(email)
	if err != nil {
		return KeyUpdateResult{}, err
	}
	op.user(u)
	if k, err := l.v.GetKey(u.ID, id); errors.Is(err, vault.ErrNotFound) || err == nil && k.Disabled {
		return KeyUpdateResult{}, errorf(http.StatusNotFound, "%s has no active key with id %s", u.Email, id)
	}
	if err := op.commit(func() error { return l.v.ResetKeyUsage(u.ID, id) }); err != nil {
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
