package ops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// local is the [Service] over an open vault.
type local struct{ v *vault.Vault }

// Local returns the [Service] that works on v. The vault stays the
// caller's: Local never closes it, so the admin API can use one per
// request over a vault the running config holds.
func Local(v *vault.Vault) Service { return local{v} }

// userByEmail finds a user or says plainly that there is none.
func (l local) userByEmail(email string) (vault.User, error) {
	e, err := vault.NormalizeEmail(email)
	if err != nil {
		return vault.User{}, errorf(http.StatusBadRequest, "%q is not a valid email address", email)
	}
	u, err := l.v.UserByEmail(e)
	if errors.Is(err, vault.ErrNotFound) {
		return vault.User{}, &Error{Status: http.StatusNotFound, Err: fmt.Errorf("no user with email %s", e)}
	}
	return u, err
}

// Backup implements [Service].
func (l local) Backup(_ context.Context, w io.Writer) (int64, error) {
	n, err := l.v.Backup(w)
	if errors.Is(err, vault.ErrNoFileBackup) {
		// The admin answer is read by people: say what to do instead.
		return n, errorf(http.StatusBadRequest, "this vault is on PostgreSQL: back it up with pg_dump")
	}
	return n, err
}
