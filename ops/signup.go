package ops

import (
	"context"
	"net/http"
	"strings"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// The sign-up policy override: who may create an account by signing in,
// set once for every instance on the vault, instead of each site's
// Caddyfile `signup` (vault.SignupOverride). The admin pages, `caddy
// codex-proxy signup` and the admin API all go through SetSignup.

// SignupRequest sets or clears the override (POST /codex_proxy/signup).
type SignupRequest struct {
	// Mode is open, closed or domains; Domains are the domains of mode
	// domains ("example.com").
	Mode    string   `json:"mode,omitempty"`
	Domains []string `json:"domains,omitempty"`
	// Clear removes the override instead: each site's Caddyfile applies
	// again. It takes no mode or domains.
	Clear bool `json:"clear,omitempty"`
}

// SignupResult is the override on the vault (GET /codex_proxy/signup).
type SignupResult struct {
	// Override is the operator's policy, which every instance on the vault
	// applies instead of its Caddyfile's; nil when none is set.
	Override *vault.SignupOverride `json:"override,omitempty"`
}

// operatorName is what SignupOverride.By says for a change made without
// a dashboard admin on the context: the CLI or the admin API.
const operatorName = "the operator (CLI or admin API)"

// GetSignup implements [Service].
func (l local) GetSignup(ctx context.Context) (SignupResult, error) {
	o, ok, err := l.v.SignupOverride(ctx)
	if err != nil {
		return SignupResult{}, err
	}
	if !ok {
		return SignupResult{}, nil
	}
	return SignupResult{Override: &o}, nil
}

// SetSignup implements [Service]: it checks the policy as the Caddyfile's
// (vault.ParseSignupPolicy) and records who set it, a dashboard admin by
// email.
func (l local) SetSignup(ctx context.Context, req SignupRequest) (_ SignupResult, err error) {
	detail := strings.TrimSpace(req.Mode + " " + strings.Join(req.Domains, " "))
	if req.Clear {
		detail = "cleared: the Caddyfile's policy applies"
	}
	op := l.begin(ctx, vault.AuditSignupPolicy, vault.AuditTarget{}).detail(detail)
	defer op.end(&err)
	if req.Clear {
		if req.Mode != "" || len(req.Domains) > 0 {
			return SignupResult{}, errorf(http.StatusBadRequest, "clearing the sign-up policy takes no mode or domains")
		}
		return SignupResult{}, op.commit(func() error { return l.v.ClearSignupOverride(ctx) })
	}
	var words []string
	if req.Mode != "" {
		words = append([]string{req.Mode}, req.Domains...)
	}
	p, err := vault.ParseSignupPolicy(words)
	if err != nil {
		return SignupResult{}, withStatus(http.StatusBadRequest, err)
	}
	by := operatorName
	if a, ok := ActorOf(ctx); ok && a.Email != "" {
		by = a.Email
	}
	var o vault.SignupOverride
	err = op.commit(func() error {
		var err error
		o, err = l.v.SetSignupOverride(ctx, vault.SignupOverride{SignupPolicy: p, By: by})
		return err
	})
	if err != nil {
		return SignupResult{}, err
	}
	return SignupResult{Override: &o}, nil
}

// GetSignup implements [Service].
func (c *RemoteService) GetSignup(ctx context.Context) (res SignupResult, err error) {
	return res, c.call(ctx, http.MethodGet, "signup", nil, nil, &res)
}

// SetSignup implements [Service].
func (c *RemoteService) SetSignup(ctx context.Context, req SignupRequest) (res SignupResult, err error) {
	return res, c.call(ctx, http.MethodPost, "signup", nil, req, &res)
}
