package anthropic

import (
	"net/http"

	"github.com/usemysub/caddy-codex-proxy/translate"
)

// StatusOverloaded is Anthropic's status for an overloaded service, which
// its clients retry.
const StatusOverloaded = 529

// Status is the HTTP status an Anthropic client expects for e: an
// overloaded upstream is 529, everything else keeps its status.
func Status(e *translate.Error) int {
	switch e.Code {
	case "server_is_overloaded", "slow_down":
		return StatusOverloaded
	}
	return e.Status
}

// ErrorType is the Anthropic error type for e.
func ErrorType(e *translate.Error) string {
	switch status := Status(e); {
	case status == StatusOverloaded:
		return "overloaded_error"
	case status == http.StatusUnauthorized:
		return "authentication_error"
	case status == http.StatusForbidden:
		return "permission_error"
	case status == http.StatusNotFound:
		return "not_found_error"
	case status == http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case status == http.StatusTooManyRequests:
		return "rate_limit_error"
	case status == http.StatusServiceUnavailable:
		return "overloaded_error"
	case status == http.StatusGatewayTimeout:
		return "timeout_error"
	case status >= 500:
		return "api_error"
	default:
		return "invalid_request_error"
	}
}

// ErrorBody renders e in Anthropic's error shape,
// {"type":"error","error":{"type":…,"message":…}}.
func ErrorBody(e *translate.Error) []byte {
	b := []byte(`{"type":"error","error":{"type":`)
	b = translate.AppendJSONString(b, ErrorType(e))
	b = append(b, `,"message":`...)
	b = translate.AppendJSONString(b, e.Message)
	return append(b, `}}`...)
}

// WriteError answers e as the whole response in Anthropic's shape. Only
// for responses nothing has been written to yet.
func WriteError(w http.ResponseWriter, e *translate.Error) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Del("Content-Length")
	if e.Code != "" {
		h.Set("X-Error-Code", e.Code)
	}
	w.WriteHeader(Status(e))
	_, _ = w.Write(ErrorBody(e))
}
