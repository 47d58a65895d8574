package codex

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// RefreshError is a failed token refresh. The vault checks Permanent
// (through errors.As on interface{ Permanent() bool }) to decide between
// retrying later and asking the user to link the account again.
type RefreshError struct {
	// Code is the token endpoint's error code (refresh_token_reused, …);
	// empty when none was given.
	Code string
	// Status is the HTTP status; zero when the endpoint was not reached.
	Status int
	// Message is the endpoint's description, safe to log.
	Message string
	// Err is the transport error when the endpoint was not reached.
	Err error
}

// permanentRefreshCodes are the codes after which the refresh token can
// never work again (docs/protocol.md#refresh-permanent).
var permanentRefreshCodes = map[string]bool{
	"refresh_token_reused":      true,
	"refresh_token_expired":     true,
	"refresh_token_invalidated": true,
}

// Permanent reports whether the user must sign in again: the token was
// reused, expired or revoked, or the endpoint answered 401.
func (e *RefreshError) Permanent() bool {
	return permanentRefreshCodes[e.Code] || e.Status == http.StatusUnauthorized
}

// Error describes the failure without any token.
func (e *RefreshError) Error() string {
	return "codex: token refresh failed: " + e.describe()
}

// Unwrap returns the transport error, if any.
func (e *RefreshError) Unwrap() error { return e.Err }

func (e *RefreshError) describe() string {
	var parts []string
	if e.Status != 0 {
		parts = append(parts, fmt.Sprintf("HTTP %d", e.Status))
	}
	if e.Code != "" {
		parts = append(parts, e.Code)
	}
	if e.Message != "" {
		parts = append(parts, e.Message)
	}
	if e.Err != nil {
		parts = append(parts, e.Err.Error())
	}
	if len(parts) == 0 {
		return "unknown error"
	}
	return strings.Join(parts, ": ")
}

// parseTokenError reads the token endpoint's error bodies:
// {"error":"code","error_description":"…"}, {"error":{"code","message"}}
// and a top-level {"code"} (docs/protocol.md#code-exchange); other bodies give a bare status.
func parseTokenError(status int, body []byte) *RefreshError {
	e := &RefreshError{Status: status}
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		if s := clean(string(body)); s != "" && !strings.HasPrefix(s, "<") {
			e.Message = truncate(s, 200)
		}
		return e
	}
	if raw, ok := top["error"]; ok {
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) == nil {
			e.Code = firstNonEmpty(rawString(obj["code"]), rawString(obj["type"]))
			e.Message = firstNonEmpty(rawString(obj["message"]), rawString(obj["error_description"]))
		} else {
			e.Code = rawString(raw)
		}
	}
	if e.Code == "" {
		e.Code = rawString(top["code"])
	}
	if e.Message == "" {
		e.Message = firstNonEmpty(rawString(top["error_description"]), rawString(top["message"]))
	}
	e.Code = truncate(clean(e.Code), 100)
	e.Message = truncate(clean(e.Message), 300)
	return e
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
