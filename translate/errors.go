package translate

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Error is a client-facing failure in the OpenAI error shape
// {"error":{"message","type","param","code"}}. Status is the HTTP status
// the caller should answer with when no response byte has been written yet.
// The upstream client has its own twin, apierror.Error (codex must not
// import the translator); having the same fields, the two convert into each
// other with a plain conversion, (*translate.Error)(e).
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
	b := body{Message: e.Message, Type: e.Type}
	if b.Type == "" {
		b.Type = TypeFor(e.Status)
	}
	if e.Param != "" {
		b.Param = &e.Param
	}
	if e.Code != "" {
		b.Code = &e.Code
	}
	return json.Marshal(struct {
		Error body `json:"error"`
	}{b})
}

// JSON returns the marshalled envelope; it cannot fail.
func (e *Error) JSON() []byte {
	b, _ := e.MarshalJSON()
	return b
}

// WriteError answers with e as the whole response: status, a JSON body and
// headers that keep caches and a stale Content-Length out of it. Only for
// responses nothing has been written to yet.
func WriteError(w http.ResponseWriter, e *Error) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Del("Content-Length")
	w.WriteHeader(e.Status)
	_, _ = w.Write(e.JSON())
}

// InvalidRequest builds a 400 invalid_request_error naming the offending
// parameter.
func InvalidRequest(param, code, format string, args ...any) *Error {
	return &Error{
		Status:  http.StatusBadRequest,
		Message: fmt.Sprintf(format, args...),
		Type:    "invalid_request_error",
		Param:   param,
		Code:    code,
	}
}

// TypeFor picks the OpenAI error type that matches an HTTP status.
func TypeFor(status int) string {
	switch {
	case status == http.StatusUnauthorized:
		return "authentication_error"
	case status == http.StatusForbidden:
		return "permission_error"
	case status == http.StatusNotFound:
		return "not_found_error"
	case status == http.StatusTooManyRequests:
		return "rate_limit_error"
	case status >= 500:
		return "server_error"
	default:
		return "invalid_request_error"
	}
}
