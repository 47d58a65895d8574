package translate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

var update = flag.Bool("update", false, "rewrite golden files")

// longToolName is what a client declared; the fixtures carry the shortened
// name the upstream saw.
const longToolName = "mcp__filesystem__read_text_file_with_a_very_long_name_that_exceeds_the_sixty_four_limit"

// longCallID is a client's call id over the 64-character limit; the
// long_call_id fixture carries the short id the upstream saw.
var longCallID = "tooluse_" + strings.Repeat("Ab3-", 20)

type wantCall struct{ id, name, args string }

// streamCase is one golden fixture and what a client must see from it.
type streamCase struct {
	name      string
	content   string
	reasoning string
	calls     []wantCall
	finish    string
	errCode   string // set when the stream must fail
	errStatus int
	usage     Usage
}

var streamCases = []streamCase{
	{name: "text", content: "Hello, world! \"quoted\" \\ backslash é ✓ \u2028 line", finish: "stop",
		usage: Usage{InputTokens: 120, CachedTokens: 64, OutputTokens: 40, ReasoningTokens: 28, TotalTokens: 160}},
	{name: "reasoning_text", content: "Hi there.", reasoning: "**Answering** greeting\n\nSecond thought", finish: "stop"},
	{name: "tool_call", calls: []wantCall{{"call_abc", "read_file", `{"path":"a.txt"}`}}, finish: "tool_calls",
		usage: Usage{InputTokens: 300, OutputTokens: 20, TotalTokens: 320}},
	{name: "parallel_tool_calls", finish: "tool_calls", calls: []wantCall{
		{"call_1", "get_weather", `{"city":"Paris"}`},
		{"call_2", "get_weather", `{"city":"Berlin"}`},
		{"call_3", "get_time", `{"tz":"CET"}`},
	}},
	{name: "reasoning_tool_call", reasoning: "Need to read the file.", content: "Let me look.", finish: "tool_calls",
		calls: []wantCall{{"call_xyz", longToolName, `{"path":"/etc/hosts"}`}}},
	{name: "image_input", content: "The image shows a red square.", finish: "stop"},
	{name: "json_schema", content: `{"name":"Ada","age":36}`, finish: "stop"},
	{name: "failure_midstream", errCode: "rate_limit_exceeded", errStatus: 429},
	{name: "error_event", errCode: "server_is_overloaded", errStatus: 503},
	{name: "incomplete", content: "This answer is cut", finish: "length"},
	{name: "cut_stream", errCode: "stream_incomplete", errStatus: 502},
	{name: "done_only_call", calls: []wantCall{{"call_9", "search", `{"q":"x"}`}}, finish: "tool_calls"},
	{name: "text_only_in_done", content: "Only in done.", finish: "stop"},
	{name: "crlf", content: "CRLF framing", finish: "stop"},
	{name: "comments_no_event_names", content: "keepalive", finish: "stop"},
	{name: "long_call_id", calls: []wantCall{{longCallID, "search", `{"q":"x"}`}}, finish: "tool_calls"},
}

func fixtureOptions(includeUsage bool) ChatStreamOptions {
	return ChatStreamOptions{
		ID: "chatcmpl-test", Model: "gpt-5.5-high", Created: 1700000000, IncludeUsage: includeUsage,
		ToolNames: ToolNames{"mcp__filesystem__read_file_1a2b3c4d": longToolName},
		CallIDs:   CallIDs{ShortenCallID(longCallID): longCallID},
	}
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "stream", name+".sse"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// translateAll runs a whole upstream stream through a ChatStream, the way the
// handler does: event by event, then Finish.
func translateAll(t testing.TB, r io.Reader, opts ChatStreamOptions) ([]byte, StreamResult) {
	s := NewChatStream(opts)
	rd := NewReader(r)
	var out []byte
	for {
		ev, err := rd.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("reader: %v", err)
			}
			break
		}
		out = s.Translate(out, ev)
	}
	out = s.Finish(out)
	return out, s.Result()
}

func TestChatStreamGolden(t *testing.T) {
	for _, tc := range streamCases {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := translateAll(t, bytes.NewReader(readFixture(t, tc.name)), fixtureOptions(true))
			path := filepath.Join("testdata", "stream", tc.name+".chat.golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("output differs from %s:\n got: %s\nwant: %s", path, got, want)
			}
		})
	}
}

// TestChatStreamSplitAtEveryByte feeds each fixture cut in two at every byte
// and one byte at a time: framing must not depend on how reads fall.
func TestChatStreamSplitAtEveryByte(t *testing.T) {
	for _, tc := range streamCases {
		t.Run(tc.name, func(t *testing.T) {
			data := readFixture(t, tc.name)
			want, _ := translateAll(t, bytes.NewReader(data), fixtureOptions(true))
			for k := 0; k <= len(data); k++ {
				r := io.MultiReader(iotest.HalfReader(bytes.NewReader(data[:k])), bytes.NewReader(data[k:]))
				got, _ := translateAll(t, r, fixtureOptions(true))
				if !bytes.Equal(got, want) {
					t.Fatalf("split at %d: output differs", k)
				}
			}
			got, _ := translateAll(t, iotest.OneByteReader(bytes.NewReader(data)), fixtureOptions(true))
			if !bytes.Equal(got, want) {
				t.Fatal("one byte at a time: output differs")
			}
		})
	}
}

// TestChatStreamShape checks the rules strict clients depend on, chunk by
// chunk: one id/model/created, role first, exactly one finish_reason, tool
// call id and name only on a call's first chunk, [DONE] last.
func TestChatStreamShape(t *testing.T) {
	for _, tc := range streamCases {
		t.Run(tc.name, func(t *testing.T) {
			out, res := translateAll(t, bytes.NewReader(readFixture(t, tc.name)), fixtureOptions(true))
			events := splitData(t, out)
			if events[len(events)-1] != "[DONE]" {
				t.Fatalf("last event %q, want [DONE]", events[len(events)-1])
			}
			for i, ev := range events[:len(events)-1] {
				if ev == "[DONE]" {
					t.Fatalf("[DONE] at %d before the end", i)
				}
			}
			if tc.errCode != "" {
				var env struct {
					Error struct{ Code, Message, Type string }
				}
				if err := json.Unmarshal([]byte(events[len(events)-2]), &env); err != nil || env.Error.Code != tc.errCode {
					t.Fatalf("error event %q: want code %s", events[len(events)-2], tc.errCode)
				}
				if res.Err == nil || res.Err.Code != tc.errCode || res.Err.Status != tc.errStatus {
					t.Fatalf("result error %+v, want %s/%d", res.Err, tc.errCode, tc.errStatus)
				}
				return
			}
			finishes, seenCall := 0, map[int]bool{}
			var usageChunks int
			for i, ev := range events[:len(events)-1] {
				var c struct {
					ID      string `json:"id"`
					Object  string `json:"object"`
					Created int64  `json:"created"`
					Model   string `json:"model"`
					Choices []struct {
						Delta struct {
							Role      *string `json:"role"`
							ToolCalls []struct {
								Index    int     `json:"index"`
								ID       *string `json:"id"`
								Type     *string `json:"type"`
								Function struct {
									Name *string `json:"name"`
								} `json:"function"`
							} `json:"tool_calls"`
						} `json:"delta"`
						FinishReason *string `json:"finish_reason"`
					} `json:"choices"`
					Usage *json.RawMessage `json:"usage"`
				}
				if err := json.Unmarshal([]byte(ev), &c); err != nil {
					t.Fatalf("chunk %d is not JSON: %v: %s", i, err, ev)
				}
				if c.ID != "chatcmpl-test" || c.Object != "chat.completion.chunk" || c.Created != 1700000000 || c.Model != "gpt-5.5-high" {
					t.Fatalf("chunk %d header: %+v", i, c)
				}
				if len(c.Choices) == 0 {
					usageChunks++
					if c.Usage == nil || string(*c.Usage) == "null" {
						t.Fatalf("empty-choices chunk without usage: %s", ev)
					}
					continue
				}
				if i == 0 && (c.Choices[0].Delta.Role == nil || *c.Choices[0].Delta.Role != "assistant") {
					t.Fatalf("first chunk has no assistant role: %s", ev)
				}
				if c.Choices[0].FinishReason != nil {
					finishes++
				}
				for _, tcall := range c.Choices[0].Delta.ToolCalls {
					first := !seenCall[tcall.Index]
					seenCall[tcall.Index] = true
					hasHead := tcall.ID != nil && tcall.Type != nil && tcall.Function.Name != nil
					if first != hasHead {
						t.Fatalf("tool call %d: id/type/name present=%v on first=%v chunk: %s", tcall.Index, hasHead, first, ev)
					}
				}
			}
			if finishes != 1 {
				t.Fatalf("%d finish_reason chunks, want 1", finishes)
			}
			if usageChunks != 1 {
				t.Fatalf("%d usage chunks, want 1", usageChunks)
			}
			for i := range tc.calls {
				if !seenCall[i] {
					t.Fatalf("tool call index %d never sent", i)
				}
			}
			if res.FinishReason != tc.finish || !res.Completed {
				t.Fatalf("result %+v, want finish %s", res, tc.finish)
			}
			if tc.usage != (Usage{}) && res.Usage != tc.usage {
				t.Fatalf("usage %+v, want %+v", res.Usage, tc.usage)
			}
		})
	}
}

func splitData(t *testing.T, out []byte) []string {
	t.Helper()
	var events []string
	for _, block := range strings.Split(strings.TrimSuffix(string(out), "\n\n"), "\n\n") {
		if !strings.HasPrefix(block, "data: ") || strings.Contains(block, "\n") {
			t.Fatalf("bad SSE block %q", block)
		}
		events = append(events, strings.TrimPrefix(block, "data: "))
	}
	return events
}

// serveBytes answers every request with body as an event stream.
func serveBytes(t *testing.T, body []byte) *openai.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	c := openai.NewClient(option.WithBaseURL(srv.URL+"/v1/"), option.WithAPIKey("cpk_test"), option.WithMaxRetries(0))
	return &c
}

// TestChatStreamOpenAIAccumulator replays every fixture through the real
// openai-go client and its ChatCompletionAccumulator.
func TestChatStreamOpenAIAccumulator(t *testing.T) {
	for _, tc := range streamCases {
		for _, includeUsage := range []bool{false, true} {
			t.Run(tc.name, func(t *testing.T) {
				out, _ := translateAll(t, bytes.NewReader(readFixture(t, tc.name)), fixtureOptions(includeUsage))
				client := serveBytes(t, out)
				stream := client.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
					Model:    "gpt-5.5-high",
					Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
				})
				acc := openai.ChatCompletionAccumulator{}
				var reasoning strings.Builder
				for stream.Next() {
					chunk := stream.Current()
					if !acc.AddChunk(chunk) {
						t.Fatalf("accumulator rejected chunk %s", chunk.RawJSON())
					}
					if len(chunk.Choices) > 0 {
						if f, ok := chunk.Choices[0].Delta.JSON.ExtraFields["reasoning_content"]; ok {
							var s string
							_ = json.Unmarshal([]byte(f.Raw()), &s)
							reasoning.WriteString(s)
						}
					}
				}
				if tc.errCode != "" {
					if stream.Err() == nil || !strings.Contains(stream.Err().Error(), tc.errCode) {
						t.Fatalf("stream error %v, want one naming %s", stream.Err(), tc.errCode)
					}
					return
				}
				if err := stream.Err(); err != nil {
					t.Fatal(err)
				}
				if len(acc.Choices) != 1 {
					t.Fatalf("%d choices", len(acc.Choices))
				}
				ch := acc.Choices[0]
				if ch.Message.Content != tc.content {
					t.Errorf("content %q, want %q", ch.Message.Content, tc.content)
				}
				if reasoning.String() != tc.reasoning {
					t.Errorf("reasoning %q, want %q", reasoning.String(), tc.reasoning)
				}
				if ch.FinishReason != tc.finish {
					t.Errorf("finish %q, want %q", ch.FinishReason, tc.finish)
				}
				if len(ch.Message.ToolCalls) != len(tc.calls) {
					t.Fatalf("%d tool calls, want %d", len(ch.Message.ToolCalls), len(tc.calls))
				}
				for i, want := range tc.calls {
					got := ch.Message.ToolCalls[i]
					if got.ID != want.id || got.Function.Name != want.name || got.Function.Arguments != want.args {
						t.Errorf("call %d = %s %s %s, want %+v", i, got.ID, got.Function.Name, got.Function.Arguments, want)
					}
				}
				if includeUsage && tc.usage != (Usage{}) {
					u := acc.Usage
					if u.PromptTokens != tc.usage.InputTokens || u.CompletionTokens != tc.usage.OutputTokens ||
						u.TotalTokens != tc.usage.TotalTokens || u.PromptTokensDetails.CachedTokens != tc.usage.CachedTokens ||
						u.CompletionTokensDetails.ReasoningTokens != tc.usage.ReasoningTokens {
						t.Errorf("usage %+v, want %+v", u, tc.usage)
					}
				}
			})
		}
	}
}

// TestAggregateChatFixtures checks the non-stream answer for every fixture
// through openai-go's ChatCompletion type.
func TestAggregateChatFixtures(t *testing.T) {
	for _, tc := range streamCases {
		t.Run(tc.name, func(t *testing.T) {
			body, res := AggregateChat(bytes.NewReader(readFixture(t, tc.name)), fixtureOptions(false))
			if tc.errCode != "" {
				if body != nil || res.Err == nil || res.Err.Code != tc.errCode || res.Err.Status != tc.errStatus {
					t.Fatalf("body %s err %+v, want error %s/%d", body, res.Err, tc.errCode, tc.errStatus)
				}
				return
			}
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			var cc openai.ChatCompletion
			if err := json.Unmarshal(body, &cc); err != nil {
				t.Fatal(err)
			}
			if cc.ID != "chatcmpl-test" || cc.Model != "gpt-5.5-high" || cc.Object != "chat.completion" || len(cc.Choices) != 1 {
				t.Fatalf("header: %s", body)
			}
			msg := cc.Choices[0].Message
			if msg.Content != tc.content || cc.Choices[0].FinishReason != tc.finish {
				t.Errorf("content %q finish %q, want %q %q", msg.Content, cc.Choices[0].FinishReason, tc.content, tc.finish)
			}
			var extra struct {
				Choices []struct {
					Message struct {
						ReasoningContent string `json:"reasoning_content"`
					} `json:"message"`
				} `json:"choices"`
			}
			_ = json.Unmarshal(body, &extra)
			if got := extra.Choices[0].Message.ReasoningContent; got != tc.reasoning {
				t.Errorf("reasoning %q, want %q", got, tc.reasoning)
			}
			if len(msg.ToolCalls) != len(tc.calls) {
				t.Fatalf("%d tool calls, want %d: %s", len(msg.ToolCalls), len(tc.calls), body)
			}
			for i, want := range tc.calls {
				got := msg.ToolCalls[i]
				if got.ID != want.id || got.Function.Name != want.name || got.Function.Arguments != want.args || got.Type != "function" {
					t.Errorf("call %d = %+v, want %+v", i, got, want)
				}
			}
			if tc.usage != (Usage{}) && (cc.Usage.PromptTokens != tc.usage.InputTokens ||
				cc.Usage.PromptTokensDetails.CachedTokens != tc.usage.CachedTokens ||
				cc.Usage.CompletionTokensDetails.ReasoningTokens != tc.usage.ReasoningTokens) {
				t.Errorf("usage %+v, want %+v", cc.Usage, tc.usage)
			}
		})
	}
}

// TestAggregateResponsesRebuildsOutput checks docs/protocol.md#empty-output: completed.output is
// empty, the Response returned to a stream:false client is not.
func TestAggregateResponsesRebuildsOutput(t *testing.T) {
	body, res := AggregateResponses(bytes.NewReader(readFixture(t, "reasoning_tool_call")), fixtureOptions(false).ToolNames, nil)
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	var resp struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		Output []struct {
			Type             string `json:"type"`
			CallID           string `json:"call_id"`
			Name             string `json:"name"`
			EncryptedContent string `json:"encrypted_content"`
		} `json:"output"`
		Usage struct {
			InputTokens int64 `json:"input_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.ID != "resp_rtc" || resp.Status != "completed" || len(resp.Output) != 3 {
		t.Fatalf("response: %s", body)
	}
	if resp.Output[0].Type != "reasoning" || resp.Output[0].EncryptedContent == "" ||
		resp.Output[1].Type != "message" || resp.Output[2].Type != "function_call" || resp.Output[2].CallID != "call_xyz" ||
		resp.Output[2].Name != longToolName {
		t.Fatalf("output items: %s", body)
	}
	if resp.Usage.InputTokens != 120 {
		t.Fatalf("usage lost: %s", body)
	}
	if _, res := AggregateResponses(bytes.NewReader(readFixture(t, "cut_stream")), nil, nil); res.Err == nil || res.Err.Code != "stream_incomplete" {
		t.Fatalf("cut stream: %+v", res.Err)
	}
}

// TestChatStreamLongLine streams a 1 MiB delta, far beyond bufio.Scanner's
// 64 KiB default line limit.
func TestChatStreamLongLine(t *testing.T) {
	big := strings.Repeat("x", 1<<20)
	var in bytes.Buffer
	in.WriteString("event: response.output_text.delta\ndata: ")
	_ = json.NewEncoder(&in).Encode(map[string]any{"type": "response.output_text.delta", "item_id": "m", "delta": big})
	in.WriteString("\nevent: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"r\",\"output\":[]}}\n\n")
	out, res := translateAll(t, &in, fixtureOptions(false))
	if !res.Completed || !bytes.Contains(out, []byte(big)) {
		t.Fatalf("long delta lost (completed=%v, %d bytes out)", res.Completed, len(out))
	}
}

// TestChatStreamStartedOnlyWithOutput lets the handler answer an early
// failure with a real status: bookkeeping events produce nothing.
func TestChatStreamStartedOnlyWithOutput(t *testing.T) {
	s := NewChatStream(fixtureOptions(false))
	out := s.Translate(nil, Event{Data: []byte(`{"type":"response.created","response":{"id":"r1"}}`)})
	out = s.Translate(out, Event{Data: []byte(`{"type":"response.in_progress","response":{"id":"r1"}}`)})
	if len(out) != 0 || s.Started() {
		t.Fatalf("bookkeeping events produced output: %q", out)
	}
	out = s.Translate(out, Event{Data: []byte(`{"type":"response.failed","response":{"id":"r1","error":{"code":"server_is_overloaded","message":"busy"}}}`)})
	if s.Started() || s.Result().Err == nil || s.Result().Err.Status != http.StatusServiceUnavailable {
		t.Fatalf("early failure: started=%v err=%+v", s.Started(), s.Result().Err)
	}
	if !bytes.HasSuffix(out, []byte("data: [DONE]\n\n")) {
		t.Fatalf("no [DONE]: %q", out)
	}
}

func TestChatStreamNoUsageChunkUnlessAsked(t *testing.T) {
	out, _ := translateAll(t, bytes.NewReader(readFixture(t, "text")), fixtureOptions(false))
	if bytes.Contains(out, []byte(`"usage"`)) || bytes.Contains(out, []byte(`"choices":[]`)) {
		t.Fatalf("usage sent without include_usage: %s", out)
	}
}

// TestResponsesStreamRestoresToolNames: /v1/responses clients see the tool
// names they declared, not the shortened ones the upstream saw.
func TestResponsesStreamRestoresToolNames(t *testing.T) {
	rs := ResponsesStream{ToolNames: fixtureOptions(false).ToolNames}
	rd := NewReader(bytes.NewReader(readFixture(t, "reasoning_tool_call")))
	var out []byte
	for {
		ev, err := rd.Next()
		if err != nil {
			break
		}
		out = rs.Translate(out, ev)
	}
	out = rs.Finish(out)
	if bytes.Contains(out, []byte("read_file_1a2b3c4d")) || !bytes.Contains(out, []byte(longToolName)) {
		t.Fatalf("tool name not restored: %s", out)
	}
	if !rs.Done() || rs.Result().Err != nil || rs.Result().Usage.InputTokens != 120 {
		t.Fatalf("result %+v", rs.Result())
	}
}

// TestResponsesStreamDropsRateLimits: DropRateLimits leaves out the
// upstream's codex.rate_limits events, whether the event is copied
// through or rewritten, named or not; without it they are relayed.
func TestResponsesStreamDropsRateLimits(t *testing.T) {
	const rl = `{"type":"codex.rate_limits","plan_type":"plus","rate_limits":{"primary":{"used_percent":42.5}}}`
	for _, tc := range []struct {
		name  string
		named bool
		rs    ResponsesStream
		drop  bool
	}{
		{"copied through", true, ResponsesStream{DropRateLimits: true}, true},
		{"rewritten", true, ResponsesStream{DropRateLimits: true, ToolNames: fixtureOptions(false).ToolNames}, true},
		{"unnamed", false, ResponsesStream{DropRateLimits: true}, true},
		{"kept", true, ResponsesStream{}, false},
		{"kept unnamed", false, ResponsesStream{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "data: " + rl + "\n\n"
			if tc.named {
				src = "event: codex.rate_limits\n" + src
			}
			rd := NewReader(strings.NewReader(src + "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\"}}\n\n"))
			var out []byte
			for {
				ev, err := rd.Next()
				if err != nil {
					break
				}
				out = tc.rs.Translate(out, ev)
			}
			if got := bytes.Contains(out, []byte("used_percent")); got == tc.drop {
				t.Fatalf("rate limits relayed %v: %s", got, out)
			}
			if !bytes.Contains(out, []byte("resp_1")) || tc.rs.Result().ResponseID != "resp_1" {
				t.Fatalf("the next event: %s", out)
			}
		})
	}
}
