// Package apierror is the one client-facing error type of the proxy: a
// failure in the OpenAI error shape {"error":{"message","type","param",
// "code"}} with the HTTP status to answer it with. Every package that says
// what a client should see uses it: the upstream client (codex), the
// translator, the relay and the /v1 pipeline (api). It imports nothing of
// the project, so the upstream client (codex) can speak it without knowing
// any client dialect (translate), and the translator can refuse a request
// in it.
//
// The errors the proxy emits itself, as opposed to the upstream's, are
// listed once in catalog.go.
package apierror

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Error is a client-facing failure in OpenAI's error shape: what the
// mapping refuses in a request, what a stream reports when it ends in
// failure, what the upstream client and the pipeline answer. Status is the
// HTTP status to answer with when no response byte has been written yet; an
// empty Type is derived from it when the error is rendered.
type Error struct {
	Status  int
	Message string
	Type    string
	Param   string
	Code    string
}

// Error implements the error interface with the client-facing message.
func (e *Error) Error() string { return e.Message }

// MarshalJSON renders the OpenAI error envelope. Param and Code are null when
// empty, as OpenAI does; an empty Type is derived from Status.
func (e *Error) MarshalJSON() ([]byte, error) {
	type body struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	}
	b := body{Message: e.Message, Type: e.TypeOrDefault()}
	if e.Param != "" {
		b.Param = &e.Param
	}
	if e.Code != "" {
		b.Code = &e.Code
	}
	return json.Marshal(map[string]body{"error": b})
}

// TypeOrDefault is Type, or the type that matches Status when it is empty.
func (e *Error) TypeOrDefault() string {
	if e.Type != "" {
		return e.Type
	}
	return TypeFor(e.Status)
}

// JSON returns the marshalled envelope; it cannot fail.
func (e *Error) JSON() []byte {
	b, _ := e.MarshalJSON()
	return b
}

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
	return &Error{
		Status:  http.StatusBadRequest,
		Message: fmt.Sprintf(format, args...),
		Type:    TypeInvalidRequest,
		Param:   param,
		Code:    code,
	}
}

// The error types OpenAI clients know.
const (
	TypeInvalidRequest = "invalid_request_error"
	TypeAuthentication = "authentication_error"
	TypePermission     = "permission_error"
	TypeNotFound       = "not_found_error"
	TypeRateLimit      = "rate_limit_error"
	TypeServer         = "server_error"
)

// TypeFor picks the OpenAI error type that matches an HTTP status.
func TypeFor(status int) string {
	switch {
	case status == http.StatusUnauthorized:
		return TypeAuthentication
	case status == http.StatusForbidden:
		return TypePermission
	case status == http.StatusNotFound:
		return TypeNotFound
	case status == http.StatusTooManyRequests:
		return TypeRateLimit
	case status >= 500:
		return TypeServer
	default:
		return TypeInvalidRequest
	}
}

// StatusClientGone is the status recorded for a request whose client went
// away before its answer was complete (nginx's 499). No client ever reads
// it; the request log and the metrics do.
const StatusClientGone = 499
