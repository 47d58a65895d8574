package codex

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/usemysub/caddy-codex-proxy/apierror"
)

// UpstreamError is a failure to show an API client: Err is the OpenAI-shaped
// error to write (status, message, code), RetryAfter the delay to announce
// in a Retry-After header (zero when none), Cause the underlying transport
// or token-source error for logs only.
//
// It is a wrapper rather than an embedding of *apierror.Error because an
// embedded field named Error would hide the Error method. errors.As finds
// both *UpstreamError and *apierror.Error in it.
type UpstreamError struct {
	Err        *apierror.Error
	RetryAfter time.Duration
	Cause      error
}

// Error returns the client-facing message.
func (e *UpstreamError) Error() string {
	if e.Err == nil {
		return "codex: upstream error"
	}
	return e.Err.Message
}

// Unwrap exposes Err and, when set, Cause to errors.Is and errors.As.
func (e *UpstreamError) Unwrap() []error {
	if e.Err == nil {
		return nil
	}
	if e.Cause != nil {
		return []error{e.Err, e.Cause}
	}
	return []error{e.Err}
}

// Codes this package puts in apierror.Error.Code besides upstream ones.
const (
	CodeUpstreamUnauthorized = "upstream_unauthorized"
	CodeUpstreamUnreachable  = "upstream_unreachable"
	CodeUpstreamError        = "upstream_error"
	CodeCloudflareChallenge  = "upstream_cloudflare_challenge"
	CodeUsageLimitReached    = "usage_limit_reached"
	CodeUsageNotIncluded     = "usage_not_included"
	CodeModelNotFound        = "model_not_found"
	CodeTokenUnavailable     = "upstream_token_unavailable"
	CodeUpstreamTimeout      = "upstream_timeout"
)

// Transport failures, found with errors.Is in an *UpstreamError's Cause.
// They say whether the request may have reached the upstream, which
// decides whether it may be sent again: a generation is re-sent only
// after ErrUnreachable.
var (
	// ErrUnreachable: no byte of the request left this machine (DNS, dial,
	// TLS handshake, or a connection that failed before the request was
	// written).
	ErrUnreachable = errors.New("codex: upstream unreachable; the request was not sent")
	// ErrHeaderTimeout: the request was sent but no response headers came
	// within the header timeout. The backend may have started the turn.
	ErrHeaderTimeout = errors.New("codex: upstream sent no response headers in time")
	// ErrConnectionLost: the connection failed after the request was (at
	// least partly) written. The backend may have started the turn.
	ErrConnectionLost = errors.New("codex: upstream connection failed after the request was sent")
)

// newErr builds an UpstreamError.
func newErr(status int, code, format string, args ...any) *UpstreamError {
	return &UpstreamError{Err: &apierror.Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}}
}

// relinkMessage is shown whenever the linked account's credentials are dead.
const relinkMessage = "Re-link your ChatGPT account with the proxy to continue."

// unauthorizedError is the 401 shown after the forced refresh did not help.
func unauthorizedError(upstreamMsg string) *UpstreamError {
	msg := "The ChatGPT account linked to this API key was rejected by the Codex upstream"
	if upstreamMsg != "" {
		msg += " (" + upstreamMsg + ")"
	}
	return newErr(http.StatusUnauthorized, CodeUpstreamUnauthorized, "%s. %s", msg, relinkMessage)
}
