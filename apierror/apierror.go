// Package apierror is the one client-facing error type of the proxy: a
// failure in the OpenAI error shape {"error":{"message","type","param",
// "code"}} with the HTTP status to answer it with. Every package that says
// what a client should see uses it: the upstream client (codex), the
// translator, the relay and the /v1 pipeline (api). The type itself is
// translate.Error, since the OpenAI error object is part of that dialect
// and translate imports nothing of the project; this package names it and
// renders it on the wire.
//
// The errors the proxy emits itself, as opposed to the upstream's, are
// listed once in catalog.go.
package apierror

import (
	"net/http"
	"strconv"
	"time"

	"github.com/usemysub/caddy-codex-proxy/translate"
)

// Error is a client-facing failure: translate.Error, whose Status is the
// HTTP status to answer with when no response byte has been written yet.
type Error = translate.Error

// Write answers with e as the whole response: status, a JSON body and
// headers that keep caches and a stale Content-Length out of it. Only for
// responses nothing has been written to yet.
func Write(w http.ResponseWriter, e *Error) {
	if s, ok := w.(Shaper); ok {
		s.WriteAPIError(e)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Del("Content-Length")
	w.WriteHeader(e.Status)
	_, _ = w.Write(e.JSON())
}

// Shaper is a ResponseWriter that answers errors in its client's own
// dialect (Anthropic's, on the Messages routes): Write hands it every error
// instead of rendering the OpenAI envelope, so each part of the pipeline
// that refuses a request (authentication, admission, the relay) answers in
// the request's dialect without knowing it.
type Shaper interface {
	WriteAPIError(e *Error)
}

// SetRetryAfter sets Retry-After in whole seconds, rounded up; nothing when
// d is not positive.
func SetRetryAfter(h http.Header, d time.Duration) {
	if d <= 0 {
		return
	}
	secs := int64((d + time.Second - 1) / time.Second)
	h.Set("Retry-After", strconv.FormatInt(secs, 10))
}

// InvalidRequest builds a 400 invalid_request_error naming the offending
// parameter.
func InvalidRequest(param, code, format string, args ...any) *Error {
	return translate.InvalidRequest(param, code, format, args...)
}

// The error types OpenAI clients know.
const (
	TypeInvalidRequest = translate.TypeInvalidRequest
	TypeAuthentication = translate.TypeAuthentication
	TypePermission     = translate.TypePermission
	TypeNotFound       = translate.TypeNotFound
	TypeRateLimit      = translate.TypeRateLimit
	TypeServer         = translate.TypeServer
)

// TypeFor picks the OpenAI error type that matches an HTTP status.
func TypeFor(status int) string { return translate.TypeFor(status) }

// StatusClientGone is the status recorded for a request whose client went
// away before its answer was complete (nginx's 499). No client ever reads
// it; the request log and the metrics do.
const StatusClientGone = 499
