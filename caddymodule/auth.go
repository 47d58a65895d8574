package caddymodule

import (
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/usemysub/caddy-codex-proxy/ratelimit"
)

// apiKey returns the key a client sent: Authorization: Bearer (OpenAI SDKs),
// x-api-key or api-key (some clients send these instead).
func apiKey(r *http.Request) string {
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

// clientIP is the address Caddy resolved for the client, honouring its
// trusted_proxies setting.
func clientIP(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Failed API key attempts: an address (IPv6: its /64) that fails this
// often within the window gets 429 for its further failed attempts until
// the window ends. A valid key is always served: keys are 32 random bytes,
// so refusing them would add no protection against guessing and would lock
// out everyone behind an address one broken script shares.
const (
	authFailLimit  = 20
	authFailWindow = time.Minute
)

// scopeAuthFailure is the limiter scope of failed API key attempts.
const scopeAuthFailure ratelimit.Scope = 1

// recordAuthFailure counts one failed attempt from r's client address and
// reports whether that address is over its limit (the attempt was then
// not counted).
func (h *Handler) recordAuthFailure(r *http.Request) ratelimit.Result {
	return h.limits.api.Hit(ratelimit.AddrKey(scopeAuthFailure, clientIP(r)), authFailLimit, authFailWindow)
}
