package codextest

import (
	"net/http"
	"strings"
	"time"
)

// authenticate checks the bearer token and the account header like the
// backend and writes the error answer itself when they fail.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (*account, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		oaiError(http.StatusUnauthorized, "Missing bearer or basic authentication in header", "invalid_request_error", "", "").write(w)
		return nil, false
	}
	s.mu.Lock()
	rec := s.access[tok]
	var acc *account
	expired := false
	if rec != nil {
		acc = s.accounts[rec.account]
		expired = !time.Now().Before(rec.exp)
	}
	s.mu.Unlock()
	switch {
	case rec == nil || acc == nil:
		oaiError(http.StatusUnauthorized, "Could not parse your authentication token. Please try signing in again.",
			"invalid_request_error", "", "token_invalid").write(w)
		return nil, false
	case expired:
		oaiError(http.StatusUnauthorized, "Provided authentication token is expired. Please try signing in again.",
			"invalid_request_error", "", "token_expired").write(w)
		return nil, false
	}
	switch id := r.Header.Get("ChatGPT-Account-ID"); {
	case id == "":
		detail(http.StatusBadRequest, "Missing ChatGPT-Account-ID header").write(w)
		return nil, false
	case id != acc.id:
		detail(http.StatusForbidden, "The ChatGPT-Account-ID header does not match the authenticated account.").write(w)
		return nil, false
	}
	return acc, true
}
