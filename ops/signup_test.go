package ops

import (
	"context"
	"net/http"
	"testing"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// TestSignup sets, reads and clears the sign-up override through both
// Services, with the same refusals (status and text), and records who
// set it: a dashboard admin by email, else the operator.
func TestSignup(t *testing.T) {
	for name, open := range impls(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s, v := open(t)
			if res, err := s.GetSignup(ctx); err != nil || res.Override != nil {
				t.Fatalf("before: %v %+v", err, res)
			}
			res, err := s.SetSignup(ctx, SignupRequest{Mode: "Domains", Domains: []string{"@Example.com", "b.org"}})
			if err != nil || res.Override == nil || res.Override.String() != "domains b.org example.com" || res.Override.By != operatorName || res.Override.Set.IsZero() {
				t.Fatalf("set: %v %+v", err, res)
			}
			// The vault itself has it: a sign-up at the domain is allowed.
			if o, ok, err := v.SignupOverride(ctx); err != nil || !ok || !o.Allows("new@example.com") || o.Allows("new@c.org") {
				t.Fatalf("vault: %v %v %+v", err, ok, o)
			}
			for _, tc := range []struct {
				req  SignupRequest
				want string
			}{
				{SignupRequest{}, "a sign-up mode is needed (open, closed or domains)"},
				{SignupRequest{Mode: "maybe"}, `unknown sign-up mode "maybe" (open, closed or domains)`},
				{SignupRequest{Mode: "domains"}, "sign-up mode domains needs at least one domain"},
				{SignupRequest{Mode: "closed", Domains: []string{"a.com"}}, `sign-up domains need mode "domains"`},
				{SignupRequest{Mode: "domains", Domains: []string{"a.com/x"}}, `"a.com/x" is not a domain`},
				{SignupRequest{Clear: true, Mode: "open"}, "clearing the sign-up policy takes no mode or domains"},
			} {
				_, err := s.SetSignup(ctx, tc.req)
				if err == nil || err.Error() != tc.want || StatusOf(err) != http.StatusBadRequest {
					t.Errorf("%+v: %v (%d), want 400 %q", tc.req, err, StatusOf(err), tc.want)
				}
			}
			if res, err := s.GetSignup(ctx); err != nil || res.Override == nil || res.Override.Mode != vault.SignupDomains {
				t.Fatalf("a refusal changed it: %v %+v", err, res)
			}
			if res, err := s.SetSignup(ctx, SignupRequest{Clear: true}); err != nil || res.Override != nil {
				t.Fatalf("clear: %v %+v", err, res)
			}
			if _, ok, err := v.SignupOverride(ctx); err != nil || ok {
				t.Fatalf("after clear the vault has one: %v %v", err, ok)
			}
		})
	}
}

// TestSignupByAdmin names the dashboard admin who set it.
func TestSignupByAdmin(t *testing.T) {
	v, _ := openVault(t)
	ctx := WithActor(context.Background(), Actor{UserID: "u-1", Email: "lead@example.com"})
	res, err := Local(v).SetSignup(ctx, SignupRequest{Mode: "open"})
	if err != nil || res.Override.By != "lead@example.com" || res.Override.Mode != vault.SignupOpen {
		t.Fatalf("%v %+v", err, res)
	}
}
