package ops

import (
	"context"
	"io"
	"net/http"
	"strings"
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

// The admin API's routes: GET shows {} when none is set, POST takes the
// JSON body (unknown fields refused), DELETE clears.
func TestSignupAdminRoutes(t *testing.T) {
	v, path := openVault(t)
	srv := adminServer(t, oneVault{path, v})
	call := func(method, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+"/codex_proxy/signup", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	if code, body := call(http.MethodGet, ""); code != http.StatusOK || body != "{}" {
		t.Fatalf("GET before: %d %s", code, body)
	}
	if code, body := call(http.MethodPost, `{"mode":"domains","domains":["a.com"]}`); code != http.StatusOK || !strings.Contains(body, `"mode":"domains","domains":["a.com"]`) {
		t.Fatalf("POST: %d %s", code, body)
	}
	if code, body := call(http.MethodPost, `{"mode":"domains"}`); code != http.StatusBadRequest || body != `{"error":"sign-up mode domains needs at least one domain"}` {
		t.Fatalf("POST without domains: %d %s", code, body)
	}
	if code, _ := call(http.MethodPost, `{"mode":"open","typo":1}`); code != http.StatusBadRequest {
		t.Fatalf("POST with an unknown field: %d", code)
	}
	if code, body := call(http.MethodGet, ""); code != http.StatusOK || !strings.Contains(body, `"by":"the operator (CLI or admin API)"`) {
		t.Fatalf("GET after: %d %s", code, body)
	}
	if code, body := call(http.MethodDelete, ""); code != http.StatusOK || body != "{}" {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	if _, ok, _ := v.SignupOverride(context.Background()); ok {
		t.Fatal("DELETE left the override")
	}
}
