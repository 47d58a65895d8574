package caddymodule

import (
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
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

// Failed-auth limits: a client address that fails this many times within
// the window is refused (429) until the window ends, so keys cannot be
// guessed at speed.
const (
	authFailLimit  = 20
	authFailWindow = time.Minute
	authMaxTracked = 100000
)

// authLimiter counts failed authentications per client address.
type authLimiter struct {
	mu      sync.Mutex
	now     func() time.Time
	entries map[string]*authFailures
}

type authFailures struct {
	count int
	start time.Time
}

func newAuthLimiter() *authLimiter {
	return &authLimiter{now: time.Now, entries: make(map[string]*authFailures)}
}

// blocked reports whether ip is refused now and for how long.
func (l *authLimiter) blocked(ip string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.entries[ip]
	if !ok {
		return 0, false
	}
	left := authFailWindow - l.now().Sub(e.start)
	if left <= 0 {
		delete(l.entries, ip)
		return 0, false
	}
	return left, e.count >= authFailLimit
}

// fail records one failed authentication from ip.
func (l *authLimiter) fail(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	e, ok := l.entries[ip]
	if !ok || now.Sub(e.start) >= authFailWindow {
		if len(l.entries) >= authMaxTracked {
			l.sweep(now)
		}
		l.entries[ip] = &authFailures{count: 1, start: now}
		return
	}
	e.count++
}

// sweep drops expired entries; called with mu held when the map is full.
func (l *authLimiter) sweep(now time.Time) {
	for ip, e := range l.entries {
		if now.Sub(e.start) >= authFailWindow {
			delete(l.entries, ip)
		}
	}
}
