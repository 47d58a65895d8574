package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/usemysub/caddy-codex-proxy/apierror"
	"github.com/usemysub/caddy-codex-proxy/codex"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// clientError turns any failure of a generation into the error its client
// should see, plus the Retry-After to announce. It is the one place where
// the vault's, the router's, the upstream's and the translator's errors
// become the client's.
func clientError(err error) (*apierror.Error, time.Duration) {
	// The vault's own verdicts come first: the upstream client wraps token
	// source failures in a generic 502, but these say what the user must do.
	var ex *vault.ExhaustedError
	switch {
	case errors.Is(err, vault.ErrRelinkNeeded):
		return apierror.RelinkNeeded(), 0
	case errors.Is(err, vault.ErrNotLinked):
		return apierror.ChatGPTNotLinked(), 0
	case errors.Is(err, vault.ErrUnavailable):
		// The shared database is down (a refresh could not take its lock
		// or store its result): the proxy, not the user, must recover.
		return apierror.DatabaseUnavailable(), 5 * time.Second
	case errors.Is(err, vault.ErrRefreshUnavailable):
		return apierror.TokenRefreshFailed(), 5 * time.Second
	case errors.As(err, &ex):
		return accountsExhausted(ex.Until)
	case errors.Is(err, vault.ErrNoSuchAccount):
		return apierror.AccountNotLinked(), 0
	}
	var ue *codex.UpstreamError
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err, ue.RetryAfter
	}
	var ae *apierror.Error // the translator's, or the upstream client's unwrapped
	if errors.As(err, &ae) {
		return ae, 0
	}
	return apierror.UpstreamFailed(), 0
}

// accountsExhausted is the 429 for a user all of whose accounts are at
// their usage limit, naming the soonest reset.
func accountsExhausted(until time.Time) (*apierror.Error, time.Duration) {
	wait := time.Until(until).Round(time.Second)
	msg := "Every ChatGPT account linked to this user has reached its usage limit."
	if !until.IsZero() {
		msg += fmt.Sprintf(" The first resets at %s (in %s).", until.UTC().Format("2006-01-02 15:04 UTC"), strings.TrimSpace(wait.String()))
	}
	return &apierror.Error{Status: http.StatusTooManyRequests, Code: codex.CodeUsageLimitReached, Message: msg}, max(wait, time.Second)
}
