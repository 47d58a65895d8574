package ops

import (
	"context"
	"net/http"

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
func (l local) AddAccount(_ context.Context, req AccountAddRequest) (vault.Account, error) {
	u, err := l.userByEmail(req.Email)
	if err != nil {
		return vault.Account{}, err
	}
	b, err := vault.ParseAuthJSON(req.AuthJSON)
	if err != nil {
		return vault.Account{}, withStatus(http.StatusBadRequest, err)
	}
	b.Label = req.Label
	return l.v.AddAccount(u.ID, b)
}

// RemoveAccount implements [Service].
func (l local) RemoveAccount(ctx context.Context, email, id string) (AccountsResult, error) {
	u, err := l.userByEmail(email)
	if err != nil {
		return AccountsResult{}, err
	}
	if err := l.v.RemoveAccount(u.ID, id); err != nil {
		return AccountsResult{}, err
	}
	return l.ListAccounts(ctx, email)
}

// OrderAccounts implements [Service].
func (l local) OrderAccounts(ctx context.Context, req AccountOrderRequest) (AccountsResult, error) {
	u, err := l.userByEmail(req.Email)
	if err != nil {
		return AccountsResult{}, err
	}
	if err := l.v.SetAccountOrder(u.ID, req.IDs); err != nil {
		return AccountsResult{}, err
	}
	return l.ListAccounts(ctx, req.Email)
}

// SetAccountPolicy implements [Service].
func (l local) SetAccountPolicy(ctx context.Context, req AccountPolicyRequest) (AccountsResult, error) {
	u, err := l.userByEmail(req.Email)
	if err != nil {
		return AccountsResult{}, err
	}
	if req.Policy != vault.PolicyPreferOrder && req.Policy != vault.PolicyMostRemaining {
		return AccountsResult{}, errorf(http.StatusBadRequest, "unknown policy %q: use %s or %s", req.Policy, vault.PolicyPreferOrder, vault.PolicyMostRemaining)
	}
	if _, err := l.v.SetAccountPolicy(u.ID, req.Policy); err != nil {
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
