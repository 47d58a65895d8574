package translate

import (
	"strings"
	"testing"
)

// rqLongTool is an MCP tool name over the 64-character limit.
var rqLongTool = "mcp__" + strings.Repeat("server", 12) + "__list_pull_requests"

// rqUser is a one-message conversation to build bodies around.
const rqUser = `"messages":[{"role":"user","content":"hi"}]`

var chatCases = []rqCase{
	// --- basics -----------------------------------------------------------
	{
		name: "minimal user string",
		body: `{"model":"gpt-5.5",` + rqUser + `}`,
		want: map[string]string{
			"model":        `"gpt-5.5"`,
			"instructions": `""`,
			"input":        `[{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]}]`,
			"reasoning":    `{"summary":"auto"}`,
			"include":      `["reasoning.encrypted_content"]`,
		},
		absent: []string{"tools", "tool_choice", "parallel_tool_calls", "text", "service_tier", "reasoning.effort"},
		check: func(t *testing.T, m *Mapped) {
			if m.Stream || m.IncludeUsage || m.ResponsesShaped || m.ToolNames != nil || m.Effort != "" {
				t.Fatalf("unexpected flags: %+v", m)
			}
			if m.ClientModel != "gpt-5.5" || m.UpstreamModel != "gpt-5.5" {
				t.Fatalf("models: %q %q", m.ClientModel, m.UpstreamModel)
			}
		},
	},
	{
		name:    "stream and include_usage",
		body:    `{"model":"gpt-5.5","stream":true,"stream_options":{"include_usage":true},` + rqUser + `}`,
		dropped: []string{"stream_options"},
		check: func(t *testing.T, m *Mapped) {
			if !m.Stream || !m.IncludeUsage {
				t.Fatalf("Stream=%v IncludeUsage=%v", m.Stream, m.IncludeUsage)
			}
		},
	},
	{
		name: "client model echoed, provider prefix stripped",
		body: `{"model":"openai/gpt-5.5-high",` + rqUser + `}`,
		want: map[string]string{"model": `"gpt-5.5"`, "reasoning": `{"effort":"high","summary":"auto"}`},
		check: func(t *testing.T, m *Mapped) {
			if m.ClientModel != "openai/gpt-5.5-high" || m.UpstreamModel != "gpt-5.5" || m.Effort != "high" {
				t.Fatalf("%+v", m)
			}
		},
	},
	{
		name: "html characters are not escaped",
		body: `{"model":"gpt-5.5","messages":[{"role":"user","content":"<b>a & b</b>"}]}`,
		check: func(t *testing.T, m *Mapped) {
			if !strings.Contains(string(m.Body), `"<b>a & b</b>"`) {
				t.Fatalf("text was escaped: %s", m.Body)
			}
		},
	},

	// --- dropped parameters -------------------------------------------------
	{
		name: "every rejected parameter is dropped and listed",
		body: `{"model":"gpt-5.5",` + rqUser + `,"temperature":0.2,"top_p":0.9,"top_k":5,"max_tokens":10,
			"max_completion_tokens":10,"max_output_tokens":10,"stop":["x"],"presence_penalty":1,
			"frequency_penalty":1,"logit_bias":{"1":2},"logprobs":true,"top_logprobs":2,"seed":7,
			"user":"u","metadata":{"a":"b"},"stream_options":{"include_usage":false},"store":true,
			"truncation":"auto","prompt_cache_retention":"24h","safety_identifier":"s","modalities":["text"],
			"audio":{"voice":"x"},"prediction":{"type":"content"},"web_search_options":{},"n":1,
			"parallel_tool_calls":false,"some_future_param":{"x":1}}`,
		dropped: []string{"audio", "frequency_penalty", "logit_bias", "logprobs", "max_completion_tokens",
			"max_output_tokens", "max_tokens", "metadata", "modalities", "n", "parallel_tool_calls",
			"prediction", "presence_penalty", "prompt_cache_retention", "safety_identifier", "seed",
			"some_future_param", "stop", "store", "stream_options", "temperature", "top_k", "top_logprobs",
			"top_p", "truncation", "user", "web_search_options"},
		absent: []string{"parallel_tool_calls"},
	},
	{
		name:    "null n is dropped",
		body:    `{"model":"gpt-5.5",` + rqUser + `,"n":null}`,
		dropped: []string{"n"},
	},

	// --- errors: body and top-level parameters ------------------------------
	{name: "invalid json names the offset", body: `{"model":"gpt-5.5","messages":[}`, errContains: "byte offset 31", errCode: codeInvalidJSON},
	{name: "truncated json", body: `{"model":`, errContains: "not valid JSON", errCode: codeInvalidJSON},
	{name: "empty body", body: ` `, errContains: "empty"},
	{name: "array body", body: `[{"model":"x"}]`, errContains: "must be a JSON object, got array"},
	{name: "null body", body: `null`, errContains: "must be a JSON object"},
	{name: "missing model", body: `{` + rqUser + `}`, errParam: "model", errCode: codeMissingParam},
	{name: "empty model", body: `{"model":" ",` + rqUser + `}`, errParam: "model"},
	{name: "model not a string", body: `{"model":5,` + rqUser + `}`, errParam: "model", errCode: codeInvalidType},
	{name: "missing messages", body: `{"model":"gpt-5.5"}`, errParam: "messages", errCode: codeMissingParam},
	{name: "null messages", body: `{"model":"gpt-5.5","messages":null}`, errParam: "messages"},
	{name: "empty messages", body: `{"model":"gpt-5.5","messages":[]}`, errParam: "messages"},
	{name: "messages not an array", body: `{"model":"gpt-5.5","messages":"hi"}`, errParam: "messages", errContains: "expected an array"},
	{name: "message not an object", body: `{"model":"gpt-5.5","messages":["hi"]}`, errParam: "messages[0]"},
	{name: "missing role", body: `{"model":"gpt-5.5","messages":[{"content":"hi"}]}`, errParam: "messages[0].role"},
	{name: "unknown role", body: `{"model":"gpt-5.5","messages":[{"role":"robot","content":"hi"}]}`, errParam: "messages[0].role"},
	{name: "role wrong type", body: `{"model":"gpt-5.5","messages":[{"role":1,"content":"hi"}]}`, errParam: "messages[0].role", errCode: codeInvalidType},
	{name: "n above one", body: `{"model":"gpt-5.5",` + rqUser + `,"n":2}`, errParam: "n"},
	{name: "n zero", body: `{"model":"gpt-5.5",` + rqUser + `,"n":0}`, errParam: "n"},
	{name: "n fractional", body: `{"model":"gpt-5.5",` + rqUser + `,"n":1.5}`, errParam: "n"},
	{name: "n not a number", body: `{"model":"gpt-5.5",` + rqUser + `,"n":"1"}`, errParam: "n"},
	{name: "previous_response_id rejected", body: `{"model":"gpt-5.5",` + rqUser + `,"previous_response_id":"resp_1"}`, errParam: "previous_response_id", errContains: "full conversation history"},
	{name: "stream not a bool", body: `{"model":"gpt-5.5",` + rqUser + `,"stream":"yes"}`, errParam: "stream"},
	{name: "include_usage not a bool", body: `{"model":"gpt-5.5",` + rqUser + `,"stream_options":{"include_usage":1}}`, errParam: "stream_options.include_usage"},
	{name: "bad reasoning_effort", body: `{"model":"gpt-5.5",` + rqUser + `,"reasoning_effort":"turbo"}`, errParam: "reasoning_effort", errCode: codeInvalidValue},
	{name: "reasoning_effort not a string", body: `{"model":"gpt-5.5",` + rqUser + `,"reasoning_effort":3}`, errParam: "reasoning_effort"},
	{name: "bad reasoning.effort", body: `{"model":"gpt-5.5",` + rqUser + `,"reasoning":{"effort":"huge"}}`, errParam: "reasoning.effort"},
	{name: "bad reasoning.summary", body: `{"model":"gpt-5.5",` + rqUser + `,"reasoning":{"summary":"verbose"}}`, errParam: "reasoning.summary"},
	{name: "reasoning not an object", body: `{"model":"gpt-5.5",` + rqUser + `,"reasoning":"high"}`, errParam: "reasoning"},
	{name: "bad verbosity", body: `{"model":"gpt-5.5",` + rqUser + `,"verbosity":"loud"}`, errParam: "verbosity"},

	// --- errors: exact locations from the element-by-element decode -------
	{
		name:     "tool call name of the wrong type",
		body:     `{"model":"gpt-5.5","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"a","function":{"name":"f"}},{"id":"b","function":{"name":7}}]}]}`,
		errParam: "messages[1].tool_calls[1].function.name", errCode: codeInvalidType,
	},
	{
		name:     "tool_calls not an array",
		body:     `{"model":"gpt-5.5","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":{"id":"a"}}]}`,
		errParam: "messages[1].tool_calls", errContains: "expected an array",
	},
	{
		name:     "tool call not an object",
		body:     `{"model":"gpt-5.5","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":["a"]}]}`,
		errParam: "messages[1].tool_calls[0]",
	},
	{
		name:     "content part not an object",
		body:     `{"model":"gpt-5.5","messages":[{"role":"user","content":[{"type":"text","text":"a"},"b"]}]}`,
		errParam: "messages[0].content[1]",
	},
	{
		name:     "content part text of the wrong type",
		body:     `{"model":"gpt-5.5","messages":[{"role":"user","content":[{"type":"text","text":1}]}]}`,
		errParam: "messages[0].content[0].text", errCode: codeInvalidType,
	},
	{
		name:     "tool_call_id of the wrong type",
		body:     `{"model":"gpt-5.5","messages":[{"role":"user","content":"x"},{"role":"tool","tool_call_id":1,"content":"x"}]}`,
		errParam: "messages[1].tool_call_id", errCode: codeInvalidType,
	},

	// --- errors: content ----------------------------------------------------
	{
		name:     "input_audio rejected",
		body:     `{"model":"gpt-5.5","messages":[{"role":"user","content":[{"type":"text","text":"listen"},{"type":"input_audio","input_audio":{"data":"aGk=","format":"wav"}}]}]}`,
		errParam: "messages[0].content[1]", errCode: codeUnsupportedCont,
	},
	{
		name:     "file_id rejected",
		body:     `{"model":"gpt-5.5","messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"file-123"}}]}]}`,
		errParam: "messages[0].content[0]", errContains: "file-123", errCode: codeUnsupportedCont,
	},
	{
		name:     "unknown part type rejected",
		body:     `{"model":"gpt-5.5","messages":[{"role":"user","content":[{"type":"video","video":"x"}]}]}`,
		errParam: "messages[0].content[0]", errCode: codeUnsupportedCont,
	},
	{
		name:     "part without type",
		body:     `{"model":"gpt-5.5","messages":[{"role":"user","content":[{"text":"x"}]}]}`,
		errParam: "messages[0].content[0].type",
	},
	{
		name:     "text part without text",
		body:     `{"model":"gpt-5.5","messages":[{"role":"user","content":[{"type":"text"}]}]}`,
		errParam: "messages[0].content[0].text",
	},
	{name: "user content null", body: `{"model":"gpt-5.5","messages":[{"role":"user","content":null}]}`, errParam: "messages[0].content"},
	{name: "user content empty array", body: `{"model":"gpt-5.5","messages":[{"role":"user","content":[]}]}`, errParam: "messages[0].content"},
	{name: "user content number", body: `{"model":"gpt-5.5","messages":[{"role":"user","content":5}]}`, errParam: "messages[0].content", errCode: codeInvalidType},
	{
		name:        "bad base64 image",
		body:        `{"model":"gpt-5.5","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,@@@@"}}]}]}`,
		errParam:    "messages[0].content[0].image_url",
		errContains: "image_url data is not valid base64",
	},
	{
		name:        "image data in the middle padding",
		body:        `{"model":"gpt-5.5","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,aG=k"}}]}]}`,
		errParam:    "messages[0].content[0].image_url",
		errContains: "not valid base64",
	},
	{
		name:     "image bad scheme",
		body:     `{"model":"gpt-5.5","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x/y.png"}}]}]}`,
		errParam: "messages[0].content[0].image_url",
	},
	{
		name:     "image data url not base64",
		body:     `{"model":"gpt-5.5","messages":[{"role":"user","content":[{"type":"image_url","image_url":"data:image/png,raw"}]}]}`,
		errParam: "messages[0].content[0].image_url",
	},
	{
		name:     "image data url of a non-image type",
		body:     `{"model":"gpt-5.5","messages":[{"role":"user","content":[{"type":"image_url","image_url":"data:text/plain;base64,aGk="}]}]}`,
		errParam: "messages[0].content[0].image_url",
	},
	{
		name:     "image without url",
		body:     `{"model":"gpt-5.5","messages":[{"role":"user","content":[{"type":"image_url"}]}]}`,
		errParam: "messages[0].content[0].image_url",
	},
	{
		name:     "image in system message",
		body:     `{"model":"gpt-5.5","messages":[{"role":"system","content":[{"type":"image_url","image_url":"https://x/y.png"}]},{"role":"user","content":"x"}]}`,
		errParam: "messages[0].content[0]", errCode: codeUnsupportedCont,
	},
	{
		name:     "image in assistant message",
		body:     `{"model":"gpt-5.5","messages":[{"role":"user","content":"x"},{"role":"assistant","content":[{"type":"image_url","image_url":"https://x/y.png"}]}]}`,
		errParam: "messages[1].content[0]", errCode: codeUnsupportedCont,
	},
	{
		name:     "bad file data",
		body:     `{"model":"gpt-5.5","messages":[{"role":"user","content":[{"type":"file","file":{"file_data":"data:application/pdf;base64,!!","filename":"a.pdf"}}]}]}`,
		errParam: "messages[0].content[0].file.file_data",
	},

	// --- errors: tool pairing -----------------------------------------------
	{
		name: "output for an unknown call id",
		body: `{"model":"gpt-5.5","messages":[{"role":"user","content":"x"},
			{"role":"assistant","tool_calls":[{"id":"call_a","type":"function","function":{"name":"f","arguments":"{}"}}]},
			{"role":"tool","tool_call_id":"call_zzz","content":"r"}]}`,
		errParam: "messages[2].tool_call_id", errContains: `"call_zzz"`, errCode: codeToolPairing,
	},
	{
		name: "output before its call",
		body: `{"model":"gpt-5.5","messages":[{"role":"user","content":"x"},{"role":"tool","tool_call_id":"call_a","content":"r"},
			{"role":"assistant","tool_calls":[{"id":"call_a","type":"function","function":{"name":"f"}}]}]}`,
		errParam: "messages[1].tool_call_id", errContains: "call_a",
	},
	{
		name: "duplicate call ids",
		body: `{"model":"gpt-5.5","messages":[{"role":"user","content":"x"},
			{"role":"assistant","tool_calls":[{"id":"call_dup","type":"function","function":{"name":"f"}},{"id":"call_dup","type":"function","function":{"name":"g"}}]}]}`,
		errParam: "messages[1].tool_calls[1]", errContains: `"call_dup"`, errCode: codeToolPairing,
	},
	{
		name: "duplicate outputs",
		body: `{"model":"gpt-5.5","messages":[{"role":"user","content":"x"},
			{"role":"assistant","tool_calls":[{"id":"call_a","type":"function","function":{"name":"f"}}]},
			{"role":"tool","tool_call_id":"call_a","content":"1"},{"role":"tool","tool_call_id":"call_a","content":"2"}]}`,
		errParam: "messages[3].tool_call_id", errContains: `"call_a"`,
	},
	{
		name:        "missing tool_call_id with nothing pending",
		body:        `{"model":"gpt-5.5","messages":[{"role":"user","content":"x"},{"role":"tool","content":"r"}]}`,
		errParam:    "messages[1].tool_call_id",
		errContains: "no tool call is waiting",
	},
	{
		name: "missing tool_call_id with two pending",
		body: `{"model":"gpt-5.5","messages":[{"role":"user","content":"x"},
			{"role":"assistant","tool_calls":[{"id":"call_a","function":{"name":"f"}},{"id":"call_b","function":{"name":"g"}}]},
			{"role":"tool","content":"r"}]}`,
		errParam: "messages[2].tool_call_id", errContains: "2 tool calls",
	},
	{
		name:     "legacy function result without a call",
		body:     `{"model":"gpt-5.5","messages":[{"role":"user","content":"x"},{"role":"function","name":"f","content":"r"}]}`,
		errParam: "messages[1].name", errCode: codeToolPairing,
	},
	{
		name:     "tool call without a name",
		body:     `{"model":"gpt-5.5","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"c","function":{"arguments":"{}"}}]}]}`,
		errParam: "messages[1].tool_calls[0].function.name",
	},
	{
		name:     "tool call arguments of the wrong type",
		body:     `{"model":"gpt-5.5","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"c","function":{"name":"f","arguments":5}}]}]}`,
		errParam: "messages[1].tool_calls[0].function.arguments",
	},
	{
		name:     "tool call of unknown type",
		body:     `{"model":"gpt-5.5","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"c","type":"magic"}]}]}`,
		errParam: "messages[1].tool_calls[0].type",
	},

	// --- errors: tools ------------------------------------------------------
	{
		name:     "duplicate tool names",
		body:     `{"model":"gpt-5.5",` + rqUser + `,"tools":[{"type":"function","function":{"name":"f"}},{"type":"function","function":{"name":"f"}}]}`,
		errParam: "tools[1].function", errContains: `"f"`,
	},
	{
		name:     "duplicate between tools and functions",
		body:     `{"model":"gpt-5.5",` + rqUser + `,"tools":[{"type":"function","function":{"name":"f"}}],"functions":[{"name":"f"}]}`,
		errParam: "functions[0]",
	},
	{name: "tool without name", body: `{"model":"gpt-5.5",` + rqUser + `,"tools":[{"type":"function","function":{}}]}`, errParam: "tools[0].function.name"},
	{name: "tool without type", body: `{"model":"gpt-5.5",` + rqUser + `,"tools":[{"description":"x"}]}`, errParam: "tools[0].type"},
	{name: "tool not an object", body: `{"model":"gpt-5.5",` + rqUser + `,"tools":["f"]}`, errParam: "tools[0]"},
	{name: "tools not an array", body: `{"model":"gpt-5.5",` + rqUser + `,"tools":{}}`, errParam: "tools"},
	{name: "tool parameters not an object", body: `{"model":"gpt-5.5",` + rqUser + `,"tools":[{"type":"function","function":{"name":"f","parameters":"x"}}]}`, errParam: "tools[0].function.parameters"},
	{name: "tool strict not a bool", body: `{"model":"gpt-5.5",` + rqUser + `,"tools":[{"type":"function","function":{"name":"f","strict":"yes"}}]}`, errParam: "tools[0].function.strict"},
	{
		name:        "tool_choice names an undeclared tool",
		body:        `{"model":"gpt-5.5",` + rqUser + `,"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function","function":{"name":"g"}}}`,
		errParam:    "tool_choice",
		errContains: `"g"`,
	},
	{name: "tool_choice bad string", body: `{"model":"gpt-5.5",` + rqUser + `,"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"sometimes"}`, errParam: "tool_choice"},
	{name: "tool_choice required without tools", body: `{"model":"gpt-5.5",` + rqUser + `,"tool_choice":"required"}`, errParam: "tool_choice"},
	{name: "tool_choice object without tools", body: `{"model":"gpt-5.5",` + rqUser + `,"tool_choice":{"type":"function","function":{"name":"f"}}}`, errParam: "tool_choice"},
	{name: "tool_choice wrong type", body: `{"model":"gpt-5.5",` + rqUser + `,"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":5}`, errParam: "tool_choice"},
	{name: "legacy function_call undeclared", body: `{"model":"gpt-5.5",` + rqUser + `,"functions":[{"name":"f"}],"function_call":{"name":"g"}}`, errParam: "function_call"},
	{name: "parallel_tool_calls not a bool", body: `{"model":"gpt-5.5",` + rqUser + `,"parallel_tool_calls":"yes"}`, errParam: "parallel_tool_calls"},

	// --- errors: response_format --------------------------------------------
	{name: "json_schema without name", body: `{"model":"gpt-5.5",` + rqUser + `,"response_format":{"type":"json_schema","json_schema":{"schema":{"type":"object"}}}}`, errParam: "response_format.json_schema.name"},
	{name: "json_schema without schema", body: `{"model":"gpt-5.5",` + rqUser + `,"response_format":{"type":"json_schema","json_schema":{"name":"x"}}}`, errParam: "response_format.json_schema.schema"},
	{name: "json_schema missing object", body: `{"model":"gpt-5.5",` + rqUser + `,"response_format":{"type":"json_schema"}}`, errParam: "response_format.json_schema"},
	{name: "response_format unknown type", body: `{"model":"gpt-5.5",` + rqUser + `,"response_format":{"type":"yaml"}}`, errParam: "response_format.type"},
	{name: "response_format wrong type", body: `{"model":"gpt-5.5",` + rqUser + `,"response_format":"json"}`, errParam: "response_format", errCode: codeInvalidType},

	// --- messages -----------------------------------------------------------
	{
		name: "user parts, http image with detail, string image, data url re-padded",
		body: `{"model":"gpt-5.5","messages":[{"role":"user","content":[
			{"type":"text","text":"look"},
			{"type":"image_url","image_url":{"url":"https://example.com/a.png","detail":"high"}},
			{"type":"image_url","image_url":"http://example.com/b.png"},
			{"type":"image_url","image_url":{"url":"data:image/png;base64,aGk-_w"}},
			{"type":"image_url","image_url":{"url":"data:image/jpeg;base64,aGk+/w==","detail":"low"}}]}]}`,
		want: map[string]string{
			"input.0.content": `[{"type":"input_text","text":"look"},
				{"type":"input_image","image_url":"https://example.com/a.png","detail":"high"},
				{"type":"input_image","image_url":"http://example.com/b.png"},
				{"type":"input_image","image_url":"data:image/png;base64,aGk+/w=="},
				{"type":"input_image","image_url":"data:image/jpeg;base64,aGk+/w==","detail":"low"}]`,
		},
	},
	{
		name: "data url with whitespace and missing padding",
		body: `{"model":"gpt-5.5","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,aGVs\nbG8"}}]}]}`,
		want: map[string]string{"input.0.content.0.image_url": `"data:image/png;base64,aGVsbG8="`},
	},
	{
		name: "file part becomes input_file",
		body: `{"model":"gpt-5.5","messages":[{"role":"user","content":[{"type":"file","file":{"file_data":"data:application/pdf;base64,JVBERi0","filename":"doc.pdf"}},{"type":"file","file":{"file_data":"data:application/pdf;base64,JVBERi0="}}]}]}`,
		want: map[string]string{"input.0.content": `[{"type":"input_file","file_data":"data:application/pdf;base64,JVBERi0=","filename":"doc.pdf"},{"type":"input_file","file_data":"data:application/pdf;base64,JVBERi0=","filename":"file"}]`},
	},
	{
		name: "assistant text plus two tool calls",
		body: `{"model":"gpt-5.5","messages":[{"role":"user","content":"weather?"},
			{"role":"assistant","content":"Checking both.","tool_calls":[
				{"id":"call_1","type":"function","function":{"name":"weather","arguments":"{\"city\": \"Paris\"}"}},
				{"id":"call_2","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Rome\"}"}}]},
			{"role":"tool","tool_call_id":"call_1","content":"sunny"},
			{"role":"tool","tool_call_id":"call_2","content":[{"type":"text","text":"rain"},{"type":"text","text":"cold"}]},
			{"role":"assistant","content":"Paris sunny, Rome rainy."}]}`,
		want: map[string]string{
			"input": `[{"type":"message","role":"user","content":[{"type":"input_text","text":"weather?"}]},
				{"type":"message","role":"assistant","content":[{"type":"output_text","text":"Checking both."}]},
				{"type":"function_call","name":"weather","arguments":"{\"city\": \"Paris\"}","call_id":"call_1"},
				{"type":"function_call","name":"weather","arguments":"{\"city\":\"Rome\"}","call_id":"call_2"},
				{"type":"function_call_output","call_id":"call_1","output":"sunny"},
				{"type":"function_call_output","call_id":"call_2","output":"rain\ncold"},
				{"type":"message","role":"assistant","content":[{"type":"output_text","text":"Paris sunny, Rome rainy."}]}]`,
		},
	},
	{
		name: "assistant with only tool calls emits no empty message",
		body: `{"model":"gpt-5.5","messages":[{"role":"user","content":"x"},
			{"role":"assistant","content":"","tool_calls":[{"id":"c1","type":"function","function":{"name":"f"}}]},
			{"role":"tool","tool_call_id":"c1","content":"r"},
			{"role":"assistant","content":null,"reasoning_content":"thinking…","tool_calls":[{"id":"c2","type":"function","function":{"name":"f","arguments":{"a":1}}}]},
			{"role":"tool","tool_call_id":"c2","content":"r2"}]}`,
		want: map[string]string{
			"input.1": `{"type":"function_call","name":"f","arguments":"{}","call_id":"c1"}`,
			"input.2": `{"type":"function_call_output","call_id":"c1","output":"r"}`,
			"input.3": `{"type":"function_call","name":"f","arguments":"{\"a\":1}","call_id":"c2"}`,
			"input.4": `{"type":"function_call_output","call_id":"c2","output":"r2"}`,
		},
		absent: []string{"input.5"},
	},
	{
		name: "assistant refusal and text parts",
		body: `{"model":"gpt-5.5","messages":[{"role":"user","content":"x"},{"role":"assistant","content":[{"type":"text","text":"a"},{"type":"refusal","refusal":"no"}]},{"role":"assistant","content":null,"refusal":"nope"}]}`,
		want: map[string]string{
			"input.1": `{"type":"message","role":"assistant","content":[{"type":"output_text","text":"a"},{"type":"output_text","text":"no"}]}`,
			"input.2": `{"type":"message","role":"assistant","content":[{"type":"output_text","text":"nope"}]}`,
		},
	},
	{
		name: "missing outputs repaired with aborted after the batch",
		body: `{"model":"gpt-5.5","messages":[{"role":"user","content":"x"},
			{"role":"assistant","tool_calls":[{"id":"c1","function":{"name":"f"}},{"id":"c2","function":{"name":"g"}}]},
			{"role":"tool","tool_call_id":"c2","content":"done"},
			{"role":"user","content":"stop that"},
			{"role":"assistant","tool_calls":[{"id":"c3","function":{"name":"f"}}]}]}`,
		want: map[string]string{
			"input.1": `{"type":"function_call","name":"f","arguments":"{}","call_id":"c1"}`,
			"input.2": `{"type":"function_call","name":"g","arguments":"{}","call_id":"c2"}`,
			"input.3": `{"type":"function_call_output","call_id":"c1","output":"aborted"}`,
			"input.4": `{"type":"function_call_output","call_id":"c2","output":"done"}`,
			"input.5": `{"type":"message","role":"user","content":[{"type":"input_text","text":"stop that"}]}`,
			"input.6": `{"type":"function_call","name":"f","arguments":"{}","call_id":"c3"}`,
			"input.7": `{"type":"function_call_output","call_id":"c3","output":"aborted"}`,
		},
		absent: []string{"input.8"},
	},
	{
		name: "output arriving later still counts",
		body: `{"model":"gpt-5.5","messages":[{"role":"user","content":"x"},
			{"role":"assistant","tool_calls":[{"id":"c1","function":{"name":"f"}}]},
			{"role":"user","content":"meanwhile"},
			{"role":"tool","tool_call_id":"c1","content":"late"}]}`,
		want:   map[string]string{"input.3": `{"type":"function_call_output","call_id":"c1","output":"late"}`},
		absent: []string{"input.4"},
	},
	{
		name: "empty tool_call_id paired with the single pending call",
		body: `{"model":"gpt-5.5","messages":[{"role":"user","content":"x"},
			{"role":"assistant","tool_calls":[{"id":"c1","function":{"name":"f"}}]},
			{"role":"tool","content":"r"}]}`,
		want: map[string]string{"input.2": `{"type":"function_call_output","call_id":"c1","output":"r"}`},
	},
	{
		name: "tool call without id gets a deterministic one",
		body: `{"model":"gpt-5.5","messages":[{"role":"user","content":"x"},
			{"role":"assistant","tool_calls":[{"function":{"name":"f"}}]},
			{"role":"tool","content":"r"}]}`,
		want: map[string]string{
			"input.1.call_id": `"call_missing_1_0"`,
			"input.2.call_id": `"call_missing_1_0"`,
		},
	},
	{
		name: "tool output with an image becomes parts",
		body: `{"model":"gpt-5.5","messages":[{"role":"user","content":"x"},
			{"role":"assistant","tool_calls":[{"id":"c1","function":{"name":"screenshot"}}]},
			{"role":"tool","tool_call_id":"c1","content":[{"type":"text","text":"here"},{"type":"image_url","image_url":{"url":"data:image/png;base64,aGk"}}]}]}`,
		want: map[string]string{"input.2.output": `[{"type":"input_text","text":"here"},{"type":"input_image","image_url":"data:image/png;base64,aGk="}]`},
	},
	{
		name: "tool output null content is an empty string",
		body: `{"model":"gpt-5.5","messages":[{"role":"user","content":"x"},
			{"role":"assistant","tool_calls":[{"id":"c1","function":{"name":"f"}}]},
			{"role":"tool","tool_call_id":"c1","content":null}]}`,
		want: map[string]string{"input.2.output": `""`},
	},
	{
		name: "legacy functions, function_call and function role",
		body: `{"model":"gpt-5.5","messages":[{"role":"user","content":"x"},
			{"role":"assistant","content":null,"function_call":{"name":"lookup","arguments":"{\"q\":1}"}},
			{"role":"function","name":"lookup","content":"found"}],
			"functions":[{"name":"lookup","description":"Look up","parameters":{"type":"object","properties":{"q":{"type":"integer"}}}}],
			"function_call":{"name":"lookup"}}`,
		want: map[string]string{
			"input.1":     `{"type":"function_call","name":"lookup","arguments":"{\"q\":1}","call_id":"call_legacy_1"}`,
			"input.2":     `{"type":"function_call_output","call_id":"call_legacy_1","output":"found"}`,
			"tools":       `[{"type":"function","name":"lookup","description":"Look up","parameters":{"type":"object","properties":{"q":{"type":"integer"}}},"strict":false}]`,
			"tool_choice": `{"type":"function","name":"lookup"}`,
		},
	},
	{
		name: "legacy function_call auto and none",
		body: `{"model":"gpt-5.5",` + rqUser + `,"functions":[{"name":"f"}],"function_call":"none"}`,
		want: map[string]string{"tool_choice": `"none"`},
	},
	{
		name: "custom tool call history",
		body: `{"model":"gpt-5.5","messages":[{"role":"user","content":"x"},
			{"role":"assistant","tool_calls":[{"id":"c1","type":"custom","custom":{"name":"apply_patch","input":"*** Begin"}}]},
			{"role":"tool","tool_call_id":"c1","content":"ok"},
			{"role":"assistant","tool_calls":[{"id":"c2","type":"custom","custom":{"name":"apply_patch","input":"x"}}]}]}`,
		want: map[string]string{
			"input.1": `{"type":"custom_tool_call","call_id":"c1","name":"apply_patch","input":"*** Begin"}`,
			"input.2": `{"type":"custom_tool_call_output","call_id":"c1","output":"ok"}`,
			"input.4": `{"type":"custom_tool_call_output","call_id":"c2","output":"aborted"}`,
		},
	},

	// --- system modes -------------------------------------------------------
	{
		name: "system as developer in place (default)",
		body: `{"model":"gpt-5.5","messages":[{"role":"system","content":"Be brief."},{"role":"developer","content":[{"type":"text","text":"Rule 1"},{"type":"text","text":"Rule 2"}]},{"role":"user","content":"x"},{"role":"system","content":"Later."}]}`,
		want: map[string]string{
			"instructions": `""`,
			"input.0":      `{"type":"message","role":"developer","content":[{"type":"input_text","text":"Be brief."}]}`,
			"input.1":      `{"type":"message","role":"developer","content":[{"type":"input_text","text":"Rule 1"},{"type":"input_text","text":"Rule 2"}]}`,
			"input.3":      `{"type":"message","role":"developer","content":[{"type":"input_text","text":"Later."}]}`,
		},
	},
	{
		name: "system as instructions",
		opts: RequestOptions{SystemMode: SystemAsInstructions},
		body: `{"model":"gpt-5.5","messages":[{"role":"system","content":"Be brief."},{"role":"developer","content":[{"type":"text","text":"Rule 1"},{"type":"text","text":"Rule 2"}]},{"role":"system","content":""},{"role":"user","content":"x"},{"role":"system","content":"Later."}]}`,
		want: map[string]string{
			"instructions": `"Be brief.\n\nRule 1\n\nRule 2"`,
			"input.0":      `{"type":"message","role":"user","content":[{"type":"input_text","text":"x"}]}`,
			"input.1":      `{"type":"message","role":"developer","content":[{"type":"input_text","text":"Later."}]}`,
		},
		absent: []string{"input.2"},
	},

	// --- tools --------------------------------------------------------------
	{
		name: "function tools flattened with defaults, built-ins passed through",
		body: `{"model":"gpt-5.5",` + rqUser + `,"tools":[
			{"type":"function","function":{"name":"a","description":"A","parameters":{"type":"object","properties":{"x":{"type":"string"}},"required":["x"]},"strict":true}},
			{"type":"function","function":{"name":"b"}},
			{"type":"function","name":"c","parameters":{"type":"object"}},
			{"type":"custom","custom":{"name":"apply_patch","description":"Patch","format":{"type":"grammar","syntax":"lark","definition":"start: x"}}},
			{"type":"web_search_preview","search_context_size":"low"},
			{"type":"web_search_preview_2025_03_11"},
			{"type":"image_generation","output_format":"png"}]}`,
		want: map[string]string{
			"tools": `[{"type":"function","name":"a","description":"A","parameters":{"type":"object","properties":{"x":{"type":"string"}},"required":["x"]},"strict":true},
				{"type":"function","name":"b","description":"","parameters":{"type":"object","properties":{}},"strict":false},
				{"type":"function","name":"c","description":"","parameters":{"type":"object"},"strict":false},
				{"type":"custom","name":"apply_patch","description":"Patch","format":{"type":"grammar","syntax":"lark","definition":"start: x"}},
				{"type":"web_search","search_context_size":"low"},
				{"type":"web_search"},
				{"type":"image_generation","output_format":"png"}]`,
			"tool_choice":         `"auto"`,
			"parallel_tool_calls": `true`,
		},
	},
	{
		name: "long tool names shortened everywhere and restorable",
		body: `{"model":"gpt-5.5","messages":[{"role":"user","content":"x"},
			{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"` + rqLongTool + `","arguments":"{}"}}]},
			{"role":"tool","tool_call_id":"c1","content":"r"}],
			"tools":[{"type":"function","function":{"name":"` + rqLongTool + `"}},{"type":"function","function":{"name":"short"}}],
			"tool_choice":{"type":"function","function":{"name":"` + rqLongTool + `"}}}`,
		want: map[string]string{
			"tools.0.name":    `"` + ShortenToolName(rqLongTool) + `"`,
			"tools.1.name":    `"short"`,
			"tool_choice":     `{"type":"function","name":"` + ShortenToolName(rqLongTool) + `"}`,
			"input.1.name":    `"` + ShortenToolName(rqLongTool) + `"`,
			"input.1.call_id": `"c1"`,
		},
		check: func(t *testing.T, m *Mapped) {
			short := ShortenToolName(rqLongTool)
			if !strings.HasPrefix(short, "mcp__list_pull_requests_") || len(short) > MaxToolNameLen {
				t.Fatalf("short name %q", short)
			}
			if len(m.ToolNames) != 1 || m.ToolNames.Restore(short) != rqLongTool || m.ToolNames.Restore("short") != "short" {
				t.Fatalf("ToolNames = %v", m.ToolNames)
			}
		},
	},
	{name: "tool_choice none", body: `{"model":"gpt-5.5",` + rqUser + `,"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"none"}`, want: map[string]string{"tool_choice": `"none"`}},
	{name: "tool_choice required", body: `{"model":"gpt-5.5",` + rqUser + `,"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"required"}`, want: map[string]string{"tool_choice": `"required"`}},
	{name: "tool_choice flat object", body: `{"model":"gpt-5.5",` + rqUser + `,"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function","name":"f"}}`, want: map[string]string{"tool_choice": `{"type":"function","name":"f"}`}},
	{name: "tool_choice built-in passed through", body: `{"model":"gpt-5.5",` + rqUser + `,"tools":[{"type":"web_search"}],"tool_choice":{"type":"web_search_preview"}}`, want: map[string]string{"tool_choice": `{"type":"web_search"}`}},
	{
		name:    "tool_choice auto without tools is dropped",
		body:    `{"model":"gpt-5.5",` + rqUser + `,"tool_choice":"auto","parallel_tool_calls":true}`,
		absent:  []string{"tool_choice", "parallel_tool_calls", "tools"},
		dropped: []string{"parallel_tool_calls", "tool_choice"},
	},
	{
		name: "parallel_tool_calls false kept with tools",
		body: `{"model":"gpt-5.5",` + rqUser + `,"tools":[{"type":"function","function":{"name":"f"}}],"parallel_tool_calls":false}`,
		want: map[string]string{"parallel_tool_calls": `false`},
	},

	// --- response_format and verbosity --------------------------------------
	{name: "response_format json_object", body: `{"model":"gpt-5.5",` + rqUser + `,"response_format":{"type":"json_object"}}`, want: map[string]string{"text": `{"format":{"type":"json_object"}}`}},
	{
		name: "response_format json_schema",
		body: `{"model":"gpt-5.5",` + rqUser + `,"response_format":{"type":"json_schema","json_schema":{"name":"person","description":"A person","strict":true,"schema":{"type":"object","properties":{"name":{"type":"string"}}}}}}`,
		want: map[string]string{"text": `{"format":{"type":"json_schema","name":"person","schema":{"type":"object","properties":{"name":{"type":"string"}}},"strict":true,"description":"A person"}}`},
	},
	{name: "response_format text sends nothing", body: `{"model":"gpt-5.5",` + rqUser + `,"response_format":{"type":"text"}}`, absent: []string{"text"}},
	{name: "verbosity on a general model", body: `{"model":"gpt-5.5",` + rqUser + `,"verbosity":"low"}`, want: map[string]string{"text": `{"verbosity":"low"}`}},
	{name: "verbosity dropped on a codex model", body: `{"model":"gpt-5.3-codex",` + rqUser + `,"verbosity":"medium"}`, absent: []string{"text"}, dropped: []string{"verbosity"}},
	{name: "verbosity passed for unknown models", body: `{"model":"gpt-7",` + rqUser + `,"verbosity":"high"}`, want: map[string]string{"text": `{"verbosity":"high"}`}},
	{
		name:    "format kept when verbosity dropped",
		body:    `{"model":"gpt-5.3-codex-spark",` + rqUser + `,"verbosity":"high","response_format":{"type":"json_object"}}`,
		want:    map[string]string{"text": `{"format":{"type":"json_object"}}`},
		dropped: []string{"verbosity"},
	},

	// --- service tier -------------------------------------------------------
	{
		name:  "service_tier priority kept",
		body:  `{"model":"gpt-5.5",` + rqUser + `,"service_tier":"priority"}`,
		want:  map[string]string{"service_tier": `"priority"`},
		check: func(t *testing.T, m *Mapped) { mustEqual(t, m.ServiceTier, "priority") },
	},
	{
		name:  "service_tier fast sent as priority",
		body:  `{"model":"gpt-5.5",` + rqUser + `,"service_tier":"Fast"}`,
		want:  map[string]string{"service_tier": `"priority"`},
		check: func(t *testing.T, m *Mapped) { mustEqual(t, m.ServiceTier+"/"+m.RequestedTier, "priority/fast") },
	},
	{
		name:   "service_tier auto is the default",
		body:   `{"model":"gpt-5.5",` + rqUser + `,"service_tier":"auto"}`,
		absent: []string{"service_tier"},
		check:  func(t *testing.T, m *Mapped) { mustEqual(t, m.ServiceTier+"/"+m.RequestedTier, "/auto") },
	},
	{name: "service_tier default is the default", body: `{"model":"gpt-5.5",` + rqUser + `,"service_tier":"default"}`, absent: []string{"service_tier"}},
	{name: "service_tier not a string dropped", body: `{"model":"gpt-5.5",` + rqUser + `,"service_tier":3}`, absent: []string{"service_tier"}, dropped: []string{"service_tier"}},
	{
		name:   "key denied the Fast tier sends the default",
		opts:   RequestOptions{Tier: TierDeny},
		body:   `{"model":"gpt-5.5",` + rqUser + `,"service_tier":"fast"}`,
		absent: []string{"service_tier"},
		check:  func(t *testing.T, m *Mapped) { mustEqual(t, m.ServiceTier+"/"+m.RequestedTier, "/fast") },
	},
	{name: "key forced to the Fast tier", opts: RequestOptions{Tier: TierForce}, body: `{"model":"gpt-5.5",` + rqUser + `,"service_tier":"auto"}`, want: map[string]string{"service_tier": `"priority"`}},
	{name: "model default tier", opts: RequestOptions{ModelTiers: map[string]string{"gpt-5.5": "priority"}}, body: `{"model":"gpt-5.5",` + rqUser + `}`, want: map[string]string{"service_tier": `"priority"`}},
	{name: "model default tier yields to the client's", opts: RequestOptions{ModelTiers: map[string]string{"gpt-5.5": "priority"}}, body: `{"model":"gpt-5.5",` + rqUser + `,"service_tier":"default"}`, absent: []string{"service_tier"}},
	{name: "model default tier of another model", opts: RequestOptions{ModelTiers: map[string]string{"gpt-5.4": "priority"}}, body: `{"model":"gpt-5.5",` + rqUser + `}`, absent: []string{"service_tier"}},
	{name: "service_tier flex dropped", body: `{"model":"gpt-5.5",` + rqUser + `,"service_tier":"flex"}`, absent: []string{"service_tier"}, dropped: []string{"service_tier"}},

	// --- reasoning ----------------------------------------------------------
	{name: "suffix extra-high", body: `{"model":"gpt-5.5-extra-high",` + rqUser + `}`, want: map[string]string{"model": `"gpt-5.5"`, "reasoning": `{"effort":"xhigh","summary":"auto"}`}},
	{name: "suffix ultra on a model without it", body: `{"model":"gpt-5.5-ultra",` + rqUser + `}`, want: map[string]string{"model": `"gpt-5.5"`, "reasoning": `{"effort":"xhigh","summary":"auto"}`}},
	{name: "suffix extra", body: `{"model":"gpt-5.4-extra",` + rqUser + `}`, want: map[string]string{"model": `"gpt-5.4"`, "reasoning.effort": `"xhigh"`}},
	{name: "codex none clamped to low", body: `{"model":"gpt-5.3-codex-none",` + rqUser + `}`, want: map[string]string{"model": `"gpt-5.3-codex"`, "reasoning": `{"effort":"low","summary":"auto"}`, "include": `["reasoning.encrypted_content"]`}},
	{name: "minimal clamped to low", body: `{"model":"gpt-5.5-minimal",` + rqUser + `}`, want: map[string]string{"reasoning.effort": `"low"`}},
	{name: "max clamped to xhigh", body: `{"model":"gpt-5.5",` + rqUser + `,"reasoning_effort":"max"}`, want: map[string]string{"reasoning.effort": `"xhigh"`}},
	{name: "unknown model not clamped", body: `{"model":"gpt-9-minimal",` + rqUser + `}`, want: map[string]string{"model": `"gpt-9"`, "reasoning.effort": `"minimal"`}},
	{
		name:  "reasoning_effort beats reasoning.effort beats suffix",
		body:  `{"model":"gpt-5.5-low",` + rqUser + `,"reasoning_effort":"high","reasoning":{"effort":"medium"}}`,
		want:  map[string]string{"reasoning.effort": `"high"`},
		check: func(t *testing.T, m *Mapped) { mustEqual(t, m.Effort, "high") },
	},
	{name: "reasoning.effort beats suffix", body: `{"model":"gpt-5.5-low",` + rqUser + `,"reasoning":{"effort":"medium"}}`, want: map[string]string{"reasoning.effort": `"medium"`}},
	{name: "reasoning_effort upper case", body: `{"model":"gpt-5.5",` + rqUser + `,"reasoning_effort":"HIGH"}`, want: map[string]string{"reasoning.effort": `"high"`}},
	{
		name: "effort none turns reasoning off",
		body: `{"model":"gpt-5.5",` + rqUser + `,"reasoning_effort":"none","reasoning":{"summary":"detailed"}}`,
		want: map[string]string{"reasoning": `{"effort":"none"}`, "include": `[]`},
	},
	{name: "client summary", body: `{"model":"gpt-5.5",` + rqUser + `,"reasoning":{"effort":"low","summary":"detailed"}}`, want: map[string]string{"reasoning": `{"effort":"low","summary":"detailed"}`}},
	{name: "summary disabled by option", opts: RequestOptions{ReasoningSummary: "none"}, body: `{"model":"gpt-5.5-high",` + rqUser + `}`, want: map[string]string{"reasoning": `{"effort":"high"}`, "include": `["reasoning.encrypted_content"]`}},
	{name: "summary option concise", opts: RequestOptions{ReasoningSummary: "concise"}, body: `{"model":"gpt-5.5",` + rqUser + `}`, want: map[string]string{"reasoning": `{"summary":"concise"}`}},
	{name: "summary none and no effort sends no reasoning", opts: RequestOptions{ReasoningSummary: "none"}, body: `{"model":"gpt-5.5",` + rqUser + `}`, absent: []string{"reasoning"}, want: map[string]string{"include": `["reasoning.encrypted_content"]`}},
	{
		name: "model default effort",
		opts: RequestOptions{Catalog: DefaultCatalog().With([]Model{{ID: "gpt-5.5", Efforts: generalEfforts, DefaultEffort: "medium", Verbosity: true}}, nil)},
		body: `{"model":"gpt-5.5",` + rqUser + `}`,
		want: map[string]string{"reasoning.effort": `"medium"`},
	},

	// --- prompt cache key and responses-shaped bodies ------------------------
	{name: "client prompt_cache_key kept", body: `{"model":"gpt-5.5",` + rqUser + `,"prompt_cache_key":"my-key"}`, want: map[string]string{"prompt_cache_key": `"my-key"`}},
	{
		name: "responses-shaped body detected",
		body: `{"model":"gpt-5.5","input":"hi","stream":true,"temperature":0}`,
		want: map[string]string{
			"input": `[{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]}]`,
		},
		dropped: []string{"temperature"},
		check: func(t *testing.T, m *Mapped) {
			if !m.ResponsesShaped || !m.Stream {
				t.Fatalf("ResponsesShaped=%v Stream=%v", m.ResponsesShaped, m.Stream)
			}
		},
	},
}

func mustEqual[T comparable](t *testing.T, got, want T) {
	t.Helper()
	if got != want {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestChatToResponses(t *testing.T) {
	runRequestCases(t, ChatToResponses, chatCases)
}

func TestChatPromptCacheKey(t *testing.T) {
	key := func(body string, opts RequestOptions) string {
		t.Helper()
		m := rqMust(t, ChatToResponses, body, opts)
		if m.PromptCacheKey == "" {
			t.Fatal("no prompt_cache_key")
		}
		doc := rqDecode(t, m.Body)
		if v, _ := rqGet(doc, "prompt_cache_key"); v != m.PromptCacheKey {
			t.Fatalf("body key %v != Mapped key %q", v, m.PromptCacheKey)
		}
		return m.PromptCacheKey
	}
	turn1 := `{"model":"gpt-5.5","messages":[{"role":"system","content":"S"},{"role":"user","content":"first question"}]}`
	turn3 := `{"model":"gpt-5.5-high","messages":[{"role":"system","content":"S"},{"role":"user","content":"first question"},
		{"role":"assistant","content":"answer"},{"role":"user","content":"follow-up"},{"role":"assistant","content":"more"},{"role":"user","content":"again"}]}`
	other := `{"model":"gpt-5.5","messages":[{"role":"system","content":"S"},{"role":"user","content":"another question"}]}`
	otherSystem := `{"model":"gpt-5.5","messages":[{"role":"system","content":"T"},{"role":"user","content":"first question"}]}`

	k1 := key(turn1, RequestOptions{})
	if len(k1) != 36 || strings.Count(k1, "-") != 4 || k1[14] != '8' {
		t.Fatalf("key %q is not UUID formatted", k1)
	}
	if k3 := key(turn3, RequestOptions{}); k3 != k1 {
		t.Fatalf("key changed across turns / models: %q vs %q", k1, k3)
	}
	if k := key(turn1, RequestOptions{SystemMode: SystemAsInstructions}); k != k1 {
		t.Fatalf("key depends on the system mode: %q vs %q", k, k1)
	}
	if k := key(other, RequestOptions{}); k == k1 {
		t.Fatal("different conversations share a key")
	}
	if k := key(otherSystem, RequestOptions{}); k == k1 {
		t.Fatal("different system prompts share a key")
	}
	a, b := key(turn1, RequestOptions{CacheKeySalt: "user-a"}), key(turn1, RequestOptions{CacheKeySalt: "user-b"})
	if a == b || a == k1 {
		t.Fatal("salt is not mixed into the key")
	}
	if key(turn1, RequestOptions{CacheKeySalt: "user-a"}) != a {
		t.Fatal("salted key not stable")
	}
}

func TestChatToResponsesErrorIsTypedNil(t *testing.T) {
	m, err := ChatToResponses([]byte(`{"model":"gpt-5.5",`+rqUser+`}`), RequestOptions{})
	if err != nil || m == nil {
		t.Fatalf("err = %#v (a typed nil *Error would make this non-nil)", err)
	}
}
