package ops

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/usemysub/caddy-codex-proxy/keypolicy"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// Error is an operation's failure with the HTTP status the admin API
// answers it with. The CLI prints only its message; Remote rebuilds it
// from an error answer, so both front ends report the same status and text.
type Error struct {
	// Status is the HTTP status, 4xx for the operator's mistakes.
	Status int
	// Err is the cause; its message is what the operator reads.
	Err error
}

// Error returns the cause's message.
func (e *Error) Error() string { return e.Err.Error() }

// Unwrap returns the cause, so errors.Is sees the vault's sentinels.
func (e *Error) Unwrap() error { return e.Err }

// errorf builds an *Error from a message.
func errorf(status int, format string, a ...any) error {
	return &Error{Status: status, Err: fmt.Errorf(format, a...)}
}

// withStatus gives err a status, unless it is nil.
func withStatus(status int, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Status: status, Err: err}
}

// StatusOf is the HTTP status for err, decided in this one place: an
// *Error's own status, else the status of the vault error it wraps, else
// 500.
func StatusOf(err error) int {
	var e *Error
	switch {
	case err == nil:
		return http.StatusOK
	case errors.As(err, &e):
		return e.Status
	case errors.Is(err, vault.ErrNotFound), errors.Is(err, vault.ErrNoSuchAccount):
		return http.StatusNotFound
	case errors.Is(err, vault.ErrEmailTaken):
		return http.StatusConflict
	case errors.Is(err, keypolicy.ErrInvalid), errors.Is(err, vault.ErrBadSignup):
		return http.StatusBadRequest
	case errors.Is(err, vault.ErrClosed), errors.Is(err, vault.ErrUnavailable):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
