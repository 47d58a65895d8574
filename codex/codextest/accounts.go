package codextest

import (
	"crypto/rand"
	"strings"
	"time"

	"github.com/usemysub/caddy-codex-proxy/claims"
)

// Tokens are credentials minted by the fake, shaped like the issuer's.
type Tokens struct {
	IDToken      string
	AccessToken  string
	RefreshToken string
	ExpiresIn    time.Duration
}

type account struct {
	id, email, plan, userID string
	noCodex                 bool
	requests                int
	// budget is how many more generations the account may start before
	// the backend answers usage_limit_reached; -1: unlimited.
	budget int
	// resetIn is when an exhausted budget resets, from the refusal.
	resetIn time.Duration
	// limited counts usage_limit_reached answers.
	limited int
}

type accessRec struct {
	account string
	exp     time.Time
}

type refreshRec struct {
	account string
	family  string
	used    bool
	expired bool
}

// AddAccount creates (or updates) a ChatGPT account and signs it in:
// the returned tokens are valid now, as after a fresh login.
func (s *Server) AddAccount(accountID, email, plan string) Tokens {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accounts[accountID]
	if a == nil {
		a = &account{id: accountID, userID: "user-" + accountID, budget: -1}
		s.accounts[accountID] = a
	}
	a.email, a.plan = email, plan
	return s.mintLocked(a, newID("fam_"))
}

// SetUsageBudget gives the account n more generations before the backend
// answers 429 usage_limit_reached for it, with resets_at resetIn from
// then, as the real backend does when a plan window is used up; other
// accounts are not affected. n < 0 lifts the limit.
func (s *Server) SetUsageBudget(accountID string, n int, resetIn time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.accounts[accountID]; a != nil {
		a.budget, a.resetIn = n, resetIn
	}
}

// AccountRequests reports how many generations reached the backend with
// the account's token (served or refused for its usage limit) and how
// many of them were refused with usage_limit_reached.
func (s *Server) AccountRequests(accountID string) (total, limited int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.accounts[accountID]; a != nil {
		return a.requests + a.limited, a.limited
	}
	return 0, 0
}

// AddAccountTTL is AddAccount with an access token that lives accessTTL
// instead of Options.AccessTTL; zero or negative: it has already expired
// (its exp claim is in the past), as in a login left unused for a while.
// Tokens minted by later refreshes live Options.AccessTTL.
func (s *Server) AddAccountTTL(accountID, email, plan string, accessTTL time.Duration) Tokens {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accounts[accountID]
	if a == nil {
		a = &account{id: accountID, userID: "user-" + accountID, budget: -1}
		s.accounts[accountID] = a
	}
	a.email, a.plan = email, plan
	return s.mintTTLLocked(a, newID("fam_"), accessTTL)
}

// ExpireAccess makes every access token issued so far for the account
// invalid (the backend answers 401 token_expired). The JWT exp claim is not
// changed, as with a token revoked server-side.
func (s *Server) ExpireAccess(accountID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	past := time.Now().Add(-time.Second)
	for _, r := range s.access {
		if r.account == accountID {
			r.exp = past
		}
	}
}

// ExpireRefresh makes the account's unused refresh tokens fail with
// refresh_token_expired.
func (s *Server) ExpireRefresh(accountID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.refresh {
		if r.account == accountID && !r.used {
			r.expired = true
		}
	}
}

// DenyCodex makes /oauth/authorize refuse the account with
// access_denied / missing_codex_entitlement.
func (s *Server) DenyCodex(accountID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.accounts[accountID]; a != nil {
		a.noCodex = true
	}
}

// mintLocked issues an id/access/refresh token set in a refresh family.
func (s *Server) mintLocked(a *account, family string) Tokens {
	return s.mintTTLLocked(a, family, s.opts.AccessTTL)
}

// mintTTLLocked is mintLocked with the access token's lifetime.
func (s *Server) mintTTLLocked(a *account, family string, ttl time.Duration) Tokens {
	now := time.Now()
	exp := now.Add(ttl).Truncate(time.Second)
	c := claims.Claims{AccountID: a.id, PlanType: a.plan, UserID: a.userID, Email: a.email, Expiry: exp}
	at := uniqueJWT(c)
	c.Expiry = now.Add(time.Hour).Truncate(time.Second)
	id := uniqueJWT(c)
	rt := "rt_" + rand.Text()
	s.access[at] = &accessRec{account: a.id, exp: exp}
	s.refresh[rt] = &refreshRec{account: a.id, family: family}
	return Tokens{IDToken: id, AccessToken: at, RefreshToken: rt, ExpiresIn: ttl}
}

// uniqueJWT encodes c with a random signature so that two tokens minted in
// the same second differ.
func uniqueJWT(c claims.Claims) string {
	return strings.TrimSuffix(claims.Encode(c), "sig") + rand.Text()
}

func newID(prefix string) string { return prefix + strings.ToLower(rand.Text()) }
