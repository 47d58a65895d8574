package api

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/usemysub/caddy-codex-proxy/apierror"
	"github.com/usemysub/caddy-codex-proxy/ratelimit"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// Failed API key attempts: an address (IPv6: its /64) that fails this
// often within the window gets 429 for its further failed attempts until
// the window ends. A valid key is always served: keys are 32 random bytes,
// so refusing them would add no protection against guessing and would lock
// out everyone behind an address one broken script shares.
const (
	AuthFailLimit  = 20
	AuthFailWindow = time.Minute
)

// ScopeAuthFailure is the limiter scope of failed API key attempts in the
// Config.FailedAuth table (a table may be shared with other scopes).
const ScopeAuthFailure ratelimit.Scope = 1

// authenticate checks the API key and sets req.user and req.key. A failed
// attempt answers 401, or 429 once its address has failed too often; a
// disabled user's key 403; a vault failure 503.
func (h *Handler) authenticate(w http.ResponseWriter, r *http.Request, req *request) (outcome, bool) {
	key, user, err := h.cfg.Keys.VerifyKey(APIKey(r))
	redactKeyHeaders(r)
	if err == nil {
		req.user, req.key = user, key
		return outcome{}, true
	}
	switch {
	case errors.Is(err, vault.ErrUserDisabled):
		// A genuine key of a disabled account: no guess, nothing to count.
		return h.reject(w, apierror.AccountDisabled(), 0), false
	case errors.Is(err, vault.ErrKeyInvalid):
		if res := h.recordAuthFailure(r); !res.Allowed {
			return h.reject(w, apierror.TooManyFailedAttempts(), res.RetryAfter), false
		}
		return h.reject(w, apierror.InvalidAPIKey(), 0), false
	default:
		// The vault failed, not the client: not counted against its address,
		// and a 5xx, so clients retry instead of dropping a good key.
		h.log.Error("verifying an API key failed", zap.String("request_id", req.id), zap.Error(err))
		return h.reject(w, apierror.KeyCheckUnavailable(), 5*time.Second), false
	}
}

// recordAuthFailure counts one failed attempt from r's client address and
// reports whether that address is over its limit (the attempt was then
// not counted).
func (h *Handler) recordAuthFailure(r *http.Request) ratelimit.Result {
	if h.cfg.FailedAuth == nil {
		return ratelimit.Result{Allowed: true}
	}
	return h.cfg.FailedAuth.Hit(ratelimit.AddrKey(ScopeAuthFailure, h.cfg.ClientIP(r)), AuthFailLimit, AuthFailWindow)
}

// APIKey returns the key a client sent: Authorization: Bearer (OpenAI
// SDKs), x-api-key or api-key (some clients send these instead).
func APIKey(r *http.Request) string {
	if a := r.Header.Get("Authorization"); a != "" {
		if scheme, rest, ok := strings.Cut(a, " "); ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(rest)
		}
	}
	if k := r.Header.Get("X-Api-Key"); k != "" {
		return strings.TrimSpace(k)
	}
	return strings.TrimSpace(r.Header.Get("Api-Key"))
}

// redactKeyHeaders masks the headers some clients carry keys in. Caddy's
// access log redacts Authorization by itself but not these, and it logs the
// same header map after the handler ran.
func redactKeyHeaders(r *http.Request) {
	for _, name := range []string{"X-Api-Key", "Api-Key"} {
		if _, ok := r.Header[name]; ok {
			r.Header[name] = []string{"REDACTED"}
		}
	}
}
