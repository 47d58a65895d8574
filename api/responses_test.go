package api

import (
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// storeEnv is an env with a response store.
func storeEnv(t *testing.T) (*env, *fakeResponses) {
	store := &fakeResponses{}
	return newEnv(t, func(c *Config) { c.Responses = store }), store
}

// upstreamInput is the input of the n-th body sent upstream, and checks
// the body never carries what the backend refuses.
func upstreamInput(t *testing.T, e *env, n int) []map[string]any {
	t.Helper()
	var body map[string]any
	if err := json.Unmarshal(e.up.bodies[n], &body); err != nil {
		t.Fatal(err)
	}
	if _, ok := body["previous_response_id"]; ok || body["store"] != false {
		t.Fatalf("upstream body %d forwards state: %s", n, e.up.bodies[n])
	}
	var items []map[string]any
	raw, _ := json.Marshal(body["input"])
	_ = json.Unmarshal(raw, &items)
	for _, it := range items {
		if it["type"] == "item_reference" {
			t.Fatalf("upstream body %d has an item_reference: %s", n, e.up.bodies[n])
		}
	}
	return items
}

func types(items []map[string]any) string {
	var s []string
	for _, it := range items {
		s = append(s, it["type"].(string))
	}
	return strings.Join(s, ",")
}

const toolTurn = `{"model":"gpt-5.5","input":"weather in Paris?","tools":[{"type":"function","name":"get_weather","parameters":{"type":"object"}}]}`

func TestPreviousResponseIDRebuildsTheToolRoundTrip(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(map[bool]string{false: "json", true: "stream"}[stream], func(t *testing.T) {
			e, store := storeEnv(t)
			e.up.sse = toolSSE
			first := toolTurn
			if stream {
				first = strings.Replace(first, `{"model"`, `{"stream":true,"model"`, 1)
			}
			res, _ := e.do(t, "POST", "/v1/responses", testKey, strings.NewReader(first))
			if res.StatusCode != 200 {
				b, _ := io.ReadAll(res.Body)
				t.Fatalf("turn 1: %d %s", res.StatusCode, b)
			}
			if store.wait(t, 1) != 1 {
				t.Fatalf("turn 1 not stored")
			}
			e.up.sse = textSSE
			res, m := e.do(t, "POST", "/v1/responses", testKey, strings.NewReader(`{"model":"gpt-5.5","previous_response_id":"resp_t1",
				"tools":[{"type":"function","name":"get_weather","parameters":{"type":"object"}}],
				"input":[{"type":"function_call_output","call_id":"call_1","output":"sunny"}]}`))
			if res.StatusCode != 200 || m["id"] != "resp_1" {
				t.Fatalf("turn 2: %d %v", res.StatusCode, m)
			}
			in := upstreamInput(t, e, 1)
			if got := types(in); got != "message,reasoning,function_call,function_call_output" {
				t.Fatalf("turn 2 upstream input = %s; want the whole chain", got)
			}
			if in[1]["encrypted_content"] != "gAAAA-sealed-reasoning" || in[2]["call_id"] != "call_1" || in[3]["call_id"] != "call_1" {
				t.Fatalf("turn 2 upstream input lost the reasoning or the call pairing: %v", in)
			}
			// The chain goes on: turn 3 continues turn 2.
			_, _ = e.do(t, "POST", "/v1/responses", testKey, strings.NewReader(`{"model":"gpt-5.5","previous_response_id":"resp_1","input":"thanks"}`))
			if got := types(upstreamInput(t, e, 2)); got != "message,reasoning,function_call,function_call_output,message,message" {
				t.Fatalf("turn 3 upstream input = %s", got)
			}
		})
	}
}

func TestPreviousResponseNotFound(t *testing.T) {
	e, store := storeEnv(t)
	_ = store.PutResponse("someone-else", vault.StoredResponse{ID: "resp_theirs", Response: json.RawMessage(`{"id":"resp_theirs","output":[]}`)}, nil)
	for _, id := range []string{"resp_unknown", "resp_theirs"} {
		res, m := e.do(t, "POST", "/v1/responses", testKey, strings.NewReader(`{"model":"gpt-5.5","previous_response_id":"`+id+`","input":"hi"}`))
		if res.StatusCode != 404 || errorCode(t, m) != "previous_response_not_found" || m["error"].(map[string]any)["param"] != "previous_response_id" {
			t.Fatalf("%s: %d %v", id, res.StatusCode, m)
		}
	}
	if len(e.up.bodies) != 0 {
		t.Fatal("a request with an unknown previous_response_id went upstream")
	}
}

func TestStoreFalseIsNotKept(t *testing.T) {
	e, store := storeEnv(t)
	res, _ := e.do(t, "POST", "/v1/responses", testKey, strings.NewReader(`{"model":"gpt-5.5","store":false,"input":"hi"}`))
	if res.StatusCode != 200 || store.count() != 0 {
		t.Fatalf("store:false: %d, %d stored", res.StatusCode, store.count())
	}
	res, m := e.do(t, "GET", "/v1/responses/resp_1", testKey, nil)
	if res.StatusCode != 404 || errorCode(t, m) != "response_not_found" {
		t.Fatalf("GET of an unstored response: %d %v", res.StatusCode, m)
	}
}

func TestItemReferenceIsResolved(t *testing.T) {
	e, _ := storeEnv(t)
	e.up.sse = toolSSE
	e.do(t, "POST", "/v1/responses", testKey, strings.NewReader(toolTurn))
	e.up.sse = textSSE
	// As the Vercel AI SDK sends it with store:true: references to the
	// reasoning and the call, then the output, without previous_response_id.
	res, m := e.do(t, "POST", "/v1/responses", testKey, strings.NewReader(`{"model":"gpt-5.5",
		"tools":[{"type":"function","name":"get_weather","parameters":{"type":"object"}}],
		"input":[{"role":"user","content":[{"type":"input_text","text":"weather in Paris?"}]},
		{"type":"item_reference","id":"rs_t1"},{"type":"item_reference","id":"fc_t1"},
		{"type":"function_call_output","call_id":"call_1","output":"sunny"}]}`))
	if res.StatusCode != 200 {
		t.Fatalf("%d %v", res.StatusCode, m)
	}
	in := upstreamInput(t, e, 1)
	if got := types(in); got != "message,reasoning,function_call,function_call_output" || in[1]["encrypted_content"] != "gAAAA-sealed-reasoning" {
		t.Fatalf("upstream input = %s: %v", got, in)
	}
	res, m = e.do(t, "POST", "/v1/responses", testKey, strings.NewReader(`{"model":"gpt-5.5","input":[{"type":"item_reference","id":"rs_nope"}]}`))
	if res.StatusCode != 404 || errorCode(t, m) != "item_not_found" {
		t.Fatalf("unknown item_reference: %d %v", res.StatusCode, m)
	}
}

func TestStoredResponseEndpoints(t *testing.T) {
	e, _ := storeEnv(t)
	e.do(t, "POST", "/v1/responses", testKey, strings.NewReader(`{"model":"gpt-5.5","input":[
		{"id":"msg_mine","role":"user","content":"one"},{"role":"user","content":"two"},{"role":"user","content":"three"}]}`))
	res, m := e.do(t, "GET", "/v1/responses/resp_1", testKey, nil)
	if res.StatusCode != 200 || m["id"] != "resp_1" || m["store"] != true || len(m["output"].([]any)) != 1 {
		t.Fatalf("GET: %d %v", res.StatusCode, m)
	}
	res, m = e.do(t, "GET", "/v1/responses/resp_1/input_items?order=asc&limit=2", testKey, nil)
	if res.StatusCode != 200 || m["object"] != "list" || m["first_id"] != "msg_mine" || m["has_more"] != true || len(m["data"].([]any)) != 2 {
		t.Fatalf("input_items page 1: %d %v", res.StatusCode, m)
	}
	res, m = e.do(t, "GET", "/v1/responses/resp_1/input_items?order=asc&limit=2&after="+m["last_id"].(string), testKey, nil)
	if res.StatusCode != 200 || m["has_more"] != false || len(m["data"].([]any)) != 1 {
		t.Fatalf("input_items page 2: %d %v", res.StatusCode, m)
	}
	_, m = e.do(t, "GET", "/v1/responses/resp_1/input_items", testKey, nil)
	if m["last_id"] != "msg_mine" {
		t.Fatalf("input_items default order is desc: %v", m)
	}
	res, _ = e.do(t, "POST", "/v1/responses/resp_1", testKey, nil)
	if res.StatusCode != 405 || !strings.Contains(res.Header.Get("Allow"), "DELETE") {
		t.Fatalf("POST on a stored response: %d %v", res.StatusCode, res.Header)
	}
	res, m = e.do(t, "DELETE", "/v1/responses/resp_1", testKey, nil)
	if res.StatusCode != 200 || m["id"] != "resp_1" || m["object"] != "response" || m["deleted"] != true {
		t.Fatalf("DELETE: %d %v", res.StatusCode, m)
	}
	for _, method := range []string{"GET", "DELETE"} {
		if res, m := e.do(t, method, "/v1/responses/resp_1", testKey, nil); res.StatusCode != 404 || errorCode(t, m) != "response_not_found" {
			t.Fatalf("%s after DELETE: %d %v", method, res.StatusCode, m)
		}
	}
	if res, _ := e.do(t, "GET", "/v1/responses/resp_1", "", nil); res.StatusCode != 401 {
		t.Fatalf("GET without a key: %d", res.StatusCode)
	}
}

func TestCompactSendsTheChainToTheCompactEndpoint(t *testing.T) {
	e, _ := storeEnv(t)
	e.up.sse = toolSSE
	e.do(t, "POST", "/v1/responses", testKey, strings.NewReader(toolTurn))
	res, m := e.do(t, "POST", "/v1/responses/compact", testKey, strings.NewReader(`{"model":"gpt-5.5","previous_response_id":"resp_t1",
		"input":[{"type":"function_call_output","call_id":"call_1","output":"sunny"}],"store":true,"stream":true}`))
	if res.StatusCode != 200 {
		t.Fatalf("compact: %d %v", res.StatusCode, m)
	}
	out, _ := m["output"].([]any)
	if len(out) != 2 || out[1].(map[string]any)["type"] != "compaction" {
		t.Fatalf("compact answer: %v", m)
	}
	var body map[string]any
	if err := json.Unmarshal(e.up.bodies[1], &body); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"store", "stream", "include", "previous_response_id"} {
		if _, ok := body[k]; ok {
			t.Fatalf("compact body carries %s: %s", k, e.up.bodies[1])
		}
	}
	raw, _ := json.Marshal(body["input"])
	var items []map[string]any
	_ = json.Unmarshal(raw, &items)
	if got := types(items); got != "message,reasoning,function_call,function_call_output" {
		t.Fatalf("compact input = %s", got)
	}
	if rec := e.rec.last(); rec.Route != "responses_compact" || rec.InputTokens != 30 || rec.OutputTokens != 8 {
		t.Fatalf("request log of the compaction: %+v", rec)
	}
	// A compaction item goes back through /v1/responses as it came.
	e.up.sse = textSSE
	res, m = e.do(t, "POST", "/v1/responses", testKey, strings.NewReader(`{"model":"gpt-5.5","input":[
		{"type":"compaction","id":"cmp_1","encrypted_content":"gAAAA-compacted"},{"role":"user","content":"go on"}]}`))
	if res.StatusCode != 200 || !strings.Contains(string(e.up.bodies[2]), `"encrypted_content":"gAAAA-compacted"`) {
		t.Fatalf("compaction item on /v1/responses: %d %v %s", res.StatusCode, m, e.up.bodies[2])
	}
}

func TestPreviousResponseIDWithBadInput(t *testing.T) {
	e, store := storeEnv(t)
	_ = store.PutResponse("u1", vault.StoredResponse{ID: "resp_0", Response: json.RawMessage(`{"id":"resp_0","output":[]}`)}, nil)
	res, m := e.do(t, "POST", "/v1/responses", testKey, strings.NewReader(`{"model":"gpt-5.5","previous_response_id":"resp_0","input":42}`))
	if res.StatusCode != 400 || errorCode(t, m) != "invalid_value" || m["error"].(map[string]any)["param"] != "input" {
		t.Fatalf("%d %v", res.StatusCode, m)
	}
}
