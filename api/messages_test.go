package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/keypolicy"
	"github.com/usemysub/caddy-codex-proxy/translate/anthropic"
)

const messagesBody = `{"model":"claude-opus-5-5","max_tokens":100,"messages":[{"role":"user","content":"Hi"}]}`

// doMessages posts body to path with x-api-key as Anthropic's SDK does.
func (e *env) doMessages(t *testing.T, path, key, body string) (*http.Response, string) {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	r.Header.Set("X-Api-Key", key)
	r.Header.Set("Anthropic-Version", "2023-06-01")
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w.Result(), w.Body.String()
}

// anthropicError reads {"type":"error","error":{"type":…}}.
func anthropicError(t *testing.T, body string) string {
	t.Helper()
	var m struct {
		Type  string `json:"type"`
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &m); err != nil || m.Type != "error" || m.Error.Message == "" {
		t.Fatalf("not an Anthropic error: %s", body)
	}
	return m.Error.Type
}

func TestMessagesRefusalsInAnthropicShape(t *testing.T) {
	for _, tc := range []struct {
		name, key, body string
		refuse          *keypolicy.Refusal
		status          int
		typ             string
		retry           bool
	}{
		{name: "wrong key", key: "cpk_wrong", body: messagesBody, status: 401, typ: "authentication_error"},
		{name: "no max_tokens", key: testKey, body: `{"model":"claude-sonnet-4","messages":[{"role":"user","content":"Hi"}]}`, status: 400, typ: "invalid_request_error"},
		{name: "budget", key: testKey, body: messagesBody, status: 429, typ: "rate_limit_error", retry: true,
			refuse: &keypolicy.Refusal{Status: 429, Type: "rate_limit_error", Code: "budget_exhausted", Message: "over budget", RetryAfter: 30 * time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.keys.refuse = tc.refuse
			res, body := e.doMessages(t, "/v1/messages?beta=true", tc.key, tc.body)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tc.status, body)
			}
			if got := anthropicError(t, body); got != tc.typ {
				t.Fatalf("error type %q, want %q", got, tc.typ)
			}
			if tc.retry && res.Header.Get("Retry-After") == "" {
				t.Fatal("no Retry-After")
			}
		})
	}
}

func TestMessagesOverloadedIs529(t *testing.T) {
	for _, body := range []string{messagesBody, strings.Replace(messagesBody, `{"model"`, `{"stream":true,"model"`, 1)} {
		e := newEnv(t)
		e.up.sse = "event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{\"error\":{\"code\":\"server_is_overloaded\",\"message\":\"busy\"}}}\n\n"
		res, got := e.doMessages(t, "/v1/messages", testKey, body)
		if res.StatusCode != 529 || anthropicError(t, got) != "overloaded_error" {
			t.Fatalf("status %d: %s", res.StatusCode, got)
		}
	}
}

func TestMessagesWrongMethodInAnthropicShape(t *testing.T) {
	e := newEnv(t)
	r := httptest.NewRequest(http.MethodGet, "/v1/messages", nil)
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	if w.Code != 405 || anthropicError(t, w.Body.String()) != "invalid_request_error" {
		t.Fatalf("%d %s", w.Code, w.Body.String())
	}
}

func TestMessagesNonStream(t *testing.T) {
	e := newEnv(t)
	res, body := e.doMessages(t, "/v1/messages", testKey, messagesBody)
	if res.StatusCode != 200 {
		t.Fatalf("status %d: %s", res.StatusCode, body)
	}
	var m struct {
		StopReason string `json:"stop_reason"`
		Content    []struct{ Type, Text string }
	}
	_ = json.Unmarshal([]byte(body), &m)
	if len(m.Content) != 1 || m.Content[0].Text != "Hello" || m.StopReason != "end_turn" {
		t.Fatalf("message: %s", body)
	}
	if !strings.Contains(body, `"model":"claude-opus-5-5"`) {
		t.Fatalf("the Claude model name is not echoed: %s", body)
	}
	if got := e.rec.last(); got.Route != "messages" || got.Model == "" {
		t.Fatalf("request log: route %q model %q", got.Route, got.Model)
	}
	if up := string(e.up.bodies[0]); !strings.Contains(up, `"model":"gpt-5.5"`) || !strings.Contains(up, `"effort":"high"`) {
		t.Fatalf("opus not mapped to gpt-5.5 at high effort: %s", up)
	}
}

func TestMessagesStream(t *testing.T) {
	e := newEnv(t)
	res, body := e.doMessages(t, "/v1/messages", testKey, strings.Replace(messagesBody, `{"model"`, `{"stream":true,"model"`, 1))
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d %s: %s", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	var names []string
	for _, line := range strings.Split(body, "\n") {
		if n, ok := strings.CutPrefix(line, "event: "); ok {
			names = append(names, n)
		}
	}
	want := "message_start content_block_start content_block_delta content_block_stop message_delta message_stop"
	if strings.Join(names, " ") != want {
		t.Fatalf("events %v, want %s", names, want)
	}
}

func TestMessagesModelAllowlistAppliesToMappedModel(t *testing.T) {
	e := newEnv(t)
	e.keys.key.Policy.Models = []string{"gpt-5.4-mini"}
	res, body := e.doMessages(t, "/v1/messages", testKey, messagesBody)
	if res.StatusCode != 403 || anthropicError(t, body) != "permission_error" {
		t.Fatalf("opus (gpt-5.5) on a gpt-5.4-mini key: %d %s", res.StatusCode, body)
	}
	res, body = e.doMessages(t, "/v1/messages", testKey, strings.Replace(messagesBody, "claude-opus-5-5", "claude-haiku-4-5", 1))
	if res.StatusCode != 200 {
		t.Fatalf("haiku (gpt-5.4-mini): %d %s", res.StatusCode, body)
	}
}

func TestCountTokens(t *testing.T) {
	e := newEnv(t)
	res, body := e.doMessages(t, "/v1/messages/count_tokens", testKey, `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"Hello there"}]}`)
	var m struct {
		InputTokens int64 `json:"input_tokens"`
	}
	if err := json.Unmarshal([]byte(body), &m); res.StatusCode != 200 || err != nil || m.InputTokens <= 0 {
		t.Fatalf("status %d: %s", res.StatusCode, body)
	}
	if e.up.calls() != 0 {
		t.Fatal("count_tokens went upstream")
	}
}

func TestModelsInAnthropicShape(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.ClaudeModels = &anthropic.ModelMap{Rules: []anthropic.Rule{{Pattern: "*sonnet*", Target: anthropic.Target{Model: "gpt-5.4", Effort: "low"}}}}
	})
	r := httptest.NewRequest(http.MethodGet, "/v1/models", nil)
	r.Header.Set("X-Api-Key", testKey)
	r.Header.Set("Anthropic-Version", "2023-06-01")
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	for _, want := range []string{`"id":"claude-opus","display_name":"claude-opus → gpt-5.5 (high)"`,
		`"id":"claude-sonnet","display_name":"claude-sonnet → gpt-5.4 (low)"`, `"has_more":false`} {
		if w.Code != 200 || !strings.Contains(w.Body.String(), want) {
			t.Fatalf("%d: no %s in %s", w.Code, want, w.Body.String())
		}
	}
}

func TestMessagesTooLargeIs413(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxBodySize = 64 })
	res, body := e.doMessages(t, "/v1/messages", testKey, strings.Replace(messagesBody, "Hi", strings.Repeat("x", 200), 1))
	if res.StatusCode != 413 || anthropicError(t, body) != "request_too_large" {
		t.Fatalf("%d %s", res.StatusCode, body)
	}
}

// TestOpenAIRoutesKeepOpenAIErrors: the Anthropic shape is only for the
// Messages routes; a chat request with an Anthropic header still gets
// OpenAI's envelope.
func TestOpenAIRoutesKeepOpenAIErrors(t *testing.T) {
	e := newEnv(t)
	res, body := e.doMessages(t, "/v1/chat/completions", "cpk_wrong", `{}`)
	if res.StatusCode != 401 || !strings.Contains(body, `"code":"invalid_api_key"`) || strings.Contains(body, `"type":"error"`) {
		t.Fatalf("%d %s", res.StatusCode, body)
	}
}
