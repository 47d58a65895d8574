package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
)

// The output of e2e/node/clients.mjs: one field per client call. Each
// carries error (and status) when the call threw.

type nodeResults struct {
	Node    string        `json:"node"`
	OpenAI  openaiResults `json:"openai"`
	OpenAI6 openaiResults `json:"openai6"`
	AI      aiResults     `json:"ai"`
}

type nodeUsage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
	InputTokens      int `json:"input_tokens"`
	OutputTokens     int `json:"output_tokens"`
}

// nodeError is what clients.mjs records when a call throws.
type nodeError struct {
	Error  string `json:"error"`
	Status any    `json:"status"`
}

// weather is the structured answer's schema in clients.mjs; the fake fills
// strings with the user's text and numbers with 42.
type weather struct {
	City    string  `json:"city"`
	Summary string  `json:"summary"`
	Celsius float64 `json:"celsius"`
}

type chatCall struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

type locationArgs struct {
	Location string `json:"location"`
}

type openaiResults struct {
	SDK        string `json:"sdk"`
	ChatStream struct {
		nodeError
		Text              string     `json:"text"`
		Reasoning         string     `json:"reasoning"`
		Finish            string     `json:"finish"`
		Usage             *nodeUsage `json:"usage"`
		UsageChunkChoices *int       `json:"usageChunkChoices"`
	} `json:"chat_stream"`
	Chat struct {
		nodeError
		Object string     `json:"object"`
		Text   string     `json:"text"`
		Finish string     `json:"finish"`
		Usage  *nodeUsage `json:"usage"`
	} `json:"chat"`
	Tools struct {
		nodeError
		FirstFinish  string   `json:"firstFinish"`
		Call         chatCall `json:"call"`
		SecondFinish string   `json:"secondFinish"`
		SecondText   string   `json:"secondText"`
	} `json:"tools"`
	ChatStreamToolRaw struct {
		nodeError
		Calls     []chatCall    `json:"calls"`
		Finish    string        `json:"finish"`
		Usage     *nodeUsage    `json:"usage"`
		ArgDeltas int           `json:"argDeltas"`
		Args      *locationArgs `json:"args"`
	} `json:"chat_stream_tool_raw"`
	ChatStreamTool struct {
		nodeError
		Finish    string        `json:"finish"`
		Call      *chatCall     `json:"call"`
		Args      *locationArgs `json:"args"`
		ArgEvents int           `json:"argEvents"`
		Usage     *nodeUsage    `json:"usage"`
	} `json:"chat_stream_tool"`
	ChatStructured struct {
		nodeError
		Finish  string   `json:"finish"`
		Parsed  *weather `json:"parsed"`
		Refusal *string  `json:"refusal"`
	} `json:"chat_structured"`
	ResponsesStream struct {
		nodeError
		Text   string     `json:"text"`
		Types  []string   `json:"types"`
		Status string     `json:"status"`
		Usage  *nodeUsage `json:"usage"`
	} `json:"responses_stream"`
	Responses struct {
		nodeError
		Status string     `json:"status"`
		Text   string     `json:"text"`
		Usage  *nodeUsage `json:"usage"`
	} `json:"responses"`
	ResponsesTool struct {
		nodeError
		Status string `json:"status"`
		Call   struct {
			CallID    string `json:"callId"`
			Name      string `json:"name"`
			Arguments string `json:"arguments"`
		} `json:"call"`
		Deltas       string        `json:"deltas"`
		DoneArgs     string        `json:"doneArgs"`
		Args         *locationArgs `json:"args"`
		SecondStatus string        `json:"secondStatus"`
		SecondText   string        `json:"secondText"`
	} `json:"responses_tool"`
	ResponsesStructured struct {
		nodeError
		Status string   `json:"status"`
		Parsed *weather `json:"parsed"`
	} `json:"responses_structured"`
}

// aiUsage is the AI SDK's LanguageModelUsage.
type aiUsage struct {
	InputTokens  int `json:"inputTokens"`
	OutputTokens int `json:"outputTokens"`
	TotalTokens  int `json:"totalTokens"`
}

// aiResult is any AI SDK case; each fills the fields it has.
type aiResult struct {
	nodeError
	Text         string   `json:"text"`
	FinishReason string   `json:"finishReason"`
	Usage        *aiUsage `json:"usage"`
	Steps        int      `json:"steps"`
	Streamed     string   `json:"streamed"`
	Deltas       int      `json:"deltas"`
	Executed     []string `json:"executed"`
	FirstFinish  string   `json:"firstFinish"`
	ToolCalls    []struct {
		ID    string       `json:"id"`
		Name  string       `json:"name"`
		Input locationArgs `json:"input"`
	} `json:"toolCalls"`
	ToolResults []string `json:"toolResults"`
	Object      *weather `json:"object"`
}

type aiResults struct {
	SDK      string
	Provider string
	Cases    map[string]aiResult
}

func (r *aiResults) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	r.Cases = map[string]aiResult{}
	for k, v := range raw {
		var err error
		switch k {
		case "sdk":
			err = json.Unmarshal(v, &r.SDK)
		case "provider":
			err = json.Unmarshal(v, &r.Provider)
		default:
			var c aiResult
			err = json.Unmarshal(v, &c)
			r.Cases[k] = c
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func checkVersions(t *testing.T, res nodeResults) {
	for _, c := range []struct{ what, got, want string }{
		{"node", res.Node, "v22."},
		{"openai", res.OpenAI.SDK, "7.59.0"},
		{"openai6", res.OpenAI6.SDK, "6.49.0"},
		{"ai", res.AI.SDK, "7.0.173"},
		{"@ai-sdk/openai", res.AI.Provider, "4.0.118"},
	} {
		if !strings.HasPrefix(c.got, c.want) {
			t.Errorf("%s version %q, want %s (e2e/node/package.json)", c.what, c.got, c.want)
		}
	}
}

// failed reports a case that threw and whether it did.
func failed(t *testing.T, name string, e nodeError) bool {
	t.Helper()
	if e.Error != "" {
		t.Errorf("%s threw: %s (status %v)", name, e.Error, e.Status)
		return true
	}
	return false
}

// upstreamFormat is the text.format of the Responses request the fake got
// for the call whose prompt carried tag.
func upstreamFormat(t *testing.T, fake *codextest.Server, tag string) map[string]any {
	t.Helper()
	text, _ := upstreamRequest(t, fake, tag).JSON["text"].(map[string]any)
	f, _ := text["format"].(map[string]any)
	return f
}

// checkStructuredUpstream checks that a structured-output call reached
// the upstream as a strict json_schema text.format.
func checkStructuredUpstream(t *testing.T, fake *codextest.Server, tag, name string) {
	t.Helper()
	f := upstreamFormat(t, fake, tag)
	schema, _ := f["schema"].(map[string]any)
	props, _ := schema["properties"].(map[string]any)
	if f["type"] != "json_schema" || (name != "" && f["name"] != name) || f["strict"] != true || props["celsius"] == nil {
		t.Errorf("%s: upstream text.format %v", tag, f)
	}
}

// checkToolOutputUpstream checks that the tool result went back upstream
// as a function_call_output answering the call the client saw.
func checkToolOutputUpstream(t *testing.T, fake *codextest.Server, tag, callID, output string) {
	t.Helper()
	var outs []map[string]any
	for _, r := range fake.RequestsTo("/responses") {
		if strings.Contains(string(r.Body), tag) && hasFunctionCallOutput(r.JSON) {
			outs = functionCallOutputs(r.JSON)
		}
	}
	if len(outs) != 1 || outs[0]["call_id"] != callID || !strings.Contains(fmt.Sprint(outs[0]["output"]), output) {
		t.Errorf("%s: upstream function_call_output %v, want call %q with %q", tag, outs, callID, output)
	}
}

func checkChatStream(t *testing.T, r openaiResults, nonce string) {
	t.Helper()
	cs := r.ChatStream
	if failed(t, "chat stream", cs.nodeError) {
		return
	}
	if !strings.Contains(cs.Text, nonce+"-stream") || cs.Finish != "stop" || cs.Reasoning == "" {
		t.Errorf("chat stream text %q, reasoning %q, finish %q", cs.Text, cs.Reasoning, cs.Finish)
	}
	if cs.Usage == nil || cs.Usage.TotalTokens == 0 || cs.UsageChunkChoices == nil || *cs.UsageChunkChoices != 0 {
		t.Errorf("chat stream usage (want a final chunk with usage and no choices): %+v %v", cs.Usage, cs.UsageChunkChoices)
	}
}

// checkChatStreamTool checks the SDK's streaming helper: the tool call it
// accumulated from the chunks.
func checkChatStreamTool(t *testing.T, r openaiResults, nonce string) {
	t.Helper()
	h := r.ChatStreamTool
	if failed(t, "chat stream helper with a tool", h.nodeError) {
		return
	}
	if h.Finish != "tool_calls" || h.Call == nil || h.Call.ID == "" || h.Call.Name != "get_weather" ||
		h.Args == nil || !strings.Contains(h.Args.Location, nonce+"-helpertool") || h.ArgEvents == 0 {
		t.Errorf("chat stream helper tool call: %+v call %+v args %+v", h, h.Call, h.Args)
	}
	if h.Usage == nil || h.Usage.TotalTokens == 0 {
		t.Errorf("chat stream helper usage: %+v", h.Usage)
	}
}

func checkOpenAI(t *testing.T, fake *codextest.Server, r openaiResults, nonce string) {
	checkChatStream(t, r, nonce)
	checkChatStreamTool(t, r, nonce)

	if c := r.Chat; !failed(t, "chat", c.nodeError) && (c.Object != "chat.completion" ||
		!strings.Contains(c.Text, nonce+"-chat") || c.Finish != "stop" || c.Usage == nil || c.Usage.TotalTokens == 0) {
		t.Errorf("chat: %+v usage %+v", c, c.Usage)
	}

	if tc := r.Tools; !failed(t, "chat tool round trip", tc.nodeError) {
		if tc.FirstFinish != "tool_calls" || tc.Call.Name != "get_weather" || tc.Call.ID == "" ||
			!strings.Contains(tc.Call.Arguments, nonce+"-tools") || tc.SecondFinish != "stop" || tc.SecondText == "" {
			t.Errorf("chat tool round trip: %+v", tc)
		}
		checkToolOutputUpstream(t, fake, nonce+"-tools", tc.Call.ID, "sunny-21C-"+nonce)
	}

	if raw := r.ChatStreamToolRaw; !failed(t, "chat stream with a tool", raw.nodeError) {
		// The arguments arrived in several chunks and stitch back into JSON.
		if len(raw.Calls) != 1 || raw.Calls[0].ID == "" || raw.Calls[0].Name != "get_weather" || raw.Finish != "tool_calls" ||
			raw.ArgDeltas < 2 || raw.Args == nil || !strings.Contains(raw.Args.Location, nonce+"-rawtool") {
			t.Errorf("chat stream tool call: %+v", raw)
		}
		if raw.Usage == nil || raw.Usage.TotalTokens == 0 {
			t.Errorf("chat stream tool call usage: %+v", raw.Usage)
		}
	}

	if st := r.ChatStructured; !failed(t, "chat structured output", st.nodeError) {
		if st.Finish != "stop" || st.Parsed == nil || !strings.Contains(st.Parsed.City, nonce+"-chatjson") || st.Parsed.Celsius != 42 || st.Refusal != nil {
			t.Errorf("chat structured output: %+v parsed %+v", st, st.Parsed)
		}
		checkStructuredUpstream(t, fake, nonce+"-chatjson", "weather")
	}

	if rs := r.ResponsesStream; !failed(t, "responses stream", rs.nodeError) {
		if !strings.Contains(rs.Text, nonce+"-responses") || rs.Status != "completed" || rs.Usage == nil || rs.Usage.OutputTokens == 0 {
			t.Errorf("responses stream: %+v usage %+v", rs, rs.Usage)
		}
		for _, typ := range []string{"response.created", "response.output_text.delta", "response.completed"} {
			if !containsString(rs.Types, typ) {
				t.Errorf("responses stream lacks %s: %v", typ, rs.Types)
			}
		}
	}

	if rp := r.Responses; !failed(t, "responses", rp.nodeError) && (rp.Status != "completed" ||
		!strings.Contains(rp.Text, nonce+"-responses-plain") || rp.Usage == nil || rp.Usage.InputTokens == 0 || rp.Usage.OutputTokens == 0) {
		t.Errorf("responses: %+v usage %+v", rp, rp.Usage)
	}

	if rt := r.ResponsesTool; !failed(t, "responses function call", rt.nodeError) {
		// The streamed deltas, the .done event and the finished item agree.
		if rt.Status != "completed" || rt.Call.Name != "get_weather" || rt.Call.CallID == "" ||
			rt.Deltas != rt.Call.Arguments || rt.DoneArgs != rt.Call.Arguments ||
			rt.Args == nil || !strings.Contains(rt.Args.Location, nonce+"-resptool") ||
			rt.SecondStatus != "completed" || rt.SecondText == "" {
			t.Errorf("responses function call: %+v", rt)
		}
		checkToolOutputUpstream(t, fake, nonce+"-resptool", rt.Call.CallID, "cloudy-12C-"+nonce)
	}

	if st := r.ResponsesStructured; !failed(t, "responses structured output", st.nodeError) {
		if st.Status != "completed" || st.Parsed == nil || !strings.Contains(st.Parsed.Summary, nonce+"-respjson") || st.Parsed.Celsius != 42 {
			t.Errorf("responses structured output: %+v parsed %+v", st, st.Parsed)
		}
		checkStructuredUpstream(t, fake, nonce+"-respjson", "weather")
	}

	// Node's requests went upstream with the proxy's Codex identity, not
	// the SDK's headers.
	up := upstreamRequest(t, fake, nonce+"-chat")
	if ua := up.Header.Get("User-Agent"); strings.Contains(ua, "OpenAI/JS") || up.Header.Get("X-Stainless-Lang") != "" {
		t.Errorf("client headers leaked upstream: %v", up.Header)
	}
}

// checkOpenAI6 covers what 6.x does its own way: reading a stream and the
// streaming helper's accumulation of tool-call chunks.
func checkOpenAI6(t *testing.T, r openaiResults, nonce string) {
	checkChatStream(t, r, nonce)
	checkChatStreamTool(t, r, nonce)
}

func checkAISDK(t *testing.T, fake *codextest.Server, r aiResults, nonce string) {
	for _, api := range []string{"chat", "responses"} {
		tag := nonce + "-ai-" + api
		usageOK := func(u *aiUsage) bool { return u != nil && u.InputTokens > 0 && u.OutputTokens > 0 }

		if g := r.Cases[api+"_generate"]; !failed(t, api+" generateText", g.nodeError) &&
			(!strings.Contains(g.Text, tag+"-gen") || g.FinishReason != "stop" || !usageOK(g.Usage) || g.Steps != 1) {
			t.Errorf("%s generateText: %+v usage %+v", api, g, g.Usage)
		}

		if s := r.Cases[api+"_stream"]; !failed(t, api+" streamText", s.nodeError) &&
			(!strings.Contains(s.Text, tag+"-stream") || s.Streamed != s.Text || s.Deltas < 2 ||
				s.FinishReason != "stop" || !usageOK(s.Usage)) {
			t.Errorf("%s streamText: %+v usage %+v", api, s, s.Usage)
		}

		// The SDK ran the tool and sent its result back: two steps.
		for _, c := range []struct{ name, tag string }{{api + "_tools", tag + "-tools"}, {api + "_tools_stream", tag + "-streamtool"}} {
			tr := r.Cases[c.name]
			if failed(t, c.name, tr.nodeError) {
				continue
			}
			if tr.Steps != 2 || tr.FirstFinish != "tool-calls" || len(tr.ToolCalls) != 1 || tr.ToolCalls[0].Name != "get_weather" ||
				!strings.Contains(tr.ToolCalls[0].Input.Location, c.tag) || len(tr.Executed) != 1 || tr.Executed[0] != tr.ToolCalls[0].Input.Location ||
				len(tr.ToolResults) != 1 || tr.ToolResults[0] != "sunny-21C-"+nonce ||
				tr.FinishReason != "stop" || tr.Text == "" || !usageOK(tr.Usage) {
				t.Errorf("%s: %+v usage %+v", c.name, tr, tr.Usage)
				continue
			}
			checkToolOutputUpstream(t, fake, c.tag, tr.ToolCalls[0].ID, "sunny-21C-"+nonce)
			if api == "responses" && !hasEncryptedReasoning(fake, c.tag) {
				t.Errorf("%s: with store:false the second step should carry the reasoning item inline (encrypted_content)", c.name)
			}
		}
		if api == "responses" {
			// With the SDK's default store: true the second step sends
			// item_references; the proxy resolves them from the stored
			// first step, so the upstream gets the reasoning inline.
			sd := r.Cases["responses_tools_store_default"]
			tag := tag + "-storedefault"
			switch {
			case failed(t, "responses_tools_store_default", sd.nodeError):
			case sd.Steps != 2 || len(sd.ToolCalls) != 1 || len(sd.Executed) != 1 || sd.FinishReason != "stop" || sd.Text == "":
				t.Errorf("responses tools with store left on: %+v", sd)
			default:
				checkToolOutputUpstream(t, fake, tag, sd.ToolCalls[0].ID, "sunny-21C-"+nonce)
				if !hasEncryptedReasoning(fake, tag) {
					t.Errorf("responses_tools_store_default: the item_reference to the reasoning was not resolved inline")
				}
				for _, req := range fake.RequestsTo("/responses") {
					if strings.Contains(string(req.Body), tag) && (strings.Contains(string(req.Body), "item_reference") || req.JSON["store"] != false) {
						t.Errorf("responses_tools_store_default: the upstream got state: %s", req.Body)
					}
				}
			}
		}

		for _, c := range []struct{ name, tag string }{{api + "_output_object", tag + "-output"}, {api + "_generate_object", tag + "-object"}} {
			o := r.Cases[c.name]
			if failed(t, c.name, o.nodeError) {
				continue
			}
			if o.Object == nil || !strings.Contains(o.Object.City, c.tag) || o.Object.Celsius != 42 || o.FinishReason != "stop" || !usageOK(o.Usage) {
				t.Errorf("%s: %+v object %+v", c.name, o, o.Object)
				continue
			}
			checkStructuredUpstream(t, fake, c.tag, "")
		}
	}
}

// hasEncryptedReasoning reports whether the tool-result request for tag
// re-sent the model's reasoning item with its encrypted_content.
func hasEncryptedReasoning(fake *codextest.Server, tag string) bool {
	for _, r := range fake.RequestsTo("/responses") {
		if !strings.Contains(string(r.Body), tag) || !hasFunctionCallOutput(r.JSON) {
			continue
		}
		input, _ := r.JSON["input"].([]any)
		for _, it := range input {
			if m, ok := it.(map[string]any); ok && m["type"] == "reasoning" && m["encrypted_content"] != nil && m["encrypted_content"] != "" {
				return true
			}
		}
	}
	return false
}
