package ops

import (
	"encoding/json"

	"github.com/usemysub/caddy-codex-proxy/keypolicy"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// The request and result types below are the admin API's JSON bodies;
// their field names are a public interface and do not change.

// UserRequest creates or updates a user (POST /codex_proxy/users).
type UserRequest struct {
	Email string `json:"email"`
	// Name is the display name given to a new user.
	Name string `json:"name,omitempty"`
	// AuthJSON is the content of a Codex CLI auth.json whose ChatGPT login
	// is imported for the user.
	AuthJSON json.RawMessage `json:"auth_json,omitempty"`
}

// UserInfo is a user with what an operator needs to know about them; it
// holds no secrets.
type UserInfo struct {
	vault.User
	// ActiveKeys counts the user's keys that are not revoked.
	ActiveKeys int `json:"active_keys"`
	// ChatGPT describes the linked ChatGPT login; nil when none is linked.
	ChatGPT *vault.TokenInfo `json:"chatgpt,omitempty"`
}

// UserResult is the outcome of [Service.UpsertUser].
type UserResult struct {
	User           UserInfo `json:"user"`
	Created        bool     `json:"created"`
	TokensImported bool     `json:"tokens_imported"`
	Warnings       []string `json:"warnings,omitempty"`
}

// UsersResult lists every user (GET /codex_proxy/users).
type UsersResult struct {
	Users []UserInfo `json:"users"`
}

// UserStateResult is a user after a disable or enable.
type UserStateResult struct {
	User vault.User `json:"user"`
}

// KeyRequest creates an API key (POST /codex_proxy/keys).
type KeyRequest struct {
	Email string `json:"email"`
	Label string `json:"label,omitempty"`
	// Policy sets policy fields by name, as the CLI flags take them
	// ({"rpm": "60", "expires": "30d"}); see [ApplyPolicy].
	Policy map[string]string `json:"policy,omitempty"`
}

// CreatedKey is a new API key. Plaintext is the only time the key is ever
// shown.
type CreatedKey struct {
	vault.Key
	Plaintext string `json:"key"`
}

// KeyView is a key as the operator sees it: its record (policy included)
// and its current usage against the policy.
type KeyView struct {
	vault.Key
	Usage *keypolicy.Status `json:"usage,omitempty"` // absent for revoked keys
}

// KeysResult lists a user's keys (GET /codex_proxy/keys).
type KeysResult struct {
	User vault.User `json:"user"`
	Keys []KeyView  `json:"keys"`
}

// RevokeResult is a key after its revocation.
type RevokeResult struct {
	Revoked vault.Key `json:"revoked"`
}

// KeyUpdateRequest changes a key's policy (POST
// /codex_proxy/keys/{id}/policy); only the fields given change.
type KeyUpdateRequest struct {
	Email  string            `json:"email"`
	Policy map[string]string `json:"policy"`
}

// KeyUpdateResult is a key after a policy change or a usage reset.
type KeyUpdateResult struct {
	Key KeyView `json:"key"`
}

// AccountsResult is a user's linked ChatGPT accounts, in their order, and
// the policy that picks one for a request.
type AccountsResult struct {
	Email    string          `json:"email"`
	Policy   string          `json:"policy"`
	Accounts []vault.Account `json:"accounts"`
}

// AccountAddRequest links one more ChatGPT account (POST
// /codex_proxy/accounts).
type AccountAddRequest struct {
	Email    string          `json:"email"`
	AuthJSON json.RawMessage `json:"auth_json"`
	Label    string          `json:"label"`
}

// AccountOrderRequest sets the order of preference of a user's accounts
// (POST /codex_proxy/accounts/order).
type AccountOrderRequest struct {
	Email string   `json:"email"`
	IDs   []string `json:"ids"`
}

// AccountPolicyRequest sets how a user's account is chosen (POST
// /codex_proxy/accounts/policy).
type AccountPolicyRequest struct {
	Email  string `json:"email"`
	Policy string `json:"policy"`
}

// VaultsResult lists the vaults a running Caddy has open (GET
// /codex_proxy/vaults).
type VaultsResult struct {
	Vaults []string `json:"vaults"`
}
