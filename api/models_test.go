package api

import (
	"context"
	"strings"
	"testing"

	"github.com/usemysub/caddy-codex-proxy/apierror"
	"github.com/usemysub/caddy-codex-proxy/codex"
)

// fakeModels is an account's live catalog.
type fakeModels struct{ models []codex.RemoteModel }

func (f *fakeModels) Get(context.Context, string, codex.TokenSource) ([]codex.RemoteModel, error) {
	return f.models, nil
}

// astraCatalog is a live catalog with the newer fields on one model.
func astraCatalog() *fakeModels {
	return &fakeModels{models: []codex.RemoteModel{
		{Slug: "gpt-6-astra", DisplayName: "GPT-6 Astra", Efforts: []string{"low", "medium", "high", "xhigh", "ultra"}, DefaultEffort: "medium",
			ContextWindow: 400000, MaxContextWindow: 1000000, ServiceTiers: []string{"priority"}, DefaultServiceTier: "default"},
		{Slug: "gpt-5.5", Efforts: []string{"low", "medium"}},
	}}
}

// /v1/models lists the live catalog's models first, each with what the
// catalog says of it: context windows, efforts (ultra included), tiers.
func TestModelsLiveCatalogFields(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Models = astraCatalog() })
	_, m := e.do(t, "GET", "/v1/models", testKey, nil)
	data, _ := m["data"].([]any)
	if len(data) < 2 {
		t.Fatalf("list %v", m)
	}
	a := data[0].(map[string]any)
	efforts, _ := a["reasoning_efforts"].([]any)
	tiers, _ := a["service_tiers"].([]any)
	if a["id"] != "gpt-6-astra" || a["context_window"] != 400000.0 || a["max_context_window"] != 1000000.0 || len(efforts) != 5 || efforts[4] != "ultra" ||
		a["default_reasoning_effort"] != "medium" || len(tiers) != 1 || tiers[0] != "priority" || a["default_service_tier"] != "default" || a["object"] != "model" {
		t.Fatalf("gpt-6-astra %v", a)
	}
	if g := data[1].(map[string]any); g["id"] != "gpt-5.5" || g["context_window"] != nil || g["service_tiers"] != nil {
		t.Fatalf("gpt-5.5 %v", g)
	}
	// A model only the static catalog knows carries none of them.
	for _, d := range data[2:] {
		if o := d.(map[string]any); o["reasoning_efforts"] != nil {
			t.Fatalf("static entry with live fields: %v", o)
		}
	}
	if _, one := e.do(t, "GET", "/v1/models/gpt-6-astra", testKey, nil); one["max_context_window"] != 1000000.0 {
		t.Fatalf("one model %v", one)
	}
}

// A model the account's catalog lists but the upstream refuses for the
// account (a phased rollout) is a 400 naming it and a model the account
// has; one the catalog does not list stays a 404.
func TestModelRolloutRefusal(t *testing.T) {
	refusal := func(model string) error {
		return codex.ParseUpstreamError(400, nil, []byte(`{"detail":"The '`+model+`' model is not supported when using Codex with a ChatGPT account."}`))
	}
	e := newEnv(t, func(c *Config) { c.Models = astraCatalog() })
	e.up.errs = map[string]error{"acct-a": refusal("gpt-6-astra")}
	res, m := e.do(t, "POST", "/v1/chat/completions", testKey, strings.NewReader(`{"model":"gpt-6-astra-high","messages":[{"role":"user","content":"hi"}]}`))
	errObj, _ := m["error"].(map[string]any)
	msg, _ := errObj["message"].(string)
	if res.StatusCode != 400 || errObj["code"] != apierror.CodeModelNotSupported || errObj["param"] != "model" ||
		!strings.Contains(msg, "'gpt-6-astra-high'") || !strings.Contains(msg, "Use 'gpt-5.5'") {
		t.Fatalf("%d %v", res.StatusCode, m)
	}
	// In the Anthropic dialect too.
	e.up.errs = map[string]error{"acct-a": refusal("gpt-5.5")}
	res, body := e.doMessages(t, "/v1/messages", testKey, `{"model":"gpt-5.5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`)
	if res.StatusCode != 400 || anthropicError(t, body) != "invalid_request_error" || !strings.Contains(body, "Use 'gpt-6-astra'") {
		t.Fatalf("messages: %d %s", res.StatusCode, body)
	}
	// Not in the catalog: the model does not exist for the plan.
	e.up.errs = map[string]error{"acct-a": refusal("gpt-9")}
	res, m = e.do(t, "POST", "/v1/chat/completions", testKey, strings.NewReader(`{"model":"gpt-9","messages":[{"role":"user","content":"hi"}]}`))
	if res.StatusCode != 404 || errorCode(t, m) != "model_not_found" {
		t.Fatalf("unlisted: %d %v", res.StatusCode, m)
	}
}
