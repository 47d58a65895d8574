package codextest

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestValidationRules(t *testing.T) {
	s := New(t)
	tok := s.AddAccount("acc-1", "a@example.com", "plus")
	mod := func(f func(b map[string]any)) map[string]any {
		b := validBody("hi")
		f(b)
		return b
	}
	fc := func(id string) map[string]any {
		return map[string]any{"type": "function_call", "call_id": id, "name": "f", "arguments": "{}"}
	}
	fco := func(id string) map[string]any {
		return map[string]any{"type": "function_call_output", "call_id": id, "output": "ok"}
	}
	tests := []struct {
		name   string
		body   map[string]any
		status int
		want   string // exact JSON body
	}{
		{"store missing", mod(func(b map[string]any) { delete(b, "store") }), 400, `{"detail":"Store must be set to false"}`},
		{"store true", mod(func(b map[string]any) { b["store"] = true }), 400, `{"detail":"Store must be set to false"}`},
		{"stream false", mod(func(b map[string]any) { b["stream"] = false }), 400, `{"detail":"Stream must be set to true"}`},
		{"instructions missing", mod(func(b map[string]any) { delete(b, "instructions") }), 400, `{"detail":"Instructions are required"}`},
		{"instructions not string", mod(func(b map[string]any) { b["instructions"] = nil }), 400, `{"detail":"Instructions are required"}`},
		{"input string", mod(func(b map[string]any) { b["input"] = "hi" }), 400, `{"detail":"Input must be a list"}`},
		{"temperature", mod(func(b map[string]any) { b["temperature"] = 0.2 }), 400, `{"detail":"Unsupported parameter: temperature"}`},
		{"max_output_tokens", mod(func(b map[string]any) { b["max_output_tokens"] = 10 }), 400, `{"detail":"Unsupported parameter: max_output_tokens"}`},
		{"previous_response_id", mod(func(b map[string]any) { b["previous_response_id"] = "resp_1" }), 400, `{"detail":"Unsupported parameter: previous_response_id"}`},
		{"stream_options", mod(func(b map[string]any) { b["stream_options"] = map[string]any{} }), 400, `{"detail":"Unsupported parameter: stream_options"}`},
		{"user", mod(func(b map[string]any) { b["user"] = "u" }), 400, `{"detail":"Unsupported parameter: user"}`},
		{"unknown model", mod(func(b map[string]any) { b["model"] = "gpt-4o" }), 400,
			`{"detail":"The 'gpt-4o' model is not supported when using Codex with a ChatGPT account."}`},
		{"effort unsupported", mod(func(b map[string]any) {
			b["model"] = "gpt-5.1-codex"
			b["reasoning"] = map[string]any{"effort": "none"}
		}), 400, `{"error":{"code":"unsupported_value","message":"Unsupported value: 'none' is not supported with the 'gpt-5.1-codex' model. Supported values are: 'low', 'medium', and 'high'.","param":"reasoning.effort","type":"invalid_request_error"}}`},
		{"verbosity on codex model", mod(func(b map[string]any) {
			b["model"] = "gpt-5.3-codex"
			b["text"] = map[string]any{"verbosity": "low"}
		}), 400, `{"error":{"code":"unsupported_value","message":"Unsupported value: 'low' is not supported with the 'gpt-5.3-codex' model. Supported values are: 'medium'.","param":"text.verbosity","type":"invalid_request_error"}}`},
		{"call without output", mod(func(b map[string]any) { b["input"] = []any{fc("call_x")} }), 400,
			`{"error":{"code":null,"message":"No tool output found for function call call_x.","param":"input","type":"invalid_request_error"}}`},
		{"output without call", mod(func(b map[string]any) { b["input"] = []any{fco("call_x")} }), 400,
			`{"error":{"code":null,"message":"No tool call found for function call output with call_id call_x.","param":"input","type":"invalid_request_error"}}`},
		{"compaction trigger not last", mod(func(b map[string]any) {
			b["input"] = []any{map[string]any{"type": "compaction_trigger"}, b["input"].([]any)[0]}
		}), 400, `{"error":{"code":"invalid_value","message":"The 'compaction_trigger' item must be the final input item.","param":"input[0]","type":"invalid_request_error"}}`},
		{"item reference", mod(func(b map[string]any) {
			b["input"] = []any{map[string]any{"type": "item_reference", "id": "msg_abc"}}
		}), 400, "{\"error\":{\"code\":null,\"message\":\"Item with id 'msg_abc' not found. Items are not persisted when `store` is set to false. Try again with `store` set to true, or remove this item from your input.\",\"param\":\"input\",\"type\":\"invalid_request_error\"}}"},
		{"reasoning by id only", mod(func(b map[string]any) {
			b["input"] = []any{map[string]any{"type": "reasoning", "id": "rs_1", "summary": []any{}}}
		}), 400, "{\"error\":{\"code\":null,\"message\":\"Item with id 'rs_1' not found. Items are not persisted when `store` is set to false. Try again with `store` set to true, or remove this item from your input.\",\"param\":\"input\",\"type\":\"invalid_request_error\"}}"},
		{"item reference without id", mod(func(b map[string]any) {
			b["input"] = []any{map[string]any{"type": "message", "role": "user", "content": "a"}, map[string]any{"type": "item_reference"}}
		}), 400, `{"error":{"code":"missing_required_parameter","message":"Missing required parameter: 'input[1].id'.","param":"input[1].id","type":"invalid_request_error"}}`},
		{"assistant input_text", mod(func(b map[string]any) {
			b["input"] = []any{map[string]any{"type": "message", "role": "assistant", "content": []any{map[string]any{"type": "input_text", "text": "x"}}}}
		}), 400, `{"error":{"code":"invalid_value","message":"Invalid value: 'input_text'. Supported values are: 'output_text' and 'refusal'.","param":"input[0].content[0].type","type":"invalid_request_error"}}`},
		{"long id", mod(func(b map[string]any) {
			b["input"] = []any{map[string]any{"type": "message", "role": "user", "id": "msg_" + strings.Repeat("a", 61), "content": "x"}}
		}), 400, `{"error":{"code":"string_above_max_length","message":"Invalid 'input[0].id': string too long. Expected a string with maximum length 64, but got a string with length 65 instead.","param":"input[0].id","type":"invalid_request_error"}}`},
		{"call_id too long", mod(func(b map[string]any) {
			long := "call_" + strings.Repeat("x", 60)
			in := b["input"].([]any)
			b["input"] = append(in, fc(long), fco(long))
		}), 400, `{"error":{"code":"string_above_max_length","message":"Invalid 'input[1].call_id': string too long. Expected a string with maximum length 64, but got a string with length 65 instead.","param":"input[1].call_id","type":"invalid_request_error"}}`},
		{"output call_id too long", mod(func(b map[string]any) {
			b["input"] = []any{fco(strings.Repeat("y", 100))}
		}), 400, `{"error":{"code":"string_above_max_length","message":"Invalid 'input[0].call_id': string too long. Expected a string with maximum length 64, but got a string with length 100 instead.","param":"input[0].call_id","type":"invalid_request_error"}}`},
		{"call_id of 64 ok", mod(func(b map[string]any) {
			id := strings.Repeat("z", 64)
			in := b["input"].([]any)
			b["input"] = append(in, fc(id), fco(id))
		}), 200, ""},
		{"status on a replayed message", mod(func(b map[string]any) {
			in := b["input"].([]any)
			b["input"] = append(in, map[string]any{"type": "message", "role": "assistant", "status": "completed",
				"content": []any{map[string]any{"type": "output_text", "text": "a"}}})
		}), 400, `{"error":{"code":"unknown_parameter","message":"Unknown parameter: 'input[1].status'.","param":"input[1].status","type":"invalid_request_error"}}`},
		{"status on a function call", mod(func(b map[string]any) {
			call := fc("call_1")
			call["status"] = "completed"
			in := b["input"].([]any)
			b["input"] = append(in, call, fco("call_1"))
		}), 400, `{"error":{"code":"unknown_parameter","message":"Unknown parameter: 'input[1].status'.","param":"input[1].status","type":"invalid_request_error"}}`},
		{"status on a function call output", mod(func(b map[string]any) {
			out := fco("call_1")
			out["status"] = "completed"
			in := b["input"].([]any)
			b["input"] = append(in, fc("call_1"), out)
		}), 400, `{"error":{"code":"unknown_parameter","message":"Unknown parameter: 'input[2].status'.","param":"input[2].status","type":"invalid_request_error"}}`},
		{"status on reasoning", mod(func(b map[string]any) {
			b["input"] = append([]any{map[string]any{"type": "reasoning", "status": "completed", "summary": []any{}, "encrypted_content": "gAAA"}}, b["input"].([]any)...)
		}), 400, `{"error":{"code":"unknown_parameter","message":"Unknown parameter: 'input[0].status'.","param":"input[0].status","type":"invalid_request_error"}}`},
		{"status on a custom tool call ok", mod(func(b map[string]any) {
			in := b["input"].([]any)
			b["input"] = append(in, map[string]any{"type": "custom_tool_call", "status": "completed", "call_id": "c1", "name": "apply_patch", "input": "p"},
				map[string]any{"type": "custom_tool_call_output", "call_id": "c1", "output": "ok"})
		}), 200, ""},
		{"paired calls ok", mod(func(b map[string]any) {
			in := b["input"].([]any)
			b["input"] = append(in, fc("call_1"), fco("call_1"))
		}), 200, ""},
		{"reasoning with encrypted content ok", mod(func(b map[string]any) {
			in := b["input"].([]any)
			b["input"] = append(in, map[string]any{"type": "reasoning", "id": "rs_1", "summary": []any{}, "encrypted_content": "gAAA"})
		}), 200, ""},
		{"service tier priority ok", mod(func(b map[string]any) { b["service_tier"] = "priority" }), 200, ""},
		{"service tier fast refused", mod(func(b map[string]any) { b["service_tier"] = "fast" }), 400, `{"detail":"Unsupported service_tier: fast"}`},
		{"service tier priority refused by a model without it", mod(func(b map[string]any) { b["service_tier"] = "priority"; b["model"] = "gpt-5.4-mini" }), 400,
			`{"detail":"Unsupported service_tier: priority"}`},
		{"effort supported", mod(func(b map[string]any) { b["reasoning"] = map[string]any{"effort": "xhigh", "summary": "auto"} }), 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := post(t, s, tok, "acc-1", tc.body)
			got := bodyString(t, resp)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tc.status, got)
			}
			if tc.want != "" && got != tc.want {
				t.Fatalf("body\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestAuthentication(t *testing.T) {
	s := New(t)
	tok := s.AddAccount("acc-1", "a@example.com", "plus")
	other := s.AddAccount("acc-2", "b@example.com", "pro")
	code := func(resp *http.Response) string {
		var b struct {
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
			Detail string `json:"detail"`
		}
		json.NewDecoder(resp.Body).Decode(&b)
		return b.Error.Code + b.Detail
	}
	if r := post(t, s, Tokens{}, "acc-1", validBody("x")); r.StatusCode != 401 {
		t.Fatalf("no bearer: %d", r.StatusCode)
	}
	if r := post(t, s, Tokens{AccessToken: "nope"}, "acc-1", validBody("x")); r.StatusCode != 401 || code(r) != "token_invalid" {
		t.Fatalf("unknown token: %d", r.StatusCode)
	}
	if r := post(t, s, tok, "", validBody("x")); r.StatusCode != 400 {
		t.Fatalf("no account header: %d", r.StatusCode)
	}
	if r := post(t, s, tok, "acc-2", validBody("x")); r.StatusCode != 403 {
		t.Fatalf("account mismatch: %d", r.StatusCode)
	}
	if r := post(t, s, other, "acc-2", validBody("x")); r.StatusCode != 200 {
		t.Fatalf("second account: %d", r.StatusCode)
	}
	s.ExpireAccess("acc-1")
	if r := post(t, s, tok, "acc-1", validBody("x")); r.StatusCode != 401 || code(r) != "token_expired" {
		t.Fatalf("expired: %d", r.StatusCode)
	}
	if r := post(t, s, other, "acc-2", validBody("x")); r.StatusCode != 200 {
		t.Fatalf("other account affected by ExpireAccess: %d", r.StatusCode)
	}
}

func TestQuoteList(t *testing.T) {
	for in, want := range map[string]string{"": "", "a": "'a'", "a,b": "'a' and 'b'", "a,b,c": "'a', 'b', and 'c'"} {
		var vals []string
		if in != "" {
			vals = splitComma(in)
		}
		if got := quoteList(vals); got != want {
			t.Errorf("quoteList(%q) = %q, want %q", in, got, want)
		}
	}
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}
