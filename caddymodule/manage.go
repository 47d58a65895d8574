package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/usemysub/caddy-codex-proxy/keypolicy"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// This file holds the user and key operations behind both the admin API
// (admin.go, on the vault a running Caddy holds) and the CLI (command.go,
// on the vault file when Caddy is stopped), so the two cannot drift apart.
// Errors are caddy.APIError values: the admin API sends their status, the
// CLI prints their message.

// userRequest is the body of POST /codex_proxy/users.
type userRequest struct {
	Email string `json:"email"`
	// Name is the display name given to a new user.
	Name string `json:"name,omitempty"`
	// AuthJSON is the content of a Codex CLI auth.json whose ChatGPT login
	// is imported for the user.
	AuthJSON json.RawMessage `json:"auth_json,omitempty"`
}

// userInfo is a user with what an operator needs to know about them; it
// holds no secrets.
type userInfo struct {
	vault.User
	// ActiveKeys counts the user's keys that are not revoked.
	ActiveKeys int `json:"active_keys"`
	// ChatGPT describes the linked ChatGPT login; nil when none is linked.
	ChatGPT *vault.TokenInfo `json:"chatgpt,omitempty"`
}

// userResult answers POST /codex_proxy/users.
type userResult struct {
	User           userInfo `json:"user"`
	Created        bool     `json:"created"`
	TokensImported bool     `json:"tokens_imported"`
	Warnings       []string `json:"warnings,omitempty"`
}

// usersResult answers GET /codex_proxy/users.
type usersResult struct {
	Users []userInfo `json:"users"`
}

// userStateResult answers the disable and enable routes.
type userStateResult struct {
	User vault.User `json:"user"`
}

// keyRequest is the body of POST /codex_proxy/keys.
type keyRequest struct {
	Email string `json:"email"`
	Label string `json:"label,omitempty"`
	// Policy sets policy fields by name, as the CLI flags take them
	// ({"rpm": "60", "expires": "30d"}); see manage_policy.go.
	Policy map[string]string `json:"policy,omitempty"`
}

// createdKey answers POST /codex_proxy/keys. Plaintext is the only time the
// key is ever shown.
type createdKey struct {
	vault.Key
	Plaintext string `json:"key"`
}

// keysResult answers GET /codex_proxy/keys.
type keysResult struct {
	User vault.User `json:"user"`
	Keys []keyView  `json:"keys"`
}

// revokeResult answers a key revocation.
type revokeResult struct {
	Revoked vault.Key `json:"revoked"`
}

// vaultsResult answers GET /codex_proxy/vaults.
type vaultsResult struct {
	Vaults []string `json:"vaults"`
}

// apiErr builds the error type both front ends understand.
func apiErr(status int, err error) error {
	return caddy.APIError{HTTPStatus: status, Err: err}
}

// vaultErr maps vault errors to HTTP statuses.
func vaultErr(err error) error {
	var ae caddy.APIError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ae):
		return err
	case errors.Is(err, vault.ErrNotFound):
		return apiErr(http.StatusNotFound, err)
	case errors.Is(err, vault.ErrEmailTaken):
		return apiErr(http.StatusConflict, err)
	case errors.Is(err, vault.ErrClosed), errors.Is(err, vault.ErrUnavailable):
		return apiErr(http.StatusServiceUnavailable, err)
	default:
		return apiErr(http.StatusInternalServerError, err)
	}
}

// userByEmail finds a user or says plainly that there is none.
func userByEmail(v *vault.Vault, email string) (vault.User, error) {
	e, err := vault.NormalizeEmail(email)
	if err != nil {
		return vault.User{}, apiErr(http.StatusBadRequest, fmt.Errorf("%q is not a valid email address", email))
	}
	u, err := v.UserByEmail(e)
	if errors.Is(err, vault.ErrNotFound) {
		return vault.User{}, apiErr(http.StatusNotFound, fmt.Errorf("no user with email %s", e))
	}
	return u, vaultErr(err)
}

// describeUser adds key and login metadata to u.
func describeUser(v *vault.Vault, u vault.User) (userInfo, error) {
	info := userInfo{User: u}
	keys, err := v.ListKeys(u.ID)
	if err != nil {
		return info, vaultErr(err)
	}
	for _, k := range keys {
		if !k.Disabled {
			info.ActiveKeys++
		}
	}
	ti, err := v.TokenInfo(u.ID)
	switch {
	case err == nil:
		info.ChatGPT = &ti
	case !errors.Is(err, vault.ErrNotLinked) && !errors.Is(err, vault.ErrNotFound):
		return info, vaultErr(err)
	}
	return info, nil
}

// upsertUser creates the user if the email is new and imports the ChatGPT
// login from req.AuthJSON if one is given. The auth.json is parsed before
// anything is written, so a bad file leaves no half-made user behind.
func upsertUser(v *vault.Vault, req userRequest) (userResult, error) {
	var res userResult
	email, err := vault.NormalizeEmail(req.Email)
	if err != nil {
		return res, apiErr(http.StatusBadRequest, fmt.Errorf("%q is not a valid email address", req.Email))
	}
	var bundle vault.TokenBundle
	if len(req.AuthJSON) > 0 {
		if bundle, err = vault.ParseAuthJSON(req.AuthJSON); err != nil {
			return res, apiErr(http.StatusBadRequest, err)
		}
	}
	u, err := v.UserByEmail(email)
	if errors.Is(err, vault.ErrNotFound) {
		u, err = v.CreateUser(email, req.Name)
		if errors.Is(err, vault.ErrEmailTaken) { // created concurrently
			u, err = v.UserByEmail(email)
		} else if err == nil {
			res.Created = true
		}
	}
	if err != nil {
		return res, vaultErr(err)
	}
	if !res.Created && req.Name != "" && req.Name != u.Name {
		res.Warnings = append(res.Warnings, fmt.Sprintf("user %s already exists; the display name was not changed (the vault cannot rename users)", email))
	}
	if len(req.AuthJSON) > 0 {
		if err := v.PutTokens(u.ID, bundle); err != nil {
			return res, vaultErr(err)
		}
		res.TokensImported = true
		if bundle.Email != "" && !strings.EqualFold(bundle.Email, email) {
			res.Warnings = append(res.Warnings, fmt.Sprintf("the imported ChatGPT login belongs to %s, not %s", bundle.Email, email))
		}
	}
	res.User, err = describeUser(v, u)
	return res, err
}

// listUsers describes every user, sorted by email.
func listUsers(v *vault.Vault) (usersResult, error) {
	users, err := v.ListUsers()
	if err != nil {
		return usersResult{}, vaultErr(err)
	}
	res := usersResult{Users: make([]userInfo, 0, len(users))}
	for _, u := range users {
		info, err := describeUser(v, u)
		if err != nil {
			return res, err
		}
		res.Users = append(res.Users, info)
	}
	return res, nil
}

// getUser describes one user.
func getUser(v *vault.Vault, email string) (userInfo, error) {
	u, err := userByEmail(v, email)
	if err != nil {
		return userInfo{}, err
	}
	return describeUser(v, u)
}

// setUserEnabled disables or re-enables a user. A disabled user keeps keys
// and linked account but is refused by the API and the dashboard at once;
// enabling restores both.
func setUserEnabled(v *vault.Vault, email string, enabled bool) (userStateResult, error) {
	u, err := userByEmail(v, email)
	if err != nil {
		return userStateResult{}, err
	}
	u, err = v.SetUserDisabled(u.ID, !enabled)
	if err != nil {
		return userStateResult{}, vaultErr(err)
	}
	return userStateResult{User: u}, nil
}

// listKeys returns a user's keys, revoked ones included.
func listKeys(v *vault.Vault, email string) (keysResult, error) {
	u, err := userByEmail(v, email)
	if err != nil {
		return keysResult{}, err
	}
	keys, err := v.ListKeys(u.ID)
	if err != nil {
		return keysResult{}, vaultErr(err)
	}
	return keysResult{User: u, Keys: viewKeys(v, keys)}, nil
}

// createKey makes a key for an existing user.
func createKey(v *vault.Vault, req keyRequest) (createdKey, error) {
	u, err := userByEmail(v, req.Email)
	if err != nil {
		return createdKey{}, err
	}
	policy, err := applyPolicy(keypolicy.Policy{}, req.Policy)
	if err != nil {
		return createdKey{}, err
	}
	if policy.Account != "" {
		if err := checkAccount(v, u.ID, policy.Account); err != nil {
			return createdKey{}, err
		}
	}
	plaintext, k, err := v.CreateKeyWithPolicy(u.ID, req.Label, policy)
	if err != nil {
		return createdKey{}, vaultErr(err)
	}
	return createdKey{Key: k, Plaintext: plaintext}, nil
}

// revokeKey revokes one of the user's keys; revoking a revoked key is not
// an error.
func revokeKey(v *vault.Vault, email, id string) (revokeResult, error) {
	u, err := userByEmail(v, email)
	if err != nil {
		return revokeResult{}, err
	}
	if err := v.RevokeKey(u.ID, id); err != nil {
		if errors.Is(err, vault.ErrNotFound) {
			return revokeResult{}, apiErr(http.StatusNotFound, fmt.Errorf("%s has no key with id %s", u.Email, id))
		}
		return revokeResult{}, vaultErr(err)
	}
	keys, err := v.ListKeys(u.ID)
	if err != nil {
		return revokeResult{}, vaultErr(err)
	}
	for _, k := range keys {
		if k.ID == id {
			return revokeResult{Revoked: k}, nil
		}
	}
	return revokeResult{}, apiErr(http.StatusInternalServerError, fmt.Errorf("key %s vanished after revocation", id))
}
