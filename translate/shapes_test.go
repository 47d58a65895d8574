package translate

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Request shapes real clients send that used to be refused or forwarded
// wrongly (issue 9): Cursor's Responses body with messages:[], replayed
// output items with status, legacy functions, call ids over 64 characters.

// rqLongID and rqLongID2 are client call ids over MaxCallIDLen.
var (
	rqLongID  = "toolu_vrtx_01" + strings.Repeat("A", 30) + "-" + strings.Repeat("b", 40)
	rqLongID2 = "functions.apply_patch:" + strings.Repeat("9", 50)
)

// wantCallIDs checks Mapped.CallIDs against the long ids expected.
func wantCallIDs(long ...string) func(t *testing.T, m *Mapped) {
	return func(t *testing.T, m *Mapped) {
		t.Helper()
		if len(m.CallIDs) != len(long) {
			t.Fatalf("CallIDs = %v, want %d entries", m.CallIDs, len(long))
		}
		for _, l := range long {
			if got := m.CallIDs[ShortenCallID(l)]; got != l {
				t.Fatalf("CallIDs[%s] = %q, want %q", ShortenCallID(l), got, l)
			}
		}
	}
}

var shapeChatCases = []rqCase{
	{
		name: "responses body with empty messages",
		body: `{"model":"gpt-5.5","messages":[],"input":[{"role":"user","content":"hi"}],"stream":true}`,
		want: map[string]string{"input": `[{"type":"message","role":"user","content":"hi"}]`},
		// messages:[] is not forwarded (the backend does not know it).
		dropped: []string{"messages"},
		check: func(t *testing.T, m *Mapped) {
			if !m.ResponsesShaped || !m.Stream {
				t.Fatalf("ResponsesShaped=%v Stream=%v", m.ResponsesShaped, m.Stream)
			}
		},
	},
	{
		name: "responses body with empty messages, spaced",
		body: `{"model":"gpt-5.5","messages":[ ],"input":"hi"}`,
		want: map[string]string{"input.0.content.0.text": `"hi"`}, dropped: []string{"messages"},
		check: func(t *testing.T, m *Mapped) { mustEqual(t, m.ResponsesShaped, true) },
	},
	{name: "empty messages without input", body: `{"model":"gpt-5.5","messages":[]}`, errParam: "messages", errContains: "at least one message"},
	{name: "missing messages without input", body: `{"model":"gpt-5.5"}`, errParam: "messages", errCode: codeMissingParam},
	{
		name: "chat endpoint responses body: status stripped, long ids shortened",
		body: `{"model":"gpt-5.5","messages":[],"input":[{"role":"user","content":"x"},
			{"type":"function_call","status":"completed","call_id":"` + rqLongID + `","name":"f","arguments":"{}"},
			{"type":"function_call_output","status":"completed","call_id":"` + rqLongID + `","output":"ok"}]}`,
		want: map[string]string{
			"input.1": `{"type":"function_call","call_id":"` + ShortenCallID(rqLongID) + `","name":"f","arguments":"{}"}`,
			"input.2": `{"type":"function_call_output","call_id":"` + ShortenCallID(rqLongID) + `","output":"ok"}`,
		},
		dropped: []string{"messages"},
		check:   wantCallIDs(rqLongID),
	},

	// --- long call ids in chat history --------------------------------------
	{
		name: "long tool_calls id and tool_call_id shortened alike",
		body: `{"model":"gpt-5.5","messages":[{"role":"user","content":"x"},
			{"role":"assistant","tool_calls":[{"id":"` + rqLongID + `","function":{"name":"f","arguments":"{}"}},{"id":"call_ok","function":{"name":"f","arguments":"{}"}}]},
			{"role":"tool","tool_call_id":"` + rqLongID + `","content":"a"},
			{"role":"tool","tool_call_id":"call_ok","content":"b"}]}`,
		want: map[string]string{
			"input.1.call_id": `"` + ShortenCallID(rqLongID) + `"`,
			"input.2.call_id": `"call_ok"`,
			"input.3.call_id": `"` + ShortenCallID(rqLongID) + `"`,
			"input.4.call_id": `"call_ok"`,
		},
		check: wantCallIDs(rqLongID),
	},
	{
		name: "unanswered long call gets its aborted output under the short id",
		body: `{"model":"gpt-5.5","messages":[{"role":"user","content":"x"},
			{"role":"assistant","tool_calls":[{"id":"` + rqLongID2 + `","type":"custom","custom":{"name":"apply_patch","input":"p"}}]},
			{"role":"user","content":"stop"}]}`,
		want: map[string]string{
			"input.1": `{"type":"custom_tool_call","call_id":"` + ShortenCallID(rqLongID2) + `","name":"apply_patch","input":"p"}`,
			"input.2": `{"type":"custom_tool_call_output","call_id":"` + ShortenCallID(rqLongID2) + `","output":"aborted"}`,
		},
		check: wantCallIDs(rqLongID2),
	},
	{
		name:  "64-character id is left alone",
		body:  `{"model":"gpt-5.5","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"` + strings.Repeat("c", 64) + `","function":{"name":"f"}}]},{"role":"tool","tool_call_id":"` + strings.Repeat("c", 64) + `","content":"a"}]}`,
		want:  map[string]string{"input.1.call_id": `"` + strings.Repeat("c", 64) + `"`},
		check: func(t *testing.T, m *Mapped) { mustEqual(t, len(m.CallIDs), 0) },
	},
	{
		name:        "pairing errors name the client's long id",
		body:        `{"model":"gpt-5.5","messages":[{"role":"user","content":"x"},{"role":"tool","tool_call_id":"` + rqLongID + `","content":"a"}]}`,
		errParam:    "messages[1].tool_call_id",
		errContains: rqLongID,
	},

	// --- legacy functions -----------------------------------------------------
	{
		name: "functions only: legacy answer, one call asked for",
		body: `{"model":"gpt-5.5",` + rqUser + `,"functions":[{"name":"f"}]}`,
		want: map[string]string{"parallel_tool_calls": `false`, "tools.0.name": `"f"`},
		check: func(t *testing.T, m *Mapped) {
			if !m.LegacyFunctions {
				t.Fatal("LegacyFunctions not set")
			}
		},
	},
	{
		name: "functions with parallel_tool_calls true: still one call",
		body: `{"model":"gpt-5.5",` + rqUser + `,"functions":[{"name":"f"}],"parallel_tool_calls":true}`,
		want: map[string]string{"parallel_tool_calls": `false`},
	},
	{
		name:  "functions and tools: modern answer",
		body:  `{"model":"gpt-5.5",` + rqUser + `,"functions":[{"name":"f"}],"tools":[{"type":"function","function":{"name":"g"}}]}`,
		want:  map[string]string{"parallel_tool_calls": `true`},
		check: func(t *testing.T, m *Mapped) { mustEqual(t, m.LegacyFunctions, false) },
	},
	{
		name:  "tools only: modern answer",
		body:  `{"model":"gpt-5.5",` + rqUser + `,"tools":[{"type":"function","function":{"name":"g"}}],"functions":[]}`,
		check: func(t *testing.T, m *Mapped) { mustEqual(t, m.LegacyFunctions, false) },
	},
	{
		name: "legacy results answer the oldest open call of their name",
		body: `{"model":"gpt-5.5","messages":[{"role":"user","content":"x"},
			{"role":"assistant","function_call":{"name":"f","arguments":"{\"n\":1}"}},
			{"role":"assistant","function_call":{"name":"g","arguments":"{}"}},
			{"role":"assistant","function_call":{"name":"f","arguments":"{\"n\":2}"}},
			{"role":"function","name":"f","content":"one"},
			{"role":"function","name":"g","content":"gee"},
			{"role":"function","name":"f","content":"two"}],"functions":[{"name":"f"},{"name":"g"}]}`,
		want: map[string]string{
			"input.1.call_id": `"call_legacy_1"`, "input.2.call_id": `"call_legacy_2"`, "input.3.call_id": `"call_legacy_3"`,
			"input.4": `{"type":"function_call_output","call_id":"call_legacy_1","output":"one"}`,
			"input.5": `{"type":"function_call_output","call_id":"call_legacy_2","output":"gee"}`,
			"input.6": `{"type":"function_call_output","call_id":"call_legacy_3","output":"two"}`,
		},
	},
}

var shapeResponsesCases = []rqCase{
	{
		name: "status removed from replayed output items",
		body: `{"model":"gpt-5.5","input":[{"role":"user","content":"x"},
			{"type":"reasoning","id":"rs_1","status":"completed","summary":[],"encrypted_content":"gAAA"},
			{"type":"message","id":"msg_1","role":"assistant","status":"completed","content":[{"type":"output_text","text":"a"}]},
			{"type":"function_call","id":"fc_1","status":"completed","call_id":"c1","name":"f","arguments":"{}"},
			{"type":"function_call_output","id":"fco_1","status":"completed","call_id":"c1","output":"ok"},
			{"status":"completed","role":"user","content":"y"}]}`,
		want: map[string]string{
			"input.1": `{"type":"reasoning","summary":[],"encrypted_content":"gAAA"}`,
			"input.2": `{"type":"message","role":"assistant","content":[{"type":"output_text","text":"a"}]}`,
			"input.3": `{"type":"function_call","call_id":"c1","name":"f","arguments":"{}"}`,
			"input.4": `{"type":"function_call_output","call_id":"c1","output":"ok"}`,
			"input.5": `{"type":"message","role":"user","content":"y"}`,
		},
	},
	{
		name: "status kept where the official client sends it",
		body: `{"model":"gpt-5.5","input":[{"role":"user","content":"x"},
			{"type":"custom_tool_call","status":"completed","call_id":"c1","name":"apply_patch","input":"p"},
			{"type":"custom_tool_call_output","status":"completed","call_id":"c1","output":"ok"},
			{"type":"local_shell_call","status":"completed","call_id":"c2","action":{"type":"exec","command":["ls"]}},
			{"type":"function_call_output","call_id":"c2","output":"a"},
			{"type":"web_search_call","status":"completed","action":{"type":"search","query":"q"}}]}`,
		want: map[string]string{
			"input.1.status": `"completed"`,
			"input.2":        `{"type":"custom_tool_call_output","call_id":"c1","output":"ok"}`,
			"input.3.status": `"completed"`,
			"input.5.status": `"completed"`,
		},
	},
	{
		name: "long call ids shortened on calls and outputs",
		body: `{"model":"gpt-5.5","input":[{"role":"user","content":"x"},
			{"type":"function_call","call_id":"` + rqLongID + `","name":"f","arguments":"{}"},
			{"type":"custom_tool_call","call_id":"` + rqLongID2 + `","name":"apply_patch","input":"p"},
			{"type":"function_call_output","call_id":"` + rqLongID + `","output":"ok"}]}`,
		want: map[string]string{
			"input.1.call_id": `"` + ShortenCallID(rqLongID) + `"`,
			"input.2.call_id": `"` + ShortenCallID(rqLongID2) + `"`,
			"input.3":         `{"type":"custom_tool_call_output","call_id":"` + ShortenCallID(rqLongID2) + `","output":"aborted"}`,
			"input.4":         `{"type":"function_call_output","call_id":"` + ShortenCallID(rqLongID) + `","output":"ok"}`,
		},
		check: wantCallIDs(rqLongID, rqLongID2),
	},
	{
		name: "output without call_id answers the long call by its short id",
		body: `{"model":"gpt-5.5","input":[{"role":"user","content":"x"},
			{"type":"function_call","call_id":"` + rqLongID + `","name":"f","arguments":"{}"},
			{"type":"function_call_output","output":"ok"}]}`,
		want:  map[string]string{"input.2": `{"type":"function_call_output","output":"ok","call_id":"` + ShortenCallID(rqLongID) + `"}`},
		check: wantCallIDs(rqLongID),
	},
	{
		name:  "items nobody edits pass unchanged",
		body:  `{"model":"gpt-5.5","input":[{"type":"message","role":"user","content":"x","status":"completed"},{"type":"image_generation_call","status":"completed","result":"aGk="}]}`,
		want:  map[string]string{"input.0": `{"type":"message","role":"user","content":"x"}`, "input.1.status": `"completed"`},
		check: func(t *testing.T, m *Mapped) { mustEqual(t, len(m.CallIDs), 0) },
	},
}

func TestChatShapes(t *testing.T) { runRequestCases(t, ChatToResponses, shapeChatCases) }

func TestResponsesShapes(t *testing.T) {
	runRequestCases(t, NormalizeResponses, shapeResponsesCases)
	// The chat endpoint takes the same Responses input (Cursor).
	for _, c := range shapeResponsesCases {
		c.body = strings.Replace(c.body, `{"model":"gpt-5.5",`, `{"model":"gpt-5.5","messages":[],`, 1)
		c.dropped = append([]string{"messages"}, c.dropped...)
		t.Run("chat endpoint/"+c.name, func(t *testing.T) { runRequestCase(t, ChatToResponses, c) })
	}
}

func TestShortenCallID(t *testing.T) {
	for _, id := range []string{"", "call_abc", strings.Repeat("x", MaxCallIDLen)} {
		if got := ShortenCallID(id); got != id {
			t.Errorf("ShortenCallID(%q) = %q, want it unchanged", id, got)
		}
	}
	seen := map[string]string{}
	for _, id := range []string{strings.Repeat("x", MaxCallIDLen+1), rqLongID, rqLongID2, rqLongID + "é", strings.Repeat("€", 100)} {
		short := ShortenCallID(id)
		if len(short) > MaxCallIDLen || !strings.HasPrefix(short, callIDPrefix) {
			t.Errorf("ShortenCallID(%q) = %q (%d bytes)", id, short, len(short))
		}
		if again := ShortenCallID(id); again != short {
			t.Errorf("not deterministic: %q then %q", short, again)
		}
		if other, dup := seen[short]; dup {
			t.Errorf("%q and %q both shorten to %q", id, other, short)
		}
		seen[short] = id
	}
	// Pinned: a conversation's later turns must map the same long id to
	// the same short id across releases, or the backend loses the pairing
	// with the earlier items of a cached prompt.
	if got := ShortenCallID(rqLongID); got != "call_sh_ee79db12223854cc7633f18c02714ad87d9b2db9" {
		t.Errorf("ShortenCallID changed: %q", got)
	}
}

func TestCallIDsRestore(t *testing.T) {
	var ids CallIDs
	short := ids.shorten(rqLongID + `"<&>`)
	if ids.shorten("call_1") != "call_1" || len(ids) != 1 {
		t.Fatalf("map %v", ids)
	}
	if ids.Restore(short) != rqLongID+`"<&>` || ids.Restore("call_1") != "call_1" || CallIDs(nil).Restore("x") != "x" {
		t.Fatal("Restore")
	}
	data := []byte(`{"call_id":"` + short + `","message":"No tool output found for function call ` + short + `."}`)
	got := string(ids.restoreIn(data))
	want := `{"call_id":"` + rqLongID + `\"\u003c\u0026\u003e","message":"No tool output found for function call ` + rqLongID + `\"\u003c\u0026\u003e."}`
	if got != want {
		t.Fatalf("restoreIn\n got %s\nwant %s", got, want)
	}
	plain := []byte(`{"call_id":"call_1"}`)
	if out := ids.restoreIn(plain); &out[0] != &plain[0] {
		t.Fatal("restoreIn copied data with nothing to restore")
	}
	e := &Error{Status: 400, Message: "No tool output found for function call " + short + "."}
	if r := ids.RestoreError(e); r.Message != "No tool output found for function call "+rqLongID+`"<&>.` || e.Message == r.Message {
		t.Fatalf("RestoreError: %q (original %q)", r.Message, e.Message)
	}
	if r := CallIDs(nil).RestoreError(e); r != e {
		t.Fatal("nil map must return the error itself")
	}
}

// legacyOptions answers like OpenAI does for a request that sent functions.
func legacyOptions() ChatStreamOptions {
	o := fixtureOptions(false)
	o.LegacyFunctions = true
	return o
}

// TestLegacyFunctionStreamGolden: delta.function_call chunks, the first with
// name and empty arguments, then arguments only, finish_reason
// function_call. Of parallel calls only the first is sent.
func TestLegacyFunctionStreamGolden(t *testing.T) {
	for _, fixture := range []string{"tool_call", "parallel_tool_calls", "done_only_call"} {
		t.Run(fixture, func(t *testing.T) {
			got, res := translateAll(t, bytes.NewReader(readFixture(t, fixture)), legacyOptions())
			path := filepath.Join("testdata", "stream", fixture+".legacy.chat.golden")
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
			if res.FinishReason != "function_call" {
				t.Fatalf("finish %q", res.FinishReason)
			}
			// Read back as a legacy client does.
			var name, args string
			var finish []string
			for i, ev := range splitData(t, got) {
				if ev == "[DONE]" {
					continue
				}
				var c struct {
					Choices []struct {
						Delta struct {
							ToolCalls    json.RawMessage `json:"tool_calls"`
							FunctionCall *struct {
								Name      *string `json:"name"`
								Arguments *string `json:"arguments"`
							} `json:"function_call"`
						} `json:"delta"`
						FinishReason *string `json:"finish_reason"`
					} `json:"choices"`
				}
				if err := json.Unmarshal([]byte(ev), &c); err != nil {
					t.Fatal(err)
				}
				d := c.Choices[0].Delta
				if d.ToolCalls != nil {
					t.Fatalf("chunk %d has tool_calls in a legacy answer: %s", i, ev)
				}
				if fc := d.FunctionCall; fc != nil {
					if (fc.Name != nil) != (name == "") || fc.Arguments == nil {
						t.Fatalf("chunk %d: name only on the first function_call chunk, arguments on all: %s", i, ev)
					}
					if fc.Name != nil {
						name = *fc.Name
					}
					args += *fc.Arguments
				}
				if f := c.Choices[0].FinishReason; f != nil {
					finish = append(finish, *f)
				}
			}
			want1 := streamCaseByName(t, fixture).calls[0]
			if name != want1.name || args != want1.args || len(finish) != 1 || finish[0] != "function_call" {
				t.Fatalf("read back %s(%s) finish %v, want %s(%s) function_call", name, args, finish, want1.name, want1.args)
			}
		})
	}
}

func streamCaseByName(t *testing.T, name string) streamCase {
	for _, c := range streamCases {
		if c.name == name {
			return c
		}
	}
	t.Fatalf("no stream case %s", name)
	return streamCase{}
}

// TestLegacyFunctionAggregate: the non-stream answer carries
// message.function_call and content null.
func TestLegacyFunctionAggregate(t *testing.T) {
	for _, name := range []string{"tool_call", "parallel_tool_calls", "reasoning_tool_call"} {
		t.Run(name, func(t *testing.T) {
			body, res := AggregateChat(bytes.NewReader(readFixture(t, name)), legacyOptions())
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			var cc struct {
				Choices []struct {
					Message struct {
						Content      *string          `json:"content"`
						ToolCalls    json.RawMessage  `json:"tool_calls"`
						FunctionCall *json.RawMessage `json:"function_call"`
					} `json:"message"`
					FinishReason string `json:"finish_reason"`
				} `json:"choices"`
			}
			if err := json.Unmarshal(body, &cc); err != nil {
				t.Fatal(err)
			}
			tc := streamCaseByName(t, name)
			want, _ := json.Marshal(chatFunctionCall{Name: tc.calls[0].name, Arguments: tc.calls[0].args})
			msg := cc.Choices[0].Message
			if msg.FunctionCall == nil || string(*msg.FunctionCall) != string(want) || msg.ToolCalls != nil ||
				cc.Choices[0].FinishReason != "function_call" {
				t.Fatalf("answer %s, want function_call %s", body, want)
			}
			if (msg.Content == nil) != (tc.content == "") || msg.Content != nil && *msg.Content != tc.content {
				t.Fatalf("content: %s", body)
			}
		})
	}
	// Without a call a legacy request is answered as usual.
	body, _ := AggregateChat(bytes.NewReader(readFixture(t, "text")), legacyOptions())
	if !bytes.Contains(body, []byte(`"finish_reason":"stop"`)) || bytes.Contains(body, []byte("function_call")) {
		t.Fatalf("text answer: %s", body)
	}
}

// TestResponsesRestoresCallIDs: /v1/responses clients get their long ids
// back in streamed events and in the aggregated Response.
func TestResponsesRestoresCallIDs(t *testing.T) {
	ids := fixtureOptions(false).CallIDs
	short := []byte(ShortenCallID(longCallID))
	rs := ResponsesStream{CallIDs: ids}
	rd := NewReader(bytes.NewReader(readFixture(t, "long_call_id")))
	var out []byte
	for {
		ev, err := rd.Next()
		if err != nil {
			break
		}
		out = rs.Translate(out, ev)
	}
	if bytes.Contains(out, short) || bytes.Count(out, []byte(longCallID)) != 3 || rs.Result().Err != nil || !rs.Done() {
		t.Fatalf("stream: %s", out)
	}
	body, res := AggregateResponses(bytes.NewReader(readFixture(t, "long_call_id")), nil, ids)
	if res.Err != nil || bytes.Contains(body, short) || !bytes.Contains(body, []byte(`"call_id":"`+longCallID+`"`)) {
		t.Fatalf("aggregate: %s %v", body, res.Err)
	}
}

// TestFailuresRestoreCallIDs: an upstream failure naming a shortened id is
// passed on with the client's id, on every path.
func TestFailuresRestoreCallIDs(t *testing.T) {
	ids := fixtureOptions(false).CallIDs
	short := ShortenCallID(longCallID)
	stream := "event: response.failed\ndata: " +
		`{"type":"response.failed","response":{"id":"r","status":"failed","error":{"code":"invalid_prompt","message":"No tool output found for function call ` + short + `."}}}` + "\n\n"
	wantMsg := "No tool output found for function call " + longCallID + "."

	out, res := translateAll(t, strings.NewReader(stream), fixtureOptions(false))
	if res.Err == nil || res.Err.Message != wantMsg || bytes.Contains(out, []byte(short)) {
		t.Fatalf("chat stream: %s %+v", out, res.Err)
	}
	if _, res := AggregateChat(strings.NewReader(stream), fixtureOptions(false)); res.Err == nil || res.Err.Message != wantMsg {
		t.Fatalf("chat aggregate: %+v", res.Err)
	}
	if _, res := AggregateResponses(strings.NewReader(stream), nil, ids); res.Err == nil || res.Err.Message != wantMsg {
		t.Fatalf("responses aggregate: %+v", res.Err)
	}
	rs := ResponsesStream{CallIDs: ids}
	rd := NewReader(strings.NewReader(stream))
	ev, _ := rd.Next()
	out = rs.Translate(nil, ev)
	if rs.Result().Err == nil || rs.Result().Err.Message != wantMsg || bytes.Contains(out, []byte(short)) {
		t.Fatalf("responses stream: %s %+v", out, rs.Result().Err)
	}
}
