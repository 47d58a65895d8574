package caddymodule

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// service_tier repeats, once per model, reaches the pipeline's options and
// their JSON form (what a reload hands the next config).
func TestServiceTierCaddyfile(t *testing.T) {
	var h Handler
	err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("codex_proxy {\nservice_tier gpt-5.5 priority\nservice_tier gpt-5.4-mini default\n}"))
	if err != nil {
		t.Fatal(err)
	}
	if h.ServiceTiers["gpt-5.5"] != "priority" || h.ServiceTiers["gpt-5.4-mini"] != "default" {
		t.Fatalf("ServiceTiers %v", h.ServiceTiers)
	}
	raw, err := json.Marshal(&h)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"service_tiers":{"gpt-5.4-mini":"default","gpt-5.5":"priority"}`) {
		t.Fatalf("JSON %s", raw)
	}
	var back Handler
	if err := json.Unmarshal(raw, &back); err != nil || back.ServiceTiers["gpt-5.5"] != "priority" {
		t.Fatalf("round trip: %v %v", err, back.ServiceTiers)
	}
	for body, want := range map[string]string{
		"service_tier gpt-5.5 priority\nservice_tier gpt-5.5 default": "more than once",
		"service_tier gpt-5.5 flex":                                   "priority (the Fast tier) or default",
	} {
		var h Handler
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("codex_proxy {\n" + body + "\n}"))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err %v, want %q", body, err, want)
		}
	}
}
