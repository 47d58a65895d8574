package ops

import (
	"context"
	"io"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// Service is every operator use case on one vault. [Local] runs them on a
// vault this process has open, [Remote] through the admin API of the Caddy
// that holds it; callers cannot tell the two apart, errors included (see
// [Error] and [StatusOf]).
type Service interface {
	// ListUsers describes every user, sorted by email.
	ListUsers(ctx context.Context) (UsersResult, error)
	// GetUser describes one user.
	GetUser(ctx context.Context, email string) (UserInfo, error)
	// UpsertUser creates the user if the email is new and imports the
	// ChatGPT login of req.AuthJSON if one is given.
	UpsertUser(ctx context.Context, req UserRequest) (UserResult, error)
	// SetUserEnabled disables or re-enables a user. A disabled user keeps
	// keys and linked accounts but is refused by the API and the dashboard.
	SetUserEnabled(ctx context.Context, email string, enabled bool) (UserStateResult, error)

	// ListKeys returns a user's keys, revoked ones included.
	ListKeys(ctx context.Context, email string) (KeysResult, error)
	// CreateKey makes a key, with an optional policy, for an existing user.
	CreateKey(ctx context.Context, req KeyRequest) (CreatedKey, error)
	// RevokeKey revokes one of the user's keys; revoking twice is no error.
	RevokeKey(ctx context.Context, email, id string) (RevokeResult, error)
	// UpdateKeyPolicy changes the given policy fields of an active key.
	UpdateKeyPolicy(ctx context.Context, id string, req KeyUpdateRequest) (KeyUpdateResult, error)
	// ResetKeyUsage sets an active key's usage counters back to zero.
	ResetKeyUsage(ctx context.Context, email, id string) (KeyUpdateResult, error)

	// ListAccounts is the user's linked ChatGPT accounts in their order.
	ListAccounts(ctx context.Context, email string) (AccountsResult, error)
	// AddAccount links one more account from an auth.json document.
	AddAccount(ctx context.Context, req AccountAddRequest) (vault.Account, error)
	// RemoveAccount unlinks one account and lists those left.
	RemoveAccount(ctx context.Context, email, id string) (AccountsResult, error)
	// OrderAccounts sets the order of preference.
	OrderAccounts(ctx context.Context, req AccountOrderRequest) (AccountsResult, error)
	// SetAccountPolicy sets how the user's accounts are chosen.
	SetAccountPolicy(ctx context.Context, req AccountPolicyRequest) (AccountsResult, error)

	// GetSignup is the sign-up policy override every instance on the
	// vault applies instead of its Caddyfile's, if one is set.
	GetSignup(ctx context.Context) (SignupResult, error)
	// SetSignup sets the override (in force on every instance within a few
	// seconds, vault.Options.SettingsTTL) or, with Clear, removes it.
	SetSignup(ctx context.Context, req SignupRequest) (SignupResult, error)
	// ListAudit pages through the audit log, newest first.
	ListAudit(ctx context.Context, req AuditRequest) (AuditResult, error)

	// Backup writes a consistent copy of a bbolt vault file to w and
	// returns its size; a PostgreSQL vault fails with a 400.
	Backup(ctx context.Context, w io.Writer) (int64, error)
}

// Provision is the first-run use case: create or update the user, import
// their ChatGPT login if given, and make them a key. report sees the user
// before the key is made, so a caller can tell the operator about it even
// if the key then fails.
func Provision(ctx context.Context, s Service, req UserRequest, label string, report func(UserResult)) (CreatedKey, error) {
	res, err := s.UpsertUser(ctx, req)
	if err != nil {
		return CreatedKey{}, err
	}
	if report != nil {
		report(res)
	}
	return s.CreateKey(ctx, KeyRequest{Email: res.User.Email, Label: label})
}
