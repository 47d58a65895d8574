package api

import (
	"encoding/json"
	"strings"
	"testing"

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
			res, m := e.do(t, "POST", tt.path, testKey, strings.NewReader(tt.body))
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
			got, _ := sent["service_tier"].(string)
			if got != tt.want {
				t.Fatalf("service_tier sent %q, want %q (body %s)", got, tt.want, e.up.bodies[0])
			}
		})
	}
}
