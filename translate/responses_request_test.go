package translate

import (
	"slices"
	"testing"
)

// rqKeys returns the top-level keys of body in order.
func rqKeys(t *testing.T, body []byte) []string {
	t.Helper()
	o, err := parseRawObject(body)
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]string, len(o))
	for i, f := range o {
		keys[i] = f.key
	}
	return keys
}

const rqInput = `"input":[{"type":"message","role":"user","content":"hi"}]`

var responsesCases = []rqCase{
	// --- basics -----------------------------------------------------------
	{
		name: "string input wrapped, instructions added",
		body: `{"model":"gpt-5.5","input":"hello"}`,
		want: map[string]string{
			"model":        `"gpt-5.5"`,
			"instructions": `""`,
			"input":        `[{"type":"message","role":"user","content":[{"type":"input_text","text":"hello"}]}]`,
			"reasoning":    `{"summary":"auto"}`,
			"include":      `["reasoning.encrypted_content"]`,
		},
		absent: []string{"tools", "tool_choice", "parallel_tool_calls", "text", "service_tier"},
		check: func(t *testing.T, m *Mapped) {
			if m.Stream || m.ResponsesShaped || m.ToolNames != nil {
				t.Fatalf("%+v", m)
			}
		},
	},
	{
		name: "instructions kept, message content string kept",
		body: `{"model":"gpt-5.5","instructions":"Be terse.",` + rqInput + `}`,
		want: map[string]string{
			"instructions": `"Be terse."`,
			"input":        `[{"type":"message","role":"user","content":"hi"}]`,
		},
	},
	{
		name: "store and stream forced, client stream remembered",
		body: `{"model":"gpt-5.5",` + rqInput + `,"store":true,"stream":true}`,
		want: map[string]string{"store": `false`, "stream": `true`},
		check: func(t *testing.T, m *Mapped) {
			if !m.Stream {
				t.Fatal("client stream lost")
			}
		},
		dropped: []string{"store"},
	},
	{name: "store false is not reported", body: `{"model":"gpt-5.5",` + rqInput + `,"store":false,"stream":false}`},
	{
		name: "official key order, unknown keys kept sorted after",
		body: `{"zeta":1,"service_tier":"priority","text":{"verbosity":"low"},"prompt_cache_key":"k","include":[],"stream":false,
			"store":false,"reasoning":{"effort":"low"},"parallel_tool_calls":false,"tool_choice":"auto",
			"tools":[{"type":"function","name":"f","parameters":{}}],` + rqInput + `,"instructions":"i","model":"gpt-5.5",
			"client_metadata":{"x":"y"},"max_tool_calls":3}`,
		check: func(t *testing.T, m *Mapped) {
			want := []string{"model", "instructions", "input", "tools", "tool_choice", "parallel_tool_calls", "reasoning",
				"store", "stream", "include", "prompt_cache_key", "text", "service_tier", "client_metadata", "max_tool_calls", "zeta"}
			if got := rqKeys(t, m.Body); !slices.Equal(got, want) {
				t.Fatalf("keys = %v\nwant   %v", got, want)
			}
		},
		want: map[string]string{
			"client_metadata":     `{"x":"y"}`,
			"max_tool_calls":      `3`,
			"zeta":                `1`,
			"prompt_cache_key":    `"k"`,
			"parallel_tool_calls": `false`,
			"service_tier":        `"priority"`,
		},
	},
	{
		name: "every rejected parameter dropped",
		body: `{"model":"gpt-5.5",` + rqInput + `,"max_output_tokens":5,"max_completion_tokens":5,"temperature":1,"top_p":1,
			"truncation":"auto","prompt_cache_retention":"24h","prompt_cache_options":{},"safety_identifier":"s",
			"context_management":[{"type":"compaction"}],"user":"u","metadata":{},"stream_options":{"include_usage":true},
			"service_tier":"flex","background":true,"conversation":"conv_1","parallel_tool_calls":true}`,
		dropped: []string{"background", "context_management", "conversation", "max_completion_tokens", "max_output_tokens",
			"metadata", "parallel_tool_calls", "prompt_cache_options", "prompt_cache_retention", "safety_identifier",
			"service_tier", "stream_options", "temperature", "top_p", "truncation", "user"},
		check: func(t *testing.T, m *Mapped) {
			if !m.IncludeUsage {
				t.Fatal("stream_options.include_usage not read")
			}
		},
	},

	// --- errors -------------------------------------------------------------
	{name: "invalid json", body: `{"model":"gpt-5.5","input":[}`, errContains: "byte offset 28", errCode: codeInvalidJSON},
	{name: "missing model", body: `{` + rqInput + `}`, errParam: "model"},
	{name: "missing input", body: `{"model":"gpt-5.5"}`, errParam: "input", errCode: codeMissingParam},
	{name: "empty input", body: `{"model":"gpt-5.5","input":[]}`, errParam: "input"},
	{name: "input number", body: `{"model":"gpt-5.5","input":5}`, errParam: "input", errCode: codeInvalidType},
	{name: "input item not an object", body: `{"model":"gpt-5.5","input":["hi"]}`, errParam: "input[0]"},
	{name: "input item without type or role", body: `{"model":"gpt-5.5","input":[{"content":"hi"}]}`, errParam: "input[0].type"},
	{name: "instructions not a string", body: `{"model":"gpt-5.5","instructions":["a"],` + rqInput + `}`, errParam: "instructions", errCode: codeInvalidType},
	{name: "previous_response_id", body: `{"model":"gpt-5.5",` + rqInput + `,"previous_response_id":"resp_1"}`, errParam: "previous_response_id", errContains: "stateless"},
	{
		name:        "item_reference rejected",
		body:        `{"model":"gpt-5.5","input":[{"type":"message","role":"user","content":"hi"},{"type":"item_reference","id":"msg_1"}]}`,
		errParam:    "input[1]",
		errContains: "stateless",
	},
	{
		name:        "output for unknown call",
		body:        `{"model":"gpt-5.5","input":[{"role":"user","content":"x"},{"type":"function_call_output","call_id":"call_nope","output":"r"}]}`,
		errParam:    "input[1].call_id",
		errContains: `"call_nope"`,
		errCode:     codeToolPairing,
	},
	{
		name: "duplicate call ids",
		body: `{"model":"gpt-5.5","input":[{"role":"user","content":"x"},{"type":"function_call","call_id":"c1","name":"f","arguments":"{}"},
			{"type":"function_call","call_id":"c1","name":"g","arguments":"{}"}]}`,
		errParam:    "input[2].call_id",
		errContains: `"c1"`,
	},
	{
		name:     "function call without call_id",
		body:     `{"model":"gpt-5.5","input":[{"role":"user","content":"x"},{"type":"function_call","name":"f","arguments":"{}"}]}`,
		errParam: "input[1].call_id",
	},
	{name: "bad reasoning effort", body: `{"model":"gpt-5.5",` + rqInput + `,"reasoning":{"effort":"lots"}}`, errParam: "reasoning.effort"},
	{name: "bad reasoning summary", body: `{"model":"gpt-5.5",` + rqInput + `,"reasoning":{"summary":"long"}}`, errParam: "reasoning.summary"},
	{name: "include not strings", body: `{"model":"gpt-5.5",` + rqInput + `,"include":[1]}`, errParam: "include"},
	{name: "text not an object", body: `{"model":"gpt-5.5",` + rqInput + `,"text":"x"}`, errParam: "text"},
	{name: "tools not an array", body: `{"model":"gpt-5.5",` + rqInput + `,"tools":{"type":"web_search"}}`, errParam: "tools"},
	{name: "tool without type", body: `{"model":"gpt-5.5",` + rqInput + `,"tools":[{"name":"f"}]}`, errParam: "tools[0].type"},
	{name: "function tool without name", body: `{"model":"gpt-5.5",` + rqInput + `,"tools":[{"type":"function"}]}`, errParam: "tools[0].name"},
	{name: "duplicate function tools", body: `{"model":"gpt-5.5",` + rqInput + `,"tools":[{"type":"function","name":"f"},{"type":"function","name":"f"}]}`, errParam: "tools[1]"},
	{name: "n above one", body: `{"model":"gpt-5.5",` + rqInput + `,"n":3}`, errParam: "n"},
	{
		name:        "bad base64 image",
		body:        `{"model":"gpt-5.5","input":[{"role":"user","content":[{"type":"input_image","image_url":"data:image/png;base64,%%%"}]}]}`,
		errParam:    "input[0].content[0].image_url",
		errContains: "image_url data is not valid base64",
	},

	// --- items --------------------------------------------------------------
	{
		name: "ids stripped, system becomes developer, role-only items typed",
		body: `{"model":"gpt-5.5","input":[
			{"type":"message","id":"msg_1","role":"system","content":"rules"},
			{"role":"user","content":[{"type":"input_text","text":"hi"}],"id":"msg_2"},
			{"type":"reasoning","id":"rs_1","summary":[{"type":"summary_text","text":"s"}],"encrypted_content":"gAAA"},
			{"type":"function_call","id":"fc_1","call_id":"c1","name":"f","arguments":"{\"a\": 1}"},
			{"type":"function_call_output","id":"fco_1","call_id":"c1","output":"r"},
			{"type":"message","role":"assistant","id":"msg_3","content":[{"type":"output_text","text":"ok","annotations":[]}]}]}`,
		want: map[string]string{
			"input": `[{"type":"message","role":"developer","content":"rules"},
				{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]},
				{"type":"reasoning","summary":[{"type":"summary_text","text":"s"}],"encrypted_content":"gAAA"},
				{"type":"function_call","call_id":"c1","name":"f","arguments":"{\"a\": 1}"},
				{"type":"function_call_output","call_id":"c1","output":"r"},
				{"type":"message","role":"assistant","content":[{"type":"output_text","text":"ok","annotations":[]}]}]`,
		},
	},
	{
		name: "reasoning_text content removed",
		body: `{"model":"gpt-5.5","input":[{"role":"user","content":"x"},{"type":"reasoning","summary":[],"content":[{"type":"reasoning_text","text":"raw"}],"encrypted_content":"e"}]}`,
		want: map[string]string{"input.1": `{"type":"reasoning","summary":[],"encrypted_content":"e"}`},
	},
	{
		name: "missing output repaired",
		body: `{"model":"gpt-5.5","input":[{"role":"user","content":"x"},
			{"type":"function_call","call_id":"c1","name":"f","arguments":"{}"},
			{"type":"custom_tool_call","call_id":"c2","name":"apply_patch","input":"p"},
			{"role":"user","content":"never mind"}]}`,
		want: map[string]string{
			"input.3": `{"type":"function_call_output","call_id":"c1","output":"aborted"}`,
			"input.4": `{"type":"custom_tool_call_output","call_id":"c2","output":"aborted"}`,
			"input.5": `{"type":"message","role":"user","content":"never mind"}`,
		},
	},
	{
		name: "empty call_id paired with the single pending call",
		body: `{"model":"gpt-5.5","input":[{"role":"user","content":"x"},{"type":"function_call","call_id":"c1","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"","output":"r"}]}`,
		want: map[string]string{"input.2": `{"type":"function_call_output","call_id":"c1","output":"r"}`},
	},
	{
		name: "data url re-padded and cache breakpoints removed",
		body: `{"model":"gpt-5.5","input":[{"role":"user","content":[
			{"type":"input_text","text":"see","prompt_cache_breakpoint":{"type":"ephemeral"}},
			{"type":"input_image","image_url":"data:image/png;base64,aGk-_w","detail":"auto"},
			{"type":"input_image","image_url":"https://example.com/x.png"},
			{"type":"input_file","file_data":"data:application/pdf;base64,JVBERi0","filename":"a.pdf"}]}]}`,
		want: map[string]string{"input.0.content": `[{"type":"input_text","text":"see"},
			{"type":"input_image","image_url":"data:image/png;base64,aGk+/w==","detail":"auto"},
			{"type":"input_image","image_url":"https://example.com/x.png"},
			{"type":"input_file","file_data":"data:application/pdf;base64,JVBERi0=","filename":"a.pdf"}]`},
	},
	{
		name: "other item types pass through without ids",
		body: `{"model":"gpt-5.5","input":[{"role":"user","content":"x"},
			{"type":"web_search_call","id":"ws_1","status":"completed","action":{"type":"search","query":"q"}},
			{"type":"compaction","encrypted_content":"blob"}]}`,
		want: map[string]string{
			"input.1": `{"type":"web_search_call","status":"completed","action":{"type":"search","query":"q"}}`,
			"input.2": `{"type":"compaction","encrypted_content":"blob"}`,
		},
	},

	// --- tools --------------------------------------------------------------
	{
		name: "tools passed through, web_search_preview renamed",
		body: `{"model":"gpt-5.5",` + rqInput + `,"tools":[
			{"type":"function","name":"f","description":"d","parameters":{"type":"object"},"strict":true},
			{"type":"web_search_preview","user_location":{"type":"approximate"}},
			{"type":"web_search_preview_2025_03_11"},
			{"type":"namespace","name":"ns","tools":[{"type":"function","name":"g"}]},
			{"type":"custom","name":"apply_patch","format":{"type":"text"}},
			{"type":"image_generation","output_format":"png"},
			{"type":"local_shell"}],"tool_choice":"required","parallel_tool_calls":false}`,
		want: map[string]string{
			"tools": `[{"type":"function","name":"f","description":"d","parameters":{"type":"object"},"strict":true},
				{"type":"web_search","user_location":{"type":"approximate"}},
				{"type":"web_search"},
				{"type":"namespace","name":"ns","tools":[{"type":"function","name":"g"}]},
				{"type":"custom","name":"apply_patch","format":{"type":"text"}},
				{"type":"image_generation","output_format":"png"},
				{"type":"local_shell"}]`,
			"tool_choice":         `"required"`,
			"parallel_tool_calls": `false`,
		},
	},
	{
		name: "chat-style tools flattened",
		body: `{"model":"gpt-5.5",` + rqInput + `,"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":{"type":"function","function":{"name":"f"}}}`,
		want: map[string]string{
			"tools":       `[{"type":"function","name":"f","description":"","parameters":{"type":"object"},"strict":false}]`,
			"tool_choice": `{"type":"function","name":"f"}`,
		},
	},
	{
		name: "long names shortened in tools, tool_choice and history",
		body: `{"model":"gpt-5.5","input":[{"role":"user","content":"x"},
			{"type":"function_call","call_id":"c1","name":"` + rqLongTool + `","arguments":"{}"},
			{"type":"function_call_output","call_id":"c1","output":"r"}],
			"tools":[{"type":"function","name":"` + rqLongTool + `","parameters":{"type":"object"}}],
			"tool_choice":{"type":"function","name":"` + rqLongTool + `"}}`,
		want: map[string]string{
			"tools.0":      `{"type":"function","name":"` + ShortenToolName(rqLongTool) + `","parameters":{"type":"object"}}`,
			"tool_choice":  `{"type":"function","name":"` + ShortenToolName(rqLongTool) + `"}`,
			"input.1.name": `"` + ShortenToolName(rqLongTool) + `"`,
		},
		check: func(t *testing.T, m *Mapped) {
			if m.ToolNames.Restore(ShortenToolName(rqLongTool)) != rqLongTool {
				t.Fatalf("ToolNames = %v", m.ToolNames)
			}
		},
	},
	{name: "tool_choice none kept with tools", body: `{"model":"gpt-5.5",` + rqInput + `,"tools":[{"type":"function","name":"f"}],"tool_choice":"none"}`, want: map[string]string{"tool_choice": `"none"`}},
	{name: "tool_choice built-in renamed", body: `{"model":"gpt-5.5",` + rqInput + `,"tools":[{"type":"web_search"}],"tool_choice":{"type":"web_search_preview"}}`, want: map[string]string{"tool_choice": `{"type":"web_search"}`}},
	{name: "tool_choice flat function untouched", body: `{"model":"gpt-5.5",` + rqInput + `,"tools":[{"type":"function","name":"f"}],"tool_choice":{"type":"function","name":"f"}}`, want: map[string]string{"tool_choice": `{"type":"function","name":"f"}`}},
	{name: "tool_choice function without name", body: `{"model":"gpt-5.5",` + rqInput + `,"tools":[{"type":"function","name":"f"}],"tool_choice":{"type":"function"}}`, errParam: "tool_choice"},
	{name: "tool_choice wrong type", body: `{"model":"gpt-5.5",` + rqInput + `,"tools":[{"type":"function","name":"f"}],"tool_choice":true}`, errParam: "tool_choice", errCode: codeInvalidType},
	{name: "tool name wrong type", body: `{"model":"gpt-5.5",` + rqInput + `,"tools":[{"type":"function","name":5}]}`, errParam: "tools[0].name", errCode: codeInvalidType},
	{name: "item type wrong type", body: `{"model":"gpt-5.5","input":[{"type":5}]}`, errParam: "input[0].type", errCode: codeInvalidType},
	{name: "item role wrong type", body: `{"model":"gpt-5.5","input":[{"type":"message","role":5,"content":"x"}]}`, errParam: "input[0].role", errCode: codeInvalidType},
	{name: "message without role", body: `{"model":"gpt-5.5","input":[{"type":"message","content":"x"}]}`, errParam: "input[0].role", errCode: codeMissingParam},
	{
		name: "exact keys: a capitalised Type is not the type",
		body: `{"model":"gpt-5.5","input":[{"type":"message","role":"user","content":"x","Type":"item_reference"}]}`,
		want: map[string]string{"input.0": `{"type":"message","role":"user","content":"x","Type":"item_reference"}`},
	},
	{
		name: "local shell call paired",
		body: `{"model":"gpt-5.5","input":[{"role":"user","content":"x"},{"type":"local_shell_call","call_id":"ls1","status":"completed","action":{"type":"exec","command":["ls"]}},{"type":"local_shell_call","id":"lsc_old","status":"completed","action":{"type":"exec","command":["pwd"]}}]}`,
		want: map[string]string{
			"input.2": `{"type":"function_call_output","call_id":"ls1","output":"aborted"}`,
			"input.3": `{"type":"local_shell_call","status":"completed","action":{"type":"exec","command":["pwd"]}}`,
		},
	},
	{
		name:    "tool_choice and parallel_tool_calls removed without tools",
		body:    `{"model":"gpt-5.5",` + rqInput + `,"tools":[],"tool_choice":"auto","parallel_tool_calls":true}`,
		absent:  []string{"tools", "tool_choice", "parallel_tool_calls"},
		dropped: []string{"parallel_tool_calls", "tool_choice"},
	},

	// --- reasoning, include, text -------------------------------------------
	{
		name: "suffix becomes reasoning.effort",
		body: `{"model":"gpt-5.5-xhigh",` + rqInput + `}`,
		want: map[string]string{"model": `"gpt-5.5"`, "reasoning": `{"effort":"xhigh","summary":"auto"}`},
		check: func(t *testing.T, m *Mapped) {
			if m.ClientModel != "gpt-5.5-xhigh" || m.UpstreamModel != "gpt-5.5" || m.Effort != "xhigh" {
				t.Fatalf("%+v", m)
			}
		},
	},
	{name: "body effort beats suffix", body: `{"model":"gpt-5.5-xhigh",` + rqInput + `,"reasoning":{"effort":"low","summary":"concise"}}`, want: map[string]string{"reasoning": `{"effort":"low","summary":"concise"}`}},
	{name: "codex effort clamped", body: `{"model":"gpt-5.3-codex",` + rqInput + `,"reasoning":{"effort":"none"}}`, want: map[string]string{"reasoning": `{"effort":"low","summary":"auto"}`}},
	{name: "chat-style reasoning_effort accepted", body: `{"model":"gpt-5.5",` + rqInput + `,"reasoning_effort":"high"}`, want: map[string]string{"reasoning.effort": `"high"`}},
	{
		name: "include keeps client entries",
		body: `{"model":"gpt-5.5",` + rqInput + `,"include":["web_search_call.action.sources","reasoning.encrypted_content"]}`,
		want: map[string]string{"include": `["web_search_call.action.sources","reasoning.encrypted_content"]`},
	},
	{
		name: "reasoning off removes encrypted include",
		body: `{"model":"gpt-5.5-none",` + rqInput + `,"include":["reasoning.encrypted_content","message.output_text.logprobs"]}`,
		want: map[string]string{"reasoning": `{"effort":"none"}`, "include": `["message.output_text.logprobs"]`},
	},
	{
		name:    "text.verbosity removed for codex, format kept",
		body:    `{"model":"gpt-5.3-codex",` + rqInput + `,"text":{"format":{"type":"json_object"},"verbosity":"low"}}`,
		want:    map[string]string{"text": `{"format":{"type":"json_object"}}`},
		dropped: []string{"text.verbosity"},
	},
	{
		name:    "text removed entirely when only verbosity on codex",
		body:    `{"model":"gpt-5.3-codex-spark",` + rqInput + `,"text":{"verbosity":"medium"}}`,
		absent:  []string{"text"},
		dropped: []string{"text.verbosity"},
	},
	{name: "text.verbosity kept for general", body: `{"model":"gpt-5.4",` + rqInput + `,"text":{"verbosity":"high"}}`, want: map[string]string{"text": `{"verbosity":"high"}`}},
	{
		name: "chat response_format in a responses body",
		body: `{"model":"gpt-5.4",` + rqInput + `,"response_format":{"type":"json_object"},"verbosity":"low"}`,
		want: map[string]string{"text": `{"format":{"type":"json_object"},"verbosity":"low"}`},
	},
	{name: "client cache key kept", body: `{"model":"gpt-5.5",` + rqInput + `,"prompt_cache_key":"abc"}`, want: map[string]string{"prompt_cache_key": `"abc"`}, check: func(t *testing.T, m *Mapped) { mustEqual(t, m.PromptCacheKey, "abc") }},
	{name: "service tier priority", body: `{"model":"gpt-5.5",` + rqInput + `,"service_tier":"priority"}`, want: map[string]string{"service_tier": `"priority"`}, check: func(t *testing.T, m *Mapped) { mustEqual(t, m.ServiceTier, "priority") }},
}

func TestNormalizeResponses(t *testing.T) {
	runRequestCases(t, NormalizeResponses, responsesCases)
}

func TestResponsesPromptCacheKey(t *testing.T) {
	key := func(body string, salt string) string {
		t.Helper()
		return rqMust(t, NormalizeResponses, body, RequestOptions{CacheKeySalt: salt}).PromptCacheKey
	}
	turn1 := `{"model":"gpt-5.5","instructions":"I","input":[{"role":"developer","content":"D"},{"role":"user","content":"Q1"}]}`
	turn2 := `{"model":"gpt-5.4","instructions":"I","input":[{"role":"developer","content":"D"},{"role":"user","content":"Q1"},
		{"type":"message","role":"assistant","content":[{"type":"output_text","text":"A1"}]},{"role":"user","content":"Q2"}]}`
	other := `{"model":"gpt-5.5","instructions":"I","input":[{"role":"developer","content":"D"},{"role":"user","content":"Q9"}]}`
	otherInstr := `{"model":"gpt-5.5","instructions":"J","input":[{"role":"developer","content":"D"},{"role":"user","content":"Q1"}]}`
	k1 := key(turn1, "")
	if key(turn2, "") != k1 {
		t.Fatal("key changed across turns")
	}
	if key(other, "") == k1 || key(otherInstr, "") == k1 || key(turn1, "salt") == k1 {
		t.Fatal("distinct conversations or salts share a key")
	}
	if key(`{"model":"gpt-5.5","input":"Q1"}`, "") != key(`{"model":"gpt-5.5","input":[{"role":"user","content":"Q1"}]}`, "") {
		t.Fatal("string input and the equivalent item differ")
	}
}
