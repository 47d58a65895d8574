package translate

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// rqFuzzOptions derives translation options from a fuzzer byte so the
// option-dependent paths are explored too.
func rqFuzzOptions(sel uint8) RequestOptions {
	var o RequestOptions
	if sel&1 != 0 {
		o.SystemMode = SystemAsInstructions
	}
	if sel&2 != 0 {
		o.ReasoningSummary = "none"
	}
	if sel&4 != 0 {
		o.CacheKeySalt = "salt"
	}
	return o
}

// rqFuzzSeeds adds the table and golden requests as seeds.
func rqFuzzSeeds(f *testing.F, cases ...[]rqCase) {
	for _, cs := range cases {
		for i, c := range cs {
			f.Add([]byte(c.body), uint8(i))
		}
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "request", "*.json"))
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		var g rqGolden
		if err := json.Unmarshal(raw, &g); err != nil {
			f.Fatal(err)
		}
		f.Add([]byte(g.Request), uint8(0))
	}
}

// rqFuzzCheck asserts the translator contract for any input.
func rqFuzzCheck(t *testing.T, fn rqTranslator, body []byte, sel uint8) {
	m, err := fn(body, rqFuzzOptions(sel))
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("error %T is not *Error: %v", err, err)
		}
		if e.Status != 400 {
			t.Fatalf("status %d, want 400", e.Status)
		}
		if !json.Valid(e.JSON()) {
			t.Fatalf("invalid error JSON: %s", e.JSON())
		}
		if m != nil {
			t.Fatal("non-nil Mapped with an error")
		}
		return
	}
	if err := checkUpstreamBody(m.Body); err != nil {
		t.Fatalf("%v\ninput: %q\nbody: %s", err, body, m.Body)
	}
	for short := range m.ToolNames {
		if len(short) > MaxToolNameLen {
			t.Fatalf("shortened name too long: %q", short)
		}
	}
	if m.PromptCacheKey == "" {
		t.Fatal("no prompt cache key")
	}
	if m.Images != UsesImageTool(m.Body) {
		t.Fatalf("Images %v, but the upstream body %s", m.Images, m.Body)
	}
	if !strings.Contains(string(m.Body), `"prompt_cache_key":`) {
		t.Fatal("prompt cache key missing from body")
	}
}

func FuzzChatToResponses(f *testing.F) {
	rqFuzzSeeds(f, chatCases, responsesCases)
	f.Add(rqBenchConversation(8), uint8(5))
	f.Fuzz(func(t *testing.T, body []byte, sel uint8) {
		rqFuzzCheck(t, ChatToResponses, body, sel)
	})
}

func FuzzNormalizeResponses(f *testing.F) {
	rqFuzzSeeds(f, responsesCases, chatCases)
	f.Fuzz(func(t *testing.T, body []byte, sel uint8) {
		rqFuzzCheck(t, NormalizeResponses, body, sel)
	})
}

// rqBenchConversation builds a realistic agent conversation: a long system
// prompt, rounds of user question, assistant text with two tool calls and
// their outputs, and a final user turn, with eight tools declared. rounds=12
// gives 50 messages.
func rqBenchConversation(rounds int) []byte {
	type fn struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Parameters  json.RawMessage `json:"parameters"`
	}
	type tool struct {
		Type     string `json:"type"`
		Function fn     `json:"function"`
	}
	type call struct {
		ID       string `json:"id"`
		Type     string `json:"type"`
		Function struct {
			Name      string `json:"name"`
			Arguments string `json:"arguments"`
		} `json:"function"`
	}
	type msg struct {
		Role       string `json:"role"`
		Content    any    `json:"content"`
		ToolCalls  []call `json:"tool_calls,omitempty"`
		ToolCallID string `json:"tool_call_id,omitempty"`
	}
	schema := json.RawMessage(`{"type":"object","properties":{"path":{"type":"string","description":"File path relative to the workspace root"},"line":{"type":"integer"},"recursive":{"type":"boolean"}},"required":["path"]}`)
	var tools []tool
	for i := range 8 {
		tools = append(tools, tool{Type: "function", Function: fn{
			Name:        fmt.Sprintf("tool_%d_%s", i, []string{"read", "write", "grep", "run", "list", "patch", "search", "fetch"}[i]),
			Description: strings.Repeat("Performs an operation on the workspace. ", 4),
			Parameters:  schema,
		}})
	}
	msgs := []msg{{Role: "system", Content: strings.Repeat("You are a careful coding agent working in a Go repository. Follow the user's instructions. ", 25)}}
	for r := range rounds {
		msgs = append(msgs, msg{Role: "user", Content: fmt.Sprintf("Step %d: please inspect the package and fix the failing test in file_%d.go. Explain briefly.", r, r)})
		a := msg{Role: "assistant", Content: fmt.Sprintf("I'll read file_%d.go and run the tests.", r)}
		for k := range 2 {
			var c call
			c.ID = fmt.Sprintf("call_%d_%d", r, k)
			c.Type = "function"
			c.Function.Name = tools[(r+k)%len(tools)].Function.Name
			c.Function.Arguments = fmt.Sprintf(`{"path":"pkg/file_%d.go","line":%d,"recursive":false}`, r, k*10)
			a.ToolCalls = append(a.ToolCalls, c)
		}
		msgs = append(msgs, a)
		for k := range 2 {
			msgs = append(msgs, msg{Role: "tool", ToolCallID: fmt.Sprintf("call_%d_%d", r, k),
				Content: strings.Repeat(fmt.Sprintf("line %d: func Example() error { return nil } // <ok> & done\n", k), 12)})
		}
	}
	msgs = append(msgs, msg{Role: "user", Content: "Thanks. Now summarise all the changes."})
	body, err := json.Marshal(map[string]any{
		"model":            "gpt-5.5-high",
		"messages":         msgs,
		"tools":            tools,
		"tool_choice":      "auto",
		"stream":           true,
		"stream_options":   map[string]bool{"include_usage": true},
		"temperature":      0.2,
		"max_tokens":       4096,
		"reasoning_effort": "medium",
	})
	if err != nil {
		panic(err)
	}
	return body
}

func TestBenchConversationShape(t *testing.T) {
	body := rqBenchConversation(12)
	var top struct {
		Messages []json.RawMessage `json:"messages"`
	}
	if err := json.Unmarshal(body, &top); err != nil || len(top.Messages) != 50 {
		t.Fatalf("%d messages, %v", len(top.Messages), err)
	}
	m := rqMust(t, ChatToResponses, string(body), RequestOptions{})
	var out struct {
		Input []json.RawMessage `json:"input"`
	}
	if err := json.Unmarshal(m.Body, &out); err != nil {
		t.Fatal(err)
	}
	// 1 system + 12×(user + assistant text + 2 calls + 2 outputs) + 1 user.
	if len(out.Input) != 1+12*6+1 {
		t.Fatalf("%d input items", len(out.Input))
	}
}

func BenchmarkChatToResponses50(b *testing.B) {
	body := rqBenchConversation(12)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ChatToResponses(body, RequestOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkChatToResponses500 checks that cost grows linearly with history
// length: compare its ns/op with BenchmarkChatToResponses50 ×10.
func BenchmarkChatToResponses500(b *testing.B) {
	body := rqBenchConversation(125)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ChatToResponses(body, RequestOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkChatToResponses150KB and 300KB are the sizes Cline and Codex
// send every turn late in a session; ns/op should grow linearly from
// BenchmarkChatToResponses50 (35 KB).
func BenchmarkChatToResponses150KB(b *testing.B) { benchChatSize(b, 150<<10) }

func BenchmarkChatToResponses300KB(b *testing.B) { benchChatSize(b, 300<<10) }

// benchChatSize maps a conversation of the bench shape grown to about size
// bytes.
func benchChatSize(b *testing.B, size int) {
	rounds := 12
	body := rqBenchConversation(rounds)
	for len(body) < size {
		rounds += max(1, rounds*(size-len(body))/len(body))
		body = rqBenchConversation(rounds)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ChatToResponses(body, RequestOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNormalizeResponses, 150KB and 300KB normalise the /v1/responses
// body the chat benchmarks of the same conversation size map to, so the two
// front doors compare size for size (35 KB, 150 KB, 300 KB of chat input);
// ns/op should grow linearly with size.
func BenchmarkNormalizeResponses(b *testing.B) { benchNormalizeSize(b, 0) }

func BenchmarkNormalizeResponses150KB(b *testing.B) { benchNormalizeSize(b, 150<<10) }

func BenchmarkNormalizeResponses300KB(b *testing.B) { benchNormalizeSize(b, 300<<10) }

// benchNormalizeSize normalises the Responses body of a bench conversation
// grown to about size bytes of chat input (0: the 12-round, 35 KB one).
func benchNormalizeSize(b *testing.B, size int) {
	rounds := 12
	chat := rqBenchConversation(rounds)
	for len(chat) < size {
		rounds += max(1, rounds*(size-len(chat))/len(chat))
		chat = rqBenchConversation(rounds)
	}
	m, err := ChatToResponses(chat, RequestOptions{})
	if err != nil {
		b.Fatal(err)
	}
	body := m.Body
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NormalizeResponses(body, RequestOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzChatHistory builds structurally valid chat histories from the fuzz
// input (roles, tool calls with ids from a small pool so that duplicates,
// orphans and missing outputs occur) and checks that every accepted history
// yields paired calls and outputs, and every rejected one a 400.
func FuzzChatHistory(f *testing.F) {
	f.Add([]byte{0, 2, 3, 3, 0, 2, 4})
	f.Add([]byte{1, 0, 2, 2, 3, 5, 6, 7})
	f.Add([]byte{0, 6, 7, 0, 2, 0, 3})
	f.Fuzz(func(t *testing.T, script []byte) {
		if len(script) > 64 {
			script = script[:64]
		}
		ids := []string{"a", "b", "c", ""}
		var msgs []any
		for i := 0; i < len(script); i++ {
			op, arg := script[i]%8, script[i]/8
			switch op {
			case 0:
				msgs = append(msgs, map[string]any{"role": "user", "content": "u"})
			case 1:
				msgs = append(msgs, map[string]any{"role": "system", "content": "s"})
			case 2, 3: // assistant with 0..3 tool calls
				var calls []any
				for k := range int(arg % 4) {
					calls = append(calls, map[string]any{"id": ids[(int(arg)+k)%len(ids)], "type": "function",
						"function": map[string]any{"name": "f", "arguments": "{}"}})
				}
				m := map[string]any{"role": "assistant", "tool_calls": calls}
				if op == 3 {
					m["content"] = "text"
				}
				msgs = append(msgs, m)
			case 4, 5:
				msgs = append(msgs, map[string]any{"role": "tool", "tool_call_id": ids[int(arg)%len(ids)], "content": "out"})
			case 6:
				msgs = append(msgs, map[string]any{"role": "assistant", "function_call": map[string]any{"name": "g", "arguments": "{}"}})
			case 7:
				msgs = append(msgs, map[string]any{"role": "function", "name": "g", "content": "r"})
			}
		}
		if len(msgs) == 0 {
			return
		}
		body, err := json.Marshal(map[string]any{"model": "gpt-5.5", "messages": msgs,
			"tools": []any{map[string]any{"type": "function", "function": map[string]any{"name": "f"}}}})
		if err != nil {
			t.Fatal(err)
		}
		rqFuzzCheck(t, ChatToResponses, body, 0)
	})
}
