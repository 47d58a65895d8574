package codextest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func eventNames(evs []sseEvent) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.name
	}
	return out
}

func TestTextStreamShape(t *testing.T) {
	s := New(t)
	tok := s.AddAccount("acc-1", "a@example.com", "plus")
	resp := post(t, s, tok, "acc-1", validBody("ping pong"))
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, bodyString(t, resp))
	}
	for _, h := range []string{"x-request-id", "X-Codex-Primary-Used-Percent", "X-Codex-Secondary-Window-Minutes", "X-Codex-Credits-Has-Credits", "openai-model"} {
		if resp.Header.Get(h) == "" {
			t.Errorf("missing header %s", h)
		}
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Errorf("content type %q", ct)
	}
	evs := readEvents(t, resp.Body)
	want := []string{
		"response.created", "response.in_progress",
		"response.output_item.added", "response.reasoning_summary_part.added", "response.reasoning_summary_text.delta",
		"response.reasoning_summary_text.delta", "response.reasoning_summary_text.done", "response.reasoning_summary_part.done",
		"response.output_item.done",
		"response.output_item.added", "response.content_part.added",
	}
	names := eventNames(evs)
	if len(names) < len(want) || strings.Join(names[:len(want)], ",") != strings.Join(want, ",") {
		t.Fatalf("events %v", names)
	}
	var text strings.Builder
	for i, e := range evs {
		if e.data["type"] != e.name {
			t.Errorf("event %d: type %v under event %s", i, e.data["type"], e.name)
		}
		if !strings.HasPrefix(e.raw, `{"type":"`+e.name+`","sequence_number":`) {
			t.Errorf("event %d does not start with type and sequence_number: %.80s", i, e.raw)
		}
		if n, _ := e.data["sequence_number"].(float64); int(n) != i {
			t.Errorf("event %d: sequence_number %v", i, e.data["sequence_number"])
		}
		if e.name == "response.output_text.delta" {
			text.WriteString(e.data["delta"].(string))
		}
	}
	if text.String() != "You said: ping pong" {
		t.Errorf("text %q", text.String())
	}
	last := evs[len(evs)-1]
	if last.name != "response.completed" {
		t.Fatalf("last event %s", last.name)
	}
	r := last.data["response"].(map[string]any)
	if out := r["output"].([]any); len(out) != 2 {
		t.Errorf("completed output has %d items", len(out))
	}
	u := r["usage"].(map[string]any)
	if u["input_tokens"].(float64) <= 0 || u["output_tokens_details"].(map[string]any)["reasoning_tokens"].(float64) <= 0 {
		t.Errorf("usage %v", u)
	}
}

func TestScenarioSelection(t *testing.T) {
	s := New(t, WithScenario(ScenarioPlain))
	tok := s.AddAccount("acc-1", "a@example.com", "plus")
	first := func(resp *http.Response) []string {
		return eventNames(readEvents(t, resp.Body))
	}
	// Default.
	if names := first(post(t, s, tok, "acc-1", validBody("x"))); names[2] != "response.output_item.added" || len(names) != 10 {
		t.Fatalf("plain default: %v", names)
	}
	// Marker beats default.
	resp := post(t, s, tok, "acc-1", validBody("please "+Marker(ScenarioFailed)))
	if names := first(resp); names[len(names)-1] != "response.failed" {
		t.Fatalf("marker: %v", names)
	}
	// Script beats marker.
	s.SetScript(func(r Request) Scenario { return ScenarioServerError })
	if resp := post(t, s, tok, "acc-1", validBody(Marker(ScenarioFailed))); resp.StatusCode != 500 {
		t.Fatalf("script: %d", resp.StatusCode)
	}
	s.SetScript(func(r Request) Scenario { return "" })
	if resp := post(t, s, tok, "acc-1", validBody("[[scenario:nope]]")); resp.StatusCode != 400 || !strings.Contains(bodyString(t, resp), "unknown scenario") {
		t.Fatalf("unknown marker: %d", resp.StatusCode)
	}
	reqs := s.RequestsTo("/responses")
	if len(reqs) != 4 || reqs[1].Scenario != ScenarioFailed || reqs[2].Scenario != ScenarioServerError || reqs[0].Scenario != ScenarioPlain {
		t.Fatalf("recorded scenarios: %+v", reqs)
	}
	if reqs[0].JSON["model"] != "gpt-5.5" || reqs[0].Header.Get("ChatGPT-Account-ID") != "acc-1" {
		t.Fatalf("record: %+v", reqs[0])
	}
}

func TestToolCallScenarios(t *testing.T) {
	s := New(t)
	tok := s.AddAccount("acc-1", "a@example.com", "plus")
	tools := []any{
		map[string]any{"type": "function", "name": "read_file", "parameters": map[string]any{"type": "object", "properties": map[string]any{"path": map[string]any{"type": "string"}}}},
		map[string]any{"type": "function", "name": "list_dir", "parameters": map[string]any{"type": "object", "properties": map[string]any{"dir": map[string]any{"type": "string"}}}},
	}
	tests := []struct {
		sc        Scenario
		calls     int
		firstIdx  float64
		firstName string
	}{
		{ScenarioToolCall, 1, 0, "read_file"},
		{ScenarioReasoningToolCall, 1, 1, "read_file"},
		{ScenarioParallelToolCalls, 2, 0, "read_file"},
	}
	for _, tc := range tests {
		t.Run(string(tc.sc), func(t *testing.T) {
			b := validBody("a.txt " + Marker(tc.sc))
			b["tools"] = tools
			evs := readEvents(t, post(t, s, tok, "acc-1", b).Body)
			args := map[string]string{}
			var done []map[string]any
			for _, e := range evs {
				switch e.name {
				case "response.function_call_arguments.delta":
					args[e.data["item_id"].(string)] += e.data["delta"].(string)
				case "response.output_item.done":
					if it := e.data["item"].(map[string]any); it["type"] == "function_call" {
						it["output_index"] = e.data["output_index"]
						done = append(done, it)
					}
				}
			}
			if len(done) != tc.calls {
				t.Fatalf("%d calls", len(done))
			}
			if done[0]["output_index"] != tc.firstIdx || done[0]["name"] != tc.firstName {
				t.Fatalf("first call %v", done[0])
			}
			for _, d := range done {
				if args[d["id"].(string)] != d["arguments"] {
					t.Errorf("deltas %q != done %q", args[d["id"].(string)], d["arguments"])
				}
				if !strings.HasPrefix(d["call_id"].(string), "call_") {
					t.Errorf("call id %v", d["call_id"])
				}
			}
			if tc.sc == ScenarioToolCall && done[0]["arguments"] != `{"path":"a.txt"}` {
				t.Errorf("arguments %v", done[0]["arguments"])
			}
		})
	}
}

// TestToolMarkerPicksTheTool: a ToolMarker makes the tool-call scenario
// call the named tool with the marker's arguments.
func TestToolMarkerPicksTheTool(t *testing.T) {
	s := New(t)
	tok := s.AddAccount("acc-1", "a@example.com", "plus")
	b := validBody("read it " + Marker(ScenarioToolCall) + " " + ToolMarker("list_dir", `{"dir":"/tmp/x"}`))
	b["tools"] = []any{
		map[string]any{"type": "function", "name": "read_file", "parameters": map[string]any{"type": "object", "properties": map[string]any{"path": map[string]any{"type": "string"}}}},
		map[string]any{"type": "function", "name": "list_dir", "parameters": map[string]any{"type": "object", "properties": map[string]any{"dir": map[string]any{"type": "string"}}}},
	}
	for _, e := range readEvents(t, post(t, s, tok, "acc-1", b).Body) {
		if e.name != "response.output_item.done" {
			continue
		}
		if it := e.data["item"].(map[string]any); it["name"] != "list_dir" || it["arguments"] != `{"dir":"/tmp/x"}` {
			t.Fatalf("call %v", it)
		}
		return
	}
	t.Fatal("no call")
}

// TestResponseEchoesRequest: like the backend, the response object of
// created, in_progress and completed repeats the request's tools (with
// their schemas), tool_choice, reasoning, text and instructions, so a
// proxy must be able to read events as deep as the request it sent.
func TestResponseEchoesRequest(t *testing.T) {
	s := New(t)
	tok := s.AddAccount("acc-1", "a@example.com", "plus")
	tools := []any{map[string]any{"type": "function", "name": "f", "parameters": map[string]any{
		"type": "object", "properties": map[string]any{"deep": map[string]any{"type": "array", "items": map[string]any{"type": "string"}}}}}}
	b := validBody("hi")
	b["instructions"] = "Be brief."
	b["tools"] = tools
	b["tool_choice"] = "auto"
	b["text"] = map[string]any{"format": map[string]any{"type": "json_schema", "name": "x", "schema": map[string]any{"type": "object"}}}
	want, _ := json.Marshal(tools)
	seen := 0
	for _, e := range readEvents(t, post(t, s, tok, "acc-1", b).Body) {
		r, ok := e.data["response"].(map[string]any)
		if !ok {
			continue
		}
		seen++
		got, _ := json.Marshal(r["tools"])
		if string(got) != string(want) || r["tool_choice"] != "auto" || r["instructions"] != "Be brief." || r["text"] == nil || r["store"] != false {
			t.Fatalf("%s does not echo the request: %s", e.name, e.raw)
		}
	}
	if seen != 3 {
		t.Fatalf("%d events with a response object, want created, in_progress, completed", seen)
	}
}

func TestTerminalScenarios(t *testing.T) {
	s := New(t, WithModels(DefaultModels()...))
	tok := s.AddAccount("acc-1", "a@example.com", "plus")
	last := func(sc Scenario) sseEvent {
		evs := readEvents(t, post(t, s, tok, "acc-1", validBody(Marker(sc))).Body)
		return evs[len(evs)-1]
	}
	if e := last(ScenarioFailed); e.name != "response.failed" ||
		e.data["response"].(map[string]any)["error"].(map[string]any)["code"] != "rate_limit_exceeded" {
		t.Errorf("failed: %v", e.raw)
	}
	if e := last(ScenarioErrorEvent); e.name != "error" || e.data["code"] != "server_is_overloaded" {
		t.Errorf("error event: %v", e.raw)
	}
	if e := last(ScenarioIncomplete); e.name != "response.incomplete" ||
		e.data["response"].(map[string]any)["incomplete_details"].(map[string]any)["reason"] != "max_output_tokens" {
		t.Errorf("incomplete: %v", e.raw)
	}
	if e := last(ScenarioEmptyOutput); e.name != "response.completed" || len(e.data["response"].(map[string]any)["output"].([]any)) != 0 {
		t.Errorf("empty output: %v", e.raw)
	}
}

func TestCutAndLongLine(t *testing.T) {
	s := New(t, func(o *Options) { o.LongLineBytes = 256 << 10 })
	tok := s.AddAccount("acc-1", "a@example.com", "plus")
	resp := post(t, s, tok, "acc-1", validBody(Marker(ScenarioCut)))
	b, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Fatalf("cut stream ended cleanly: %s", b)
	}
	if bytes.Contains(b, []byte("response.completed")) || !bytes.Contains(b, []byte("response.output_text.delta")) {
		t.Fatalf("cut body: %s", b)
	}
	evs := readEvents(t, post(t, s, tok, "acc-1", validBody(Marker(ScenarioLongLine))).Body)
	found := false
	for _, e := range evs {
		if e.name == "response.output_text.delta" && len(e.data["delta"].(string)) == 256<<10 {
			found = true
		}
	}
	if !found {
		t.Fatal("no long delta")
	}
}

func TestErrorScenarios(t *testing.T) {
	s := New(t)
	tok := s.AddAccount("acc-1", "a@example.com", "plus")
	tests := []struct {
		sc     Scenario
		status int
		header string
		body   string
	}{
		{ScenarioUsageLimit, 429, "X-Codex-Primary-Used-Percent", `"type":"usage_limit_reached"`},
		{ScenarioUsageNotIncluded, 429, "", `"type":"usage_not_included"`},
		{ScenarioRateLimited, 429, "Retry-After", `"code":"rate_limit_exceeded"`},
		{ScenarioUnauthorized, 401, "", `"code":"token_expired"`},
		{ScenarioServerError, 500, "", `"type":"server_error"`},
		{ScenarioCloudflare, 403, "Cf-Mitigated", "Just a moment..."},
	}
	for _, tc := range tests {
		t.Run(string(tc.sc), func(t *testing.T) {
			resp := post(t, s, tok, "acc-1", validBody(Marker(tc.sc)))
			body := bodyString(t, resp)
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.body) {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			if tc.header != "" && resp.Header.Get(tc.header) == "" {
				t.Fatalf("missing %s", tc.header)
			}
		})
	}
}

func TestSlowScenarioHonoursCancel(t *testing.T) {
	s := New(t, WithSlowDelay(time.Hour))
	tok := s.AddAccount("acc-1", "a@example.com", "plus")
	resp := post(t, s, tok, "acc-1", validBody(Marker(ScenarioSlow)))
	buf := make([]byte, 64)
	if _, err := resp.Body.Read(buf); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	resp.Body.Close() // the handler must notice and return; Close of the server would hang otherwise
	s.Close()
	if time.Since(start) > 5*time.Second {
		t.Fatal("slow handler did not stop")
	}
}

func TestGzipBodyAndPromptCache(t *testing.T) {
	s := New(t)
	tok := s.AddAccount("acc-1", "a@example.com", "plus")
	b := validBody("zipped")
	b["prompt_cache_key"] = "pck"
	raw, _ := json.Marshal(b)
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write(raw)
	zw.Close()
	session := "pck"
	send := func() map[string]any {
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/responses", bytes.NewReader(zb.Bytes()))
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		req.Header.Set("ChatGPT-Account-ID", "acc-1")
		req.Header.Set("Content-Encoding", "gzip")
		if session != "" {
			req.Header["session-id"] = []string{session}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("gzip: %d %s", resp.StatusCode, bodyString(t, resp))
		}
		evs := readEvents(t, resp.Body)
		return evs[len(evs)-1].data["response"].(map[string]any)["usage"].(map[string]any)
	}
	cached := func(u map[string]any) float64 {
		return u["input_tokens_details"].(map[string]any)["cached_tokens"].(float64)
	}
	if c := cached(send()); c != 0 {
		t.Fatalf("first request cached %v", c)
	}
	if c := cached(send()); c == 0 {
		t.Fatal("second request with the same session-id not cached")
	}
	session = "other"
	if c := cached(send()); c != 0 {
		t.Fatalf("a new session-id cached %v", c)
	}
	session = ""
	if c := cached(send()); c != 0 {
		t.Fatalf("no session-id, only prompt_cache_key, cached %v", c)
	}
	if got := s.RequestsTo("/responses")[0].JSON["prompt_cache_key"]; got != "pck" {
		t.Fatalf("recorded body not decoded: %v", got)
	}
}

func TestModelsEndpoint(t *testing.T) {
	s := New(t)
	tok := s.AddAccount("acc-1", "a@example.com", "plus")
	get := func(q string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, s.URL+"/models"+q, nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		req.Header.Set("ChatGPT-Account-ID", "acc-1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	if r := get(""); r.StatusCode != 422 {
		t.Fatalf("without client_version: %d", r.StatusCode)
	}
	r := get("?client_version=0.171.0")
	var doc struct {
		Models []struct {
			Slug       string `json:"slug"`
			Visibility string `json:"visibility"`
			Levels     []struct {
				Effort string `json:"effort"`
			} `json:"supported_reasoning_levels"`
		} `json:"models"`
	}
	if err := json.NewDecoder(r.Body).Decode(&doc); err != nil || len(doc.Models) != len(DefaultModels()) {
		t.Fatalf("catalog: %v %+v", err, doc)
	}
	// An older client is not offered the models that need a newer one.
	var old struct {
		Models []struct {
			Slug string `json:"slug"`
		} `json:"models"`
	}
	if err := json.NewDecoder(get("?client_version=0.99.0").Body).Decode(&old); err != nil || len(old.Models) != len(DefaultModels())-1 {
		t.Fatalf("catalog for 0.99.0: %v %+v", err, old)
	}
	for _, m := range old.Models {
		if m.Slug == "gpt-6-astra" {
			t.Fatal("gpt-6-astra listed to client 0.99.0")
		}
	}
	if r.Header.Get("ETag") == "" || doc.Models[0].Levels[0].Effort != "low" {
		t.Fatalf("catalog shape: %+v", doc.Models[0])
	}
}

func TestPrerendered(t *testing.T) {
	s := New(t, func(o *Options) { o.Prerendered = 5; o.NoRecord = true })
	tok := s.AddAccount("acc-1", "a@example.com", "plus")
	evs := readEvents(t, post(t, s, tok, "acc-1", []byte("not even json")).Body)
	deltas := 0
	for _, e := range evs {
		if e.name == "response.output_text.delta" {
			deltas++
		}
	}
	if deltas != 5 || evs[len(evs)-1].name != "response.completed" {
		t.Fatalf("prerendered: %d deltas, %v", deltas, eventNames(evs))
	}
	if len(s.Requests()) != 0 {
		t.Fatal("NoRecord recorded")
	}
	if r := post(t, s, Tokens{AccessToken: "bad"}, "acc-1", []byte("{}")); r.StatusCode != 401 {
		t.Fatalf("prerendered skipped auth: %d", r.StatusCode)
	}
}

func TestTransportFailureScenarios(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", tlsOn), func(t *testing.T) {
			s := New(t, func(o *Options) { o.TLS = tlsOn })
			tok := s.AddAccount("acc-1", "a@example.com", "plus")
			send := func(sc Scenario, timeout time.Duration) (*http.Response, error) {
				b, _ := json.Marshal(validBody(Marker(sc)))
				ctx, cancel := context.WithTimeout(t.Context(), timeout)
				defer cancel()
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/responses", bytes.NewReader(b))
				req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
				req.Header.Set("ChatGPT-Account-ID", "acc-1")
				resp, err := s.Client().Do(req)
				if err == nil {
					resp.Body.Close()
				}
				return resp, err
			}

			// Hung: no headers until the client gives up.
			start := time.Now()
			if resp, err := send(ScenarioHangHeaders, 300*time.Millisecond); err == nil {
				t.Fatalf("hang_headers answered %d", resp.StatusCode)
			} else if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("hang_headers: %v", err)
			}
			if el := time.Since(start); el < 250*time.Millisecond {
				t.Fatalf("hang_headers gave up after %v", el)
			}
			if n := s.GenerationCount(); n != 1 {
				t.Fatalf("%d generations counted, want 1", n)
			}
			if got := s.RequestsTo("/responses"); len(got) != 1 || got[0].Scenario != ScenarioHangHeaders || len(got[0].JSON) == 0 {
				t.Fatalf("recorded %+v", got)
			}

			// Reset: the body was read, then the connection dies.
			if resp, err := send(ScenarioResetAfterRead, 5*time.Second); err == nil {
				t.Fatalf("reset_after_read answered %d", resp.StatusCode)
			} else if errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("reset_after_read hung: %v", err)
			}
			if n := s.GenerationCount(); n != 2 {
				t.Fatalf("%d generations counted, want 2", n)
			}
			s.ResetRequests()
			if s.GenerationCount() != 0 {
				t.Fatal("ResetRequests kept the generation count")
			}
		})
	}
}

func TestHungHandlerEndsOnClose(t *testing.T) {
	s := New(t, WithScenario(ScenarioHangHeaders))
	tok := s.AddAccount("acc-1", "a@example.com", "plus")
	errc := make(chan error, 1)
	go func() {
		b, _ := json.Marshal(validBody("x"))
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/responses", bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		req.Header.Set("ChatGPT-Account-ID", "acc-1")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	for s.GenerationCount() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	s.Close() // httptest waits for handlers: a hung one would block here
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("Close took %v", el)
	}
	if err := <-errc; err == nil {
		t.Fatal("the hung request got an answer")
	}
}

// TestCompactionTrigger: a turn ending in a compaction_trigger item (a
// marker in its history notwithstanding) streams exactly one output item,
// a compaction item standing for the input before the trigger, on HTTP.
func TestCompactionTrigger(t *testing.T) {
	s := New(t)
	tok := s.AddAccount("acc-1", "a@example.com", "plus")
	b := validBody("earlier " + Marker(ScenarioToolCall))
	b["input"] = append(b["input"].([]any), map[string]any{"type": "compaction", "encrypted_content": "gAAAAB-old"},
		map[string]any{"type": "compaction_trigger"})
	evs := readEvents(t, post(t, s, tok, "acc-1", b).Body)
	var done []map[string]any
	var completed map[string]any
	for _, e := range evs {
		switch e.name {
		case "response.output_item.done":
			done = append(done, e.data["item"].(map[string]any))
		case "response.completed":
			completed = e.data["response"].(map[string]any)
		}
	}
	if len(done) != 1 || done[0]["type"] != "compaction" || !strings.HasPrefix(done[0]["encrypted_content"].(string), "gAAAAB") {
		t.Fatalf("output items %v", done)
	}
	if out := completed["output"].([]any); len(out) != 1 || out[0].(map[string]any)["id"] != done[0]["id"] {
		t.Fatalf("completed output %v", out)
	}
	if got := s.Requests(); got[len(got)-1].Scenario != ScenarioCompaction {
		t.Fatalf("scenario %q", got[len(got)-1].Scenario)
	}
}
