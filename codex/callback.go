package codex

import (
	"errors"
	"net/url"
	"strings"
)

// maxCallbackLen bounds pasted input; real callback URLs are ~1 KiB.
const maxCallbackLen = 16 << 10

// CallbackError is an error the issuer reported in the callback query
// (error=…&error_description=…) instead of a code.
type CallbackError struct {
	// Code is the error parameter, e.g. access_denied.
	Code string
	// Description is error_description, sanitized.
	Description string
}

// MissingEntitlement reports whether the workspace has no Codex access
// (access_denied with missing_codex_entitlement, docs/protocol.md#authorize).
func (e *CallbackError) MissingEntitlement() bool {
	return strings.Contains(e.Description, "missing_codex_entitlement") || e.Code == "missing_codex_entitlement"
}

// Error explains the failure to the person who signed in.
func (e *CallbackError) Error() string {
	switch {
	case e.MissingEntitlement():
		return "ChatGPT sign-in refused: Codex is not enabled for this workspace (missing_codex_entitlement). " +
			"Ask the workspace admin to enable Codex, or sign in with another account."
	case e.Code == "access_denied":
		msg := "ChatGPT sign-in was cancelled or denied (access_denied)"
		if e.Description != "" {
			msg += ": " + e.Description
		}
		return msg + ". Start the sign-in again."
	default:
		msg := "ChatGPT sign-in failed (" + e.Code + ")"
		if e.Description != "" {
			msg += ": " + e.Description
		}
		return msg + "."
	}
}

// ParseCallback extracts code and state from what a user pasted after a
// headless login (docs/protocol.md#callback-paste): the full redirect URL, a path with query, a
// host-relative URL without scheme, or the bare query string. An error
// parameter becomes a *CallbackError. The caller must compare state.
func ParseCallback(pasted string) (code, state string, err error) {
	s := strings.TrimSpace(pasted)
	s = strings.Trim(s, "\"'<>` \t\r\n")
	if s == "" {
		return "", "", errors.New("nothing was pasted: paste the full address of the page the browser was sent to after signing in")
	}
	if len(s) > maxCallbackLen {
		return "", "", errors.New("the pasted text is too long to be a sign-in callback address")
	}
	raw := s
	if i := strings.IndexByte(s, '?'); i >= 0 {
		raw = s[i+1:]
	} else if strings.Contains(s, "://") || strings.HasPrefix(s, "/") {
		u, perr := url.Parse(s)
		if perr != nil {
			return "", "", errors.New("the pasted text is not a valid address")
		}
		raw = u.RawQuery
		if raw == "" && strings.Contains(u.Fragment, "=") {
			raw = u.Fragment
		}
	}
	if i := strings.IndexByte(raw, '#'); i >= 0 {
		raw = raw[:i]
	}
	raw = strings.TrimLeft(raw, "?&")
	q, perr := url.ParseQuery(raw)
	if perr != nil {
		return "", "", errors.New("the pasted address has a malformed query string")
	}
	if e := q.Get("error"); e != "" {
		return "", "", &CallbackError{Code: truncate(clean(e), 100), Description: truncate(clean(q.Get("error_description")), 300)}
	}
	code, state = q.Get("code"), q.Get("state")
	if code == "" {
		return "", "", errors.New("the pasted address has no code parameter: paste the full address of the page the browser was sent to after signing in")
	}
	if state == "" {
		return "", "", errors.New("the pasted address has no state parameter: paste the full address, not only the code")
	}
	if !opaqueParam(code) || !opaqueParam(state) {
		return "", "", errors.New("the pasted address has a malformed code or state")
	}
	return code, state, nil
}

// opaqueParam accepts printable ASCII without spaces.
func opaqueParam(s string) bool {
	if len(s) > 4096 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}
