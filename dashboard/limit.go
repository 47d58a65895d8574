package dashboard

import (
	"time"

	"github.com/usemysub/caddy-codex-proxy/ratelimit"
)

// Limiter scopes of the sign-in link counts.
const (
	scopeLoginIP    ratelimit.Scope = 1
	scopeLoginEmail ratelimit.Scope = 2
)

// allowLoginLink counts one sign-in link request against the client
// address (IPv6: its /64) and the email, LoginPerIP and LoginPerEmail per
// LoginWindow, so nobody can mail one inbox, or mail from one address,
// without bound. A request over either limit is refused and counted
// against neither, so a refused client does not extend its own block.
func (d *Dashboard) allowLoginLink(ip, email string) (bool, time.Duration) {
	byIP := ratelimit.AddrKey(scopeLoginIP, ip)
	byEmail := ratelimit.StringKey(scopeLoginEmail, email)
	limits := []struct {
		k     ratelimit.Key
		limit int
	}{{byIP, d.cfg.LoginPerIP}, {byEmail, d.cfg.LoginPerEmail}}
	wait := time.Duration(0)
	for _, c := range limits {
		if res := d.limiter.Peek(c.k, c.limit); !res.Allowed {
			wait = max(wait, res.RetryAfter)
		}
	}
	if wait > 0 {
		return false, wait
	}
	// Counted one after the other: when two requests race past the checks,
	// the loser of the last slot is refused here, so no mail goes out over
	// either limit (its address may have counted once more).
	for _, c := range limits {
		if res := d.limiter.Hit(c.k, c.limit, d.cfg.LoginWindow); !res.Allowed {
			return false, res.RetryAfter
		}
	}
	return true, 0
}
