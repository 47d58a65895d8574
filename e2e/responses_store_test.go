package e2e

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/responses"

	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
)

// TestPreviousResponseIDWithOpenAIGo chains turns with previous_response_id
// through the built caddy with openai-go, over an upstream that refuses
// previous_response_id, store:true and item_reference as the real one
// does: a tool round trip whose second turn sends only the
// function_call_output, then the stored response read back, listed and
// deleted, across a restart.
func TestPreviousResponseIDWithOpenAIGo(t *testing.T) {
	t.Parallel()
	fake := newFake(t, codextest.Options{})
	p, key := startProxy(t, fake, "")
	c := p.openaiClient(t, p.httpURL, key, nil)
	tools := []responses.ToolUnionParam{{OfFunction: &responses.FunctionToolParam{
		Name: "read_file", Parameters: map[string]any{"type": "object", "properties": map[string]any{"path": map[string]any{"type": "string"}}},
	}}}

	first, err := c.Responses.New(withTimeout(t), responses.ResponseNewParams{
		Model: "gpt-5.5", Tools: tools,
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("read a.txt prev-e2e-nonce " + codextest.Marker(codextest.ScenarioReasoningToolCall))},
	})
	if err != nil {
		t.Fatal(err)
	}
	var callID string
	for _, it := range first.Output {
		if fc, ok := it.AsAny().(responses.ResponseFunctionToolCall); ok {
			callID = fc.CallID
		}
	}
	if callID == "" || !strings.HasPrefix(first.ID, "resp_") {
		t.Fatalf("first answer: %s", first.RawJSON())
	}

	out := responses.ResponseInputItemParamOfFunctionCallOutput("contents of a prev-e2e-second")
	out.OfFunctionCallOutput.CallID = openai.String(callID)
	st := c.Responses.NewStreaming(withTimeout(t), responses.ResponseNewParams{
		Model: "gpt-5.5", Tools: tools, PreviousResponseID: openai.String(first.ID),
		Input: responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{out}},
	})
	var second responses.Response
	for st.Next() {
		if ev := st.Current(); ev.Type == "response.completed" {
			second = ev.Response
		}
	}
	if err := st.Err(); err != nil || second.ID == "" {
		t.Fatalf("second turn: %v (%s)", err, second.RawJSON())
	}
	up := upstreamRequest(t, fake, "prev-e2e-second").JSON
	var kinds []string
	for _, it := range up["input"].([]any) {
		m := it.(map[string]any)
		kinds = append(kinds, m["type"].(string))
		if m["type"] == "reasoning" && m["encrypted_content"] == nil {
			t.Fatalf("reasoning replayed without its encrypted content: %v", m)
		}
	}
	if got := strings.Join(kinds, ","); got != "message,reasoning,function_call,function_call_output" {
		t.Fatalf("upstream input of the second turn = %s", got)
	}

	// A third turn on the second, plain text.
	third, err := c.Responses.New(withTimeout(t), responses.ResponseNewParams{
		Model: "gpt-5.5", PreviousResponseID: openai.String(second.ID),
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("thanks prev-e2e-third")},
	})
	if err != nil || third.Status != "completed" {
		t.Fatalf("third turn: %v", err)
	}

	// Stored responses outlive the process.
	p.stop(t)
	p.start(t)

	got, err := c.Responses.Get(withTimeout(t), first.ID, responses.ResponseGetParams{})
	if err != nil || got.ID != first.ID || len(got.Output) != len(first.Output) {
		t.Fatalf("GET the stored response: %v %s", err, got.RawJSON())
	}
	items, err := c.Responses.InputItems.List(withTimeout(t), third.ID, responses.InputItemListParams{Order: responses.InputItemListParamsOrderAsc})
	if want := 4 + len(second.Output) + 1; err != nil || len(items.Data) != want {
		t.Fatalf("input items of the third turn: %v %d", err, len(items.Data))
	}
	if err := c.Responses.Delete(withTimeout(t), first.ID); err != nil {
		t.Fatalf("DELETE: %v", err)
	}
	_, err = c.Responses.New(withTimeout(t), responses.ResponseNewParams{
		Model: "gpt-5.5", PreviousResponseID: openai.String(first.ID),
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("after delete")},
	})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound || apiErr.Code != "previous_response_not_found" {
		t.Fatalf("previous_response_id of a deleted response: %v", err)
	}
	// Another user's key sees none of it.
	otherKey, _ := p.provision(t, "other@example.com", p.authFile(t, fake, "acct-other", "other@example.com", "plus"))
	oc := p.openaiClient(t, p.httpURL, otherKey, nil)
	if _, err := oc.Responses.Get(withTimeout(t), third.ID, responses.ResponseGetParams{}); !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound {
		t.Fatalf("another user's GET of a stored response: %v", err)
	}
	_, err = oc.Responses.New(withTimeout(t), responses.ResponseNewParams{
		Model: "gpt-5.5", PreviousResponseID: openai.String(third.ID),
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("not mine")},
	})
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound || apiErr.Code != "previous_response_not_found" {
		t.Fatalf("another user's previous_response_id: %v", err)
	}
	upstreamHasNoState(t, fake)
}

// upstreamHasNoState fails t if any request the fake saw carried state.
func upstreamHasNoState(t *testing.T, fake *codextest.Server) {
	t.Helper()
	for _, r := range fake.RequestsTo("/responses") {
		b, _ := json.Marshal(r.JSON)
		if r.JSON["store"] != false || r.JSON["previous_response_id"] != nil || strings.Contains(string(b), "item_reference") {
			t.Fatalf("upstream request with state: %s", b)
		}
	}
}

// TestCompactWithOpenAIGo compacts a stored chain through the built caddy
// with openai-go's Responses.Compact: the fake's compact endpoint, which
// refuses store, stream and previous_response_id, gets the rebuilt input.
func TestCompactWithOpenAIGo(t *testing.T) {
	t.Parallel()
	fake := newFake(t, codextest.Options{})
	p, key := startProxy(t, fake, "")
	c := p.openaiClient(t, p.httpURL, key, nil)
	first, err := c.Responses.New(withTimeout(t), responses.ResponseNewParams{
		Model: "gpt-5.5", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hello compact-e2e-nonce")},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Responses.Compact(withTimeout(t), responses.ResponseCompactParams{
		Model: "gpt-5.5", PreviousResponseID: openai.String(first.ID),
	})
	if err != nil {
		t.Fatal(err)
	}
	last := got.Output[len(got.Output)-1]
	if len(got.Output) < 2 || last.Type != "compaction" {
		t.Fatalf("compact answer: %s", got.RawJSON())
	}
	reqs := fake.RequestsTo("/responses/compact")
	if len(reqs) != 1 || !strings.Contains(string(reqs[0].Body), "compact-e2e-nonce") {
		t.Fatalf("the fake's compact endpoint got %d requests", len(reqs))
	}
	upstreamHasNoState(t, fake)
}

// TestResponsesLimitsFollowReload: the responses block bounds what the
// store keeps and follows `caddy reload`: under a 2 KiB max_size a larger
// response is answered but not kept (a turn chained on it gets 404
// previous_response_not_found, and the drop is counted); after a reload
// to 1 MiB the same turn is kept and chains.
func TestResponsesLimitsFollowReload(t *testing.T) {
	t.Parallel()
	fake := newFake(t, codextest.Options{})
	p, key := startProxy(t, fake, "responses {\n\t\t\tretention 7d\n\t\t\tmax_size 2KiB\n\t\t}")
	long := strings.Repeat("a long question ", 200) // over 2 KiB stored
	// A fresh connection per request: one kept alive from before the
	// reload may be closed under the next request.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	post := func(body map[string]any) (int, map[string]any) {
		t.Helper()
		b, _ := json.Marshal(body)
		r, _ := http.NewRequestWithContext(withTimeout(t), http.MethodPost, p.httpURL+"/v1/responses", strings.NewReader(string(b)))
		r.Header.Set("Authorization", "Bearer "+key)
		r.Header.Set("Content-Type", "application/json")
		res, err := client.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(res.Body).Decode(&m)
		return res.StatusCode, m
	}
	chain := func(what string) (int, map[string]any) {
		t.Helper()
		status, first := post(map[string]any{"model": "gpt-5.5", "input": long + what})
		if status != http.StatusOK {
			t.Fatalf("%s: %d %v", what, status, first)
		}
		return post(map[string]any{"model": "gpt-5.5", "previous_response_id": first["id"], "input": "and then?"})
	}
	const dropped = "caddy_codex_proxy_stored_responses_dropped_total"

	status, m := chain("under 2KiB")
	if e, _ := m["error"].(map[string]any); status != http.StatusNotFound || e["code"] != "previous_response_not_found" {
		t.Fatalf("chained on a response over max_size: %d %v", status, m)
	}
	if got := scrape(t, p, dropped); got != 1 {
		t.Fatalf("%s = %v, want 1", dropped, got)
	}

	cfg, _ := os.ReadFile(p.caddyfile)
	if err := os.WriteFile(p.caddyfile, []byte(strings.ReplaceAll(string(cfg), "max_size 2KiB", "max_size 1MiB")), 0o600); err != nil {
		t.Fatal(err)
	}
	reload := exec.Command(p.bin, "reload", "--force", "--config", p.caddyfile, "--adapter", "caddyfile", "--address", p.admin)
	reload.Env = p.env
	if out, err := reload.CombinedOutput(); err != nil {
		t.Fatalf("reload: %v\n%s", err, out)
	}
	if status, m := chain("after the reload"); status != http.StatusOK {
		t.Fatalf("chained after the reload to 1MiB: %d %v", status, m)
	}
	if got := scrape(t, p, dropped); got != 1 {
		t.Fatalf("%s = %v after the reload, want still 1", dropped, got)
	}
}
