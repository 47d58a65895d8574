package ops

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// describeUser adds key and login metadata to u.
func (l local) describeUser(u vault.User) (UserInfo, error) {
	info := UserInfo{User: u}
	keys, err := l.v.ListKeys(u.ID)
	if err != nil {
		return info, err
	}
	for _, k := range keys {
		if !k.Disabled {
			info.ActiveKeys++
		}
	}
	ti, err := l.v.TokenInfo(u.ID)
	switch {
	case err == nil:
		info.ChatGPT = &ti
	case !errors.Is(err, vault.ErrNotLinked) && !errors.Is(err, vault.ErrNotFound):
		return info, err
	}
	return info, nil
}

// UpsertUser implements [Service]. The auth.json is parsed before anything
// is written, so a bad file leaves no half-made user behind.
func (l local) UpsertUser(ctx context.Context, req UserRequest) (res UserResult, err error) {
	email, err := vault.NormalizeEmail(req.Email)
	if err != nil {
		err = errorf(http.StatusBadRequest, "%q is not a valid email address", req.Email)
		l.begin(ctx, vault.AuditUserCreated, vault.AuditTarget{Email: req.Email}).end(&err)
		return res, err
	}
	var bundle vault.TokenBundle
	if len(req.AuthJSON) > 0 {
		if bundle, err = vault.ParseAuthJSON(req.AuthJSON); err != nil {
			return res, withStatus(http.StatusBadRequest, err)
		}
	}
	u, err := l.v.UserByEmail(email)
	if errors.Is(err, vault.ErrNotFound) {
		op := l.begin(ctx, vault.AuditUserCreated, vault.AuditTarget{Email: email})
		err = op.commit(func() error {
			var err error
			u, err = l.v.CreateUser(email, req.Name)
			return err
		})
		if errors.Is(err, vault.ErrEmailTaken) { // created concurrently
			u, err = l.v.UserByEmail(email)
		} else if err == nil {
			res.Created = true
			// The entry named the email only: the id is known now.
			// A second entry would say the user was created twice, so
			// the first stands; entries about the user match by email too.
		}
	}
	if err != nil {
		return res, err
	}
	if !res.Created && req.Name != "" && req.Name != u.Name {
		res.Warnings = append(res.Warnings, fmt.Sprintf("user %s already exists; the display name was not changed (the vault cannot rename users)", email))
	}
	if len(req.AuthJSON) > 0 {
		action := vault.AuditAccountLinked
		if accts, err := l.v.Accounts(u.ID); err == nil && len(accts) > 0 {
			action = vault.AuditAccountRelinked // the first account's tokens are replaced
		}
		op := l.begin(ctx, action, vault.AuditTarget{}).user(u).detail("auth.json imported with the user")
		if err := op.commit(func() error { return l.v.PutTokens(u.ID, bundle) }); err != nil {
			return res, err
		}
		res.TokensImported = true
		if bundle.Email != "" && !strings.EqualFold(bundle.Email, email) {
			res.Warnings = append(res.Warnings, fmt.Sprintf("the imported ChatGPT login belongs to %s, not %s", bundle.Email, email))
		}
	}
	res.User, err = l.describeUser(u)
	return res, err
}

// ListUsers implements [Service].
func (l local) ListUsers(context.Context) (UsersResult, error) {
	users, err := l.v.ListUsers()
	if err != nil {
		return UsersResult{}, err
	}
	res := UsersResult{Users: make([]UserInfo, 0, len(users))}
	for _, u := range users {
		info, err := l.describeUser(u)
		if err != nil {
			return res, err
		}
		res.Users = append(res.Users, info)
	}
	return res, nil
}

// GetUser implements [Service].
func (l local) GetUser(_ context.Context, email string) (UserInfo, error) {
	u, err := l.userByEmail(email)
	if err != nil {
		return UserInfo{}, err
	}
	return l.describeUser(u)
}

// SetUserEnabled implements [Service]: enabling restores the user's keys
// and dashboard sign-in at once, as nothing was deleted. An admin acting
// in the dashboard cannot disable themselves (they would lock themselves
// out of the page that enables them again).
func (l local) SetUserEnabled(ctx context.Context, email string, enabled bool) (_ UserStateResult, err error) {
	action := vault.AuditUserDisabled
	if enabled {
		action = vault.AuditUserEnabled
	}
	op := l.begin(ctx, action, vault.AuditTarget{Email: email})
	defer op.end(&err)
	u, err := l.userByEmail(email)
	if err != nil {
		return UserStateResult{}, err
	}
	op.user(u)
	if a, ok := ActorOf(ctx); ok && !enabled && a.UserID != "" && a.UserID == u.ID {
		return UserStateResult{}, errorf(http.StatusBadRequest, "%s cannot disable their own account", u.Email)
	}
	err = op.commit(func() error {
		var err error
		u, err = l.v.SetUserDisabled(u.ID, !enabled)
		return err
	})
	if err != nil {
		return UserStateResult{}, err
	}
	return UserStateResult{User: u}, nil
}
