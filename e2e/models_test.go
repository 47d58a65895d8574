package e2e

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"

	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
)

// liveModel is a /v1/models entry with the live catalog's fields.
type liveModel struct {
	ID               string   `json:"id"`
	ContextWindow    int      `json:"context_window"`
	MaxContextWindow int      `json:"max_context_window"`
	ReasoningEfforts []string `json:"reasoning_efforts"`
	ServiceTiers     []string `json:"service_tiers"`
}

// listModels reads GET /v1/models.
func listModels(t *testing.T, base, key string) map[string]liveModel {
	t.Helper()
	req, _ := http.NewRequestWithContext(withTimeout(t), http.MethodGet, base+"/v1/models", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var doc struct{ Data []liveModel }
	if resp.StatusCode != 200 || json.Unmarshal(b, &doc) != nil {
		t.Fatalf("/v1/models: %d %s", resp.StatusCode, b)
	}
	out := map[string]liveModel{}
	for _, m := range doc.Data {
		out[m.ID] = m
	}
	return out
}

// TestModelsFollowTheLiveCatalog runs the built binary against a fake whose
// catalog has gpt-6-astra, listed only to client_version 0.160.0 and later
// and rolled out to another account only: the default announced version
// lists it with its context windows, the ultra effort and the Fast tier;
// client_version 0.99.0 does not; a request for it from an account it has
// not reached is a 400 naming a model the account has; and -ultra reaches
// the backend as the ultra effort where the model is served.
func TestModelsFollowTheLiveCatalog(t *testing.T) {
	t.Parallel()
	models := codextest.DefaultModels()
	for i := range models {
		if models[i].Slug == "gpt-6-astra" {
			models[i].Accounts = []string{"acc-bob"}
		}
	}
	fake := newFake(t, codextest.Options{Models: models})
	p := newProxy(t, fake, proxySpec{})
	key, _ := p.provision(t, "ada@example.com", p.authFile(t, fake, "acc-ada", "ada@example.com", "plus"))
	bobKey, _ := p.provision(t, "bob@example.com", p.authFile(t, fake, "acc-bob", "bob@example.com", "plus"))
	p.start(t)
	old, oldKey := startProxy(t, fake, "client_version 0.99.0")

	list := listModels(t, p.httpURL, key)
	a, ok := list["gpt-6-astra"]
	if !ok || a.ContextWindow != 400000 || a.MaxContextWindow != 1000000 || !slices.Contains(a.ReasoningEfforts, "ultra") ||
		!slices.Equal(a.ServiceTiers, []string{"priority"}) {
		t.Fatalf("gpt-6-astra with the default client version: %+v (listed %v)", a, ok)
	}
	if mini := list["gpt-5.4-mini"]; mini.ContextWindow != 272000 || mini.ServiceTiers != nil {
		t.Fatalf("gpt-5.4-mini %+v", mini)
	}
	if _, ok := listModels(t, old.httpURL, oldKey)["gpt-6-astra"]; ok {
		t.Fatal("gpt-6-astra listed while announcing client_version 0.99.0")
	}
	if r := fake.RequestsTo("/models"); len(r) == 0 || !slices.ContainsFunc(r, func(q codextest.Request) bool { return q.Query.Get("client_version") == "0.99.0" }) {
		t.Fatal("the configured client_version never reached the catalog")
	}

	// ada's account has not got it yet.
	c := p.openaiClient(t, p.httpURL, key, nil)
	_, err := c.Chat.Completions.New(withTimeout(t), openai.ChatCompletionNewParams{Model: "gpt-6-astra",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Code != "model_not_supported" || apiErr.Param != "model" ||
		!strings.Contains(apiErr.Message, "'gpt-6-astra'") || !strings.Contains(apiErr.Message, "Use 'gpt-5.5'") {
		t.Fatalf("rollout refusal: %v", err)
	}

	// bob's has: -ultra is the ultra effort.
	cb := p.openaiClient(t, p.httpURL, bobKey, nil)
	if _, err := cb.Chat.Completions.New(withTimeout(t), openai.ChatCompletionNewParams{Model: "gpt-6-astra-ultra",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("ultra please")}}); err != nil {
		t.Fatalf("gpt-6-astra-ultra on an account that has it: %v", err)
	}
	reqs := fake.RequestsTo("/responses")
	last := reqs[len(reqs)-1].JSON
	reasoning, _ := last["reasoning"].(map[string]any)
	if last["model"] != "gpt-6-astra" || reasoning["effort"] != "ultra" {
		t.Fatalf("sent model %v reasoning %v", last["model"], last["reasoning"])
	}
}
