package caddymodule

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/usemysub/caddy-codex-proxy/apierror"
	"github.com/usemysub/caddy-codex-proxy/codex"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// writeError answers with an OpenAI-shaped error body. Caddy's own error
// path would send an empty body, which clients show as "missing message".
func writeError(w http.ResponseWriter, e *apierror.Error) {
	apierror.Write(w, e)
}

// writeRetryAfter sets Retry-After in whole seconds, at least one.
func writeRetryAfter(w http.ResponseWriter, d time.Duration) {
	if d <= 0 {
		return
	}
	secs := int64((d + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
}

// clientError turns any failure into the error a client should see, plus
// the Retry-After to announce.
func clientError(err error) (*apierror.Error, time.Duration) {
	// The vault's own verdicts come first: the upstream client wraps token
	// source failures in a generic 502, but these say what the user must do.
	switch {
	case errors.Is(err, vault.ErrRelinkNeeded):
		return &apierror.Error{Status: http.StatusUnauthorized, Type: "authentication_error", Code: "relink_needed",
			Message: "your ChatGPT sign-in has expired or was revoked: re-link your ChatGPT account in the dashboard (or re-import auth.json) and retry"}, 0
	case errors.Is(err, vault.ErrNotLinked):
		return &apierror.Error{Status: http.StatusForbidden, Type: "permission_error", Code: "chatgpt_not_linked",
			Message: "no ChatGPT account is linked to this user yet: link one in the dashboard or import an auth.json"}, 0
	case errors.Is(err, vault.ErrUnavailable):
		// The shared database is down (a refresh could not take its lock
		// or store its result): the proxy, not the user, must recover.
		return &apierror.Error{Status: http.StatusServiceUnavailable, Type: "server_error", Code: "vault_unavailable",
			Message: "the proxy's database is unavailable right now; retry shortly"}, 5 * time.Second
	case errors.Is(err, vault.ErrRefreshUnavailable):
		return &apierror.Error{Status: http.StatusBadGateway, Type: "server_error", Code: "token_refresh_unavailable",
			Message: "refreshing your ChatGPT sign-in failed for now; retry shortly"}, 5 * time.Second
	}
	if e, retry, ok := routeError(err); ok {
		return e, retry
	}
	var ue *codex.UpstreamError
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err, ue.RetryAfter
	}
	var te *apierror.Error
	if errors.As(err, &te) {
		return te, 0
	}
	var ae *apierror.Error // the upstream client's, unwrapped
	if errors.As(err, &ae) {
		return ae, 0
	}
	return &apierror.Error{Status: http.StatusBadGateway, Type: "server_error", Code: "upstream_error",
		Message: "the upstream request failed"}, 0
}
