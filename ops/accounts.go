package ops

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// ListAccounts implements [Service]; a user who never chose a policy has
// the default one.
func (l local) ListAccounts(_ context.Context, email string) (AccountsResult, error) {
	u, err := l.userByEmail(email)
	if err != nil {
		return AccountsResult{}, err
	}
	accts, err := l.v.Accounts(u.ID)
	if err != nil {
		return AccountsResult{}, err
	}
	policy := u.AccountPolicy
	if policy == "" {
		policy = vault.PolicyPreferOrder
	}
	return AccountsResult{Email: u.Email, Policy: policy, Accounts: accts}, nil
}

// AddAccount implements [Service].
func (l local) AddAccount(ctx context.Context, req AccountAddRequest) (a vault.Account, err error) {
	op := l.begin(ctx, vault.AuditAccountLinked, vault.AuditTarget{Email: req.Email})
	defer op.end(&err)
	u, err := l.userByEmail(req.Email)
	if err != nil {
		return vault.Account{}, err
	}
	op.user(u)
	b, err := vault.ParseAuthJSON(req.AuthJSON)
	if err != nil {
		return vault.Account{}, withStatus(http.StatusBadRequest, err)
	}
	b.Label = req.Label
	if b.Label != "" {
		op.detail("label=" + strconv.Quote(b.Label))
	}
	err = op.commit(func() error {
		var err error
		a, err = l.v.AddAccount(u.ID, b)
		return err
	})
	return a, err
}

// RemoveAccount implements [Service].
func (l local) RemoveAccount(ctx context.Context, email, id string) (_ AccountsResult, err error) {
	op := l.begin(ctx, vault.AuditAccountUnlinked, vault.AuditTarget{Email: email, AccountID: id})
	defer op.end(&err)
	u, err := l.userByEmail(email)
	if err != nil {
		return AccountsResult{}, err
	}
	op.user(u)
	if err := l.knownAccounts(u.ID, id); err != nil {
		return AccountsResult{}, err
	}
	if err := op.commit(func() error { return l.v.RemoveAccount(u.ID, id) }); err != nil {
		return AccountsResult{}, err
	}
	return l.ListAccounts(ctx, email)
}

// OrderAccounts implements [Service].
func (l local) OrderAccounts(ctx context.Context, req AccountOrderRequest) (_ AccountsResult, err error) {
	op := l.begin(ctx, vault.AuditAccountsOrdered, vault.AuditTarget{Email: req.Email}).detail(strings.Join(req.IDs, " "))
	defer op.end(&err)
	u, err := l.userByEmail(req.Email)
	if err != nil {
		return AccountsResult{}, err
	}
	op.user(u)
	if err := l.knownAccounts(u.ID, req.IDs...); err != nil {
		return AccountsResult{}, err
	}
	if err := op.commit(func() error { return l.v.SetAccountOrder(u.ID, req.IDs) }); err != nil {
		return AccountsResult{}, err
	}
	return l.ListAccounts(ctx, req.Email)
}

// SetAccountPolicy implements [Service].
func (l local) SetAccountPolicy(ctx context.Context, req AccountPolicyRequest) (_ AccountsResult, err error) {
	op := l.begin(ctx, vault.AuditAccountPolicySet, vault.AuditTarget{Email: req.Email}).detail(req.Policy)
	defer op.end(&err)
	u, err := l.userByEmail(req.Email)
	if err != nil {
		return AccountsResult{}, err
	}
	op.user(u)
	if req.Policy != vault.PolicyPreferOrder && req.Policy != vault.PolicyMostRemaining {
		return AccountsResult{}, errorf(http.StatusBadRequest, "unknown policy %q: use %s or %s", req.Policy, vault.PolicyPreferOrder, vault.PolicyMostRemaining)
	}
	if err := op.commit(func() error { _, err := l.v.SetAccountPolicy(u.ID, req.Policy); return err }); err != nil {
		return AccountsResult{}, err
	}
	return l.ListAccounts(ctx, req.Email)
}

// checkAccount fails with a 400 unless the user has the account: a key
// pin must name one.
func (l local) checkAccount(userID, id string) error {
	accts, err := l.v.Accounts(userID)
	if err != nil {
		return err
	}
	for _, a := range accts {
		if a.ID == id {
			return nil
		}
	}
	return errorf(http.StatusBadRequest, "the user has no linked ChatGPT account with id %q (see accounts list)", id)
}

// knownAccounts fails as the vault would (ErrNoSuchAccount) unless each
// id is one of the user's accounts, named once: the check before an
// audited change, so a refusal is recorded as one.
func (l local) knownAccounts(userID string, ids ...string) error {
	accts, err := l.v.Accounts(userID)
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, a := range accts {
		known[a.ID] = true
	}
	for _, id := range ids {
		if !known[id] {
			return fmt.Errorf("%w: %q", vault.ErrNoSuchAccount, id)
		}
		delete(known, id) // a repeat is unknown the second time
	}
	return nil
}
