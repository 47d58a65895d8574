package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/usemysub/caddy-codex-proxy/apierror"
	"github.com/usemysub/caddy-codex-proxy/codex"
	"github.com/usemysub/caddy-codex-proxy/keypolicy"
)

// A key's service-tier policy decides the tier sent upstream, whatever the
// client asks: deny runs on the default tier, force on the Fast tier.
func TestKeyServiceTierPolicy(t *testing.T) {
	tests := []struct {
		name, policy, path, body, want string
	}{
		{"allow chat fast", "", "/v1/chat/completions", `{"model":"gpt-5.5","service_tier":"fast","messages":[{"role":"user","content":"hi"}]}`, "priority"},
		{"allow chat none", "", "/v1/chat/completions", `{"model":"gpt-5.5","messages":[{"role":"user","content":"hi"}]}`, ""},
		{"deny chat fast", keypolicy.TierDeny, "/v1/chat/completions", `{"model":"gpt-5.5","service_tier":"fast","messages":[{"role":"user","content":"hi"}]}`, ""},
		{"deny responses priority", keypolicy.TierDeny, "/v1/responses", `{"model":"gpt-5.5","service_tier":"priority","input":"hi"}`, ""},
		{"force chat none", keypolicy.TierForce, "/v1/chat/completions", `{"model":"gpt-5.5","messages":[{"role":"user","content":"hi"}]}`, "priority"},
		{"force responses default", keypolicy.TierForce, "/v1/responses", `{"model":"gpt-5.5","service_tier":"default","input":"hi"}`, "priority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.keys.key.Policy = keypolicy.Policy{ServiceTier: tt.policy}
			if got := sentTier(t, e, tt.path, tt.body); got != tt.want {
				t.Fatalf("service_tier sent %q, want %q (body %s)", got, tt.want, e.up.bodies[0])
			}
		})
	}
}

// A model's default tier from the Caddyfile (service_tier <model> priority)
// applies to requests that name none; a client's explicit tier and a key
// that denies the Fast tier win over it. The log records both the tier
// asked for and the tier sent.
func TestModelServiceTiers(t *testing.T) {
	tiers := map[string]string{"gpt-5.5": "priority", "gpt-5.4": "default"}
	tests := []struct {
		name, policy, path, body, wantSent, wantAsked string
	}{
		{"model default", "", "/v1/chat/completions", `{"model":"gpt-5.5","messages":[{"role":"user","content":"hi"}]}`, "priority", ""},
		{"model default with an effort suffix", "", "/v1/chat/completions", `{"model":"gpt-5.5-high","messages":[{"role":"user","content":"hi"}]}`, "priority", ""},
		{"model default on responses", "", "/v1/responses", `{"model":"gpt-5.5","input":"hi"}`, "priority", ""},
		{"client asks default", "", "/v1/chat/completions", `{"model":"gpt-5.5","service_tier":"default","messages":[{"role":"user","content":"hi"}]}`, "", "default"},
		{"client asks auto", "", "/v1/responses", `{"model":"gpt-5.5","service_tier":"auto","input":"hi"}`, "", "auto"},
		{"other model", "", "/v1/chat/completions", `{"model":"gpt-5.4","messages":[{"role":"user","content":"hi"}]}`, "", ""},
		{"other model asks fast", "", "/v1/chat/completions", `{"model":"gpt-5.4","service_tier":"fast","messages":[{"role":"user","content":"hi"}]}`, "priority", "fast"},
		{"deny key", keypolicy.TierDeny, "/v1/chat/completions", `{"model":"gpt-5.5","messages":[{"role":"user","content":"hi"}]}`, "", ""},
		{"unknown tier", "", "/v1/chat/completions", `{"model":"gpt-5.4","service_tier":"=HYPERLINK(\"x\")","messages":[{"role":"user","content":"hi"}]}`, "", "other"},
		{"flex", "", "/v1/responses", `{"model":"gpt-5.4","service_tier":"flex","input":"hi"}`, "", "flex"},
		{"deny key asks fast", keypolicy.TierDeny, "/v1/chat/completions", `{"model":"gpt-5.5","service_tier":"fast","messages":[{"role":"user","content":"hi"}]}`, "", "fast"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.ServiceTiers = tiers })
			e.keys.key.Policy = keypolicy.Policy{ServiceTier: tt.policy}
			if got := sentTier(t, e, tt.path, tt.body); got != tt.wantSent {
				t.Fatalf("service_tier sent %q, want %q (body %s)", got, tt.wantSent, e.up.bodies[0])
			}
			rec := e.rec.last()
			if rec.ServiceTier != tt.wantSent || rec.RequestedTier != tt.wantAsked {
				t.Fatalf("logged tier sent %q asked %q, want %q and %q", rec.ServiceTier, rec.RequestedTier, tt.wantSent, tt.wantAsked)
			}
		})
	}
}

// sentTier posts body to path and returns the service_tier of the one
// request the upstream got.
func sentTier(t *testing.T, e *env, path, body string) string {
	t.Helper()
	res, m := e.do(t, "POST", path, testKey, strings.NewReader(body))
	if res.StatusCode != 200 {
		t.Fatalf("%d %v", res.StatusCode, m)
	}
	if len(e.up.bodies) != 1 {
		t.Fatalf("sent upstream %d times", len(e.up.bodies))
	}
	var sent map[string]any
	if err := json.Unmarshal(e.up.bodies[0], &sent); err != nil {
		t.Fatal(err)
	}
	tier, _ := sent["service_tier"].(string)
	return tier
}

// The upstream's refusal of the Fast tier for a model or plan reaches each
// dialect as a 400 naming service_tier, with the upstream's words, and is
// not a reason to try another account.
func TestServiceTierRefused(t *testing.T) {
	refusal := codex.ParseUpstreamError(400, nil, []byte(`{"detail":"Unsupported service_tier: priority"}`))
	for _, tc := range []struct{ name, path, body string }{
		{"chat", "/v1/chat/completions", `{"model":"gpt-5.4-mini","service_tier":"fast","messages":[{"role":"user","content":"hi"}]}`},
		{"responses", "/v1/responses", `{"model":"gpt-5.4-mini","service_tier":"priority","input":"hi","stream":true}`},
		{"messages", "/v1/messages", messagesBody},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.accounts.accounts = []string{"acct-a", "acct-b"}
			e.keys.key.Policy = keypolicy.Policy{ServiceTier: keypolicy.TierForce}
			e.up.errs = map[string]error{"acct-a": refusal, "acct-b": refusal}
			var res *http.Response
			var msg string
			if tc.name == "messages" {
				var body string
				res, body = e.doMessages(t, tc.path, testKey, tc.body)
				if typ := anthropicError(t, body); typ != "invalid_request_error" {
					t.Fatalf("Anthropic error type %q: %s", typ, body)
				}
				msg = body
			} else {
				var m map[string]any
				res, m = e.do(t, "POST", tc.path, testKey, strings.NewReader(tc.body))
				errObj, _ := m["error"].(map[string]any)
				if errObj["code"] != apierror.CodeTierUnavailable || errObj["param"] != "service_tier" {
					t.Fatalf("error %v", m)
				}
				msg, _ = errObj["message"].(string)
			}
			if res.StatusCode != 400 {
				t.Fatalf("status %d, want 400", res.StatusCode)
			}
			if !strings.Contains(msg, "Fast tier") || !strings.Contains(msg, "Unsupported service_tier: priority") {
				t.Fatalf("message %q", msg)
			}
			if len(e.up.tried) != 1 {
				t.Fatalf("tried accounts %v: a refused tier is not a reason to fail over", e.up.tried)
			}
			if rec := e.rec.last(); rec.Status != 400 || rec.ErrorCode != apierror.CodeTierUnavailable {
				t.Fatalf("logged %d %q", rec.Status, rec.ErrorCode)
			}
		})
	}
}
