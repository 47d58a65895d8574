package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// Linked ChatGPT accounts through the admin API and the CLI
// (docs/accounts.md).

// accountsResult lists a user's accounts and routing policy.
type accountsResult struct {
	Email    string          `json:"email"`
	Policy   string          `json:"policy"`
	Accounts []vault.Account `json:"accounts"`
}

// listAccounts is the user's accounts in their order.
func listAccounts(v *vault.Vault, email string) (accountsResult, error) {
	u, err := userByEmail(v, email)
	if err != nil {
		return accountsResult{}, err
	}
	accts, err := v.Accounts(u.ID)
	if err != nil {
		return accountsResult{}, vaultErr(err)
	}
	policy := u.AccountPolicy
	if policy == "" {
		policy = vault.PolicyPreferOrder
	}
	return accountsResult{Email: u.Email, Policy: policy, Accounts: accts}, nil
}

// addAccount links one more account from an auth.json document.
func addAccount(v *vault.Vault, email string, authJSON []byte, label string) (vault.Account, error) {
	u, err := userByEmail(v, email)
	if err != nil {
		return vault.Account{}, err
	}
	b, err := vault.ParseAuthJSON(authJSON)
	if err != nil {
		return vault.Account{}, apiErr(http.StatusBadRequest, err)
	}
	b.Label = label
	a, err := v.AddAccount(u.ID, b)
	if err != nil {
		return vault.Account{}, accountErr(err)
	}
	return a, nil
}

// removeAccount unlinks one account.
func removeAccount(v *vault.Vault, email, id string) error {
	u, err := userByEmail(v, email)
	if err != nil {
		return err
	}
	return accountErr(v.RemoveAccount(u.ID, id))
}

// orderAccounts sets the order of preference.
func orderAccounts(v *vault.Vault, email string, ids []string) (accountsResult, error) {
	u, err := userByEmail(v, email)
	if err != nil {
		return accountsResult{}, err
	}
	if err := v.SetAccountOrder(u.ID, ids); err != nil {
		return accountsResult{}, accountErr(err)
	}
	return listAccounts(v, email)
}

// setAccountPolicy sets how the user's accounts are chosen.
func setAccountPolicy(v *vault.Vault, email, policy string) (accountsResult, error) {
	u, err := userByEmail(v, email)
	if err != nil {
		return accountsResult{}, err
	}
	if policy != vault.PolicyPreferOrder && policy != vault.PolicyMostRemaining {
		return accountsResult{}, apiErr(http.StatusBadRequest, fmt.Errorf("unknown policy %q: use %s or %s", policy, vault.PolicyPreferOrder, vault.PolicyMostRemaining))
	}
	if _, err := v.SetAccountPolicy(u.ID, policy); err != nil {
		return accountsResult{}, vaultErr(err)
	}
	return listAccounts(v, email)
}

// checkAccount fails with a 400 unless the user has the account (a key
// pin must name one).
func checkAccount(v *vault.Vault, userID, id string) error {
	accts, err := v.Accounts(userID)
	if err != nil {
		return vaultErr(err)
	}
	for _, a := range accts {
		if a.ID == id {
			return nil
		}
	}
	return apiErr(http.StatusBadRequest, fmt.Errorf("the user has no linked ChatGPT account with id %q (see accounts list)", id))
}

// accountErr maps the vault's account errors to API errors.
func accountErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, vault.ErrNoSuchAccount):
		return apiErr(http.StatusNotFound, err)
	}
	return vaultErr(err)
}

// accountAddRequest is the body of POST /codex_proxy/accounts.
type accountAddRequest struct {
	Email    string          `json:"email"`
	AuthJSON json.RawMessage `json:"auth_json"`
	Label    string          `json:"label"`
}

// accountOrderRequest is the body of POST /codex_proxy/accounts/order.
type accountOrderRequest struct {
	Email string   `json:"email"`
	IDs   []string `json:"ids"`
}

// accountPolicyRequest is the body of POST /codex_proxy/accounts/policy.
type accountPolicyRequest struct {
	Email  string `json:"email"`
	Policy string `json:"policy"`
}

// serveAccounts routes the admin API's /codex_proxy/accounts subtree:
//
//	GET    /codex_proxy/accounts?email=         a user's linked ChatGPT accounts and routing policy
//	POST   /codex_proxy/accounts                link one more: {"email", "auth_json", "label"}
//	DELETE /codex_proxy/accounts/{id}?email=    unlink one
//	POST   /codex_proxy/accounts/order          order of preference: {"email", "ids": [...]}
//	POST   /codex_proxy/accounts/policy         routing policy: {"email", "policy": "prefer-order"|"most-remaining"}
func (a adminAPI) serveAccounts(w http.ResponseWriter, r *http.Request, seg []string, q url.Values) error {
	switch {
	case len(seg) == 1:
		switch r.Method {
		case http.MethodGet:
			return a.with(w, r, func(v *vault.Vault) (int, any, error) {
				res, err := listAccounts(v, q.Get("email"))
				return http.StatusOK, res, err
			})
		case http.MethodPost:
			var req accountAddRequest
			if err := decodeBody(w, r, &req); err != nil {
				return err
			}
			return a.with(w, r, func(v *vault.Vault) (int, any, error) {
				res, err := addAccount(v, req.Email, req.AuthJSON, req.Label)
				return http.StatusCreated, res, err
			})
		}
		return allow(w, r, http.MethodGet, http.MethodPost)
	case len(seg) == 2 && seg[1] == "order":
		if err := allow(w, r, http.MethodPost); err != nil {
			return err
		}
		var req accountOrderRequest
		if err := decodeBody(w, r, &req); err != nil {
			return err
		}
		return a.with(w, r, func(v *vault.Vault) (int, any, error) {
			res, err := orderAccounts(v, req.Email, req.IDs)
			return http.StatusOK, res, err
		})
	case len(seg) == 2 && seg[1] == "policy":
		if err := allow(w, r, http.MethodPost); err != nil {
			return err
		}
		var req accountPolicyRequest
		if err := decodeBody(w, r, &req); err != nil {
			return err
		}
		return a.with(w, r, func(v *vault.Vault) (int, any, error) {
			res, err := setAccountPolicy(v, req.Email, req.Policy)
			return http.StatusOK, res, err
		})
	case len(seg) == 2:
		if err := allow(w, r, http.MethodDelete); err != nil {
			return err
		}
		return a.with(w, r, func(v *vault.Vault) (int, any, error) {
			if err := removeAccount(v, q.Get("email"), seg[1]); err != nil {
				return 0, nil, err
			}
			res, err := listAccounts(v, q.Get("email"))
			return http.StatusOK, res, err
		})
	}
	return apiErr(http.StatusNotFound, fmt.Errorf("no codex_proxy admin route %s %s", r.Method, r.URL.Path))
}
