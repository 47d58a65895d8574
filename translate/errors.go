package translate

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Error is a failure in OpenAI's error shape {"error":{"message","type",
// "param","code"}} with the HTTP status to answer it with: what the mapping
// refuses in a request, and what a stream reports when it ends in failure.
// It is part of the dialect, so it lives here, and translate stays free of
// every other package of the project; apierror names it as the proxy's one
// client-facing error type (apierror.Error is this type) and renders it.
// Status is the HTTP status to answer with when no response byte has been
// written yet; an empty Type is derived from it when the error is rendered.
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

// invalidBody answers a body that is not what the endpoint takes (400).
func invalidBody(format string, args ...any) *Error {
	return InvalidRequest("", CodeInvalidBody, format, args...)
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

// The codes the mapping emits itself; apierror's catalog lists them with
// the rest.
const (
	CodeInvalidBody = "invalid_body"
	CodeNoImage     = "image_generation_failed"
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
