package translate

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzAppendJSONStr: strings are escaped byte for byte as encoding/json
// escapes them without HTML escaping.
func FuzzAppendJSONStr(f *testing.F) {
	for _, s := range []string{"", "plain", "<b>&</b>", "a\"b\\c\n\r\t\b\f\x00\x1f\x7f", "é✓\u2028\u2029", "\xff\xfe bad", "\U0001F600"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := marshalCompact(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONStr(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("%q: got %s, want %s", s, got, want)
		}
	})
}

// FuzzUnquoteJSON: string tokens decode as encoding/json decodes them, and
// what encoding/json rejects is rejected.
func FuzzUnquoteJSON(f *testing.F) {
	for _, s := range []string{`""`, `"plain"`, `"a\"b\\c\/\n\r\t\b\f"`, `"\u00e9\u2028"`, `"\ud83d\ude00"`, `"\ud83d"`, `"\ud83dx"`, `"\ude00\ud83d\ude00"`,
		`"\ud83d\u0041"`, "\"\xff\"", `"\q"`, `"unterminated`, "\"tab\there\"", `"\u12"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var want string
		werr := json.Unmarshal(raw, &want)
		if werr == nil && (len(raw) == 0 || raw[0] != '"' || raw[len(raw)-1] != '"') {
			return // surrounding whitespace: not a bare token
		}
		got, ok := unquoteJSON(raw)
		if ok != (werr == nil) || got != want {
			t.Fatalf("%q: got %q %v, want %q %v", raw, got, ok, want, werr)
		}
	})
}

// FuzzAppendCompactJSON: raw values are compacted as encoding/json writes
// a json.RawMessage, and invalid ones are rejected.
func FuzzAppendCompactJSON(f *testing.F) {
	for _, s := range []string{`{}`, ` { "a" : [ 1 , 2.5e3 , "x y" ] , "b" : null } `, `"s p"`, `[true,false]`, `1 2`, `{"a":}`, "\"\xff\"", `{"<":"&"}`, "\"\u2028\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		want, werr := marshalCompact(json.RawMessage(raw))
		got, err := appendCompactJSON([]byte("prefix"), raw)
		if (err == nil) != (werr == nil) {
			t.Fatalf("%q: err %v, want %v", raw, err, werr)
		}
		if err == nil && string(got) != "prefix"+string(want) {
			t.Fatalf("%q: got %s, want %s", raw, got, want)
		}
	})
}

// TestAppendRequestBodyMatchesEncodingJSON: the hand-written body writer
// gives encoding/json's bytes for every field and item type, set or not.
func TestAppendRequestBodyMatchesEncodingJSON(t *testing.T) {
	yes, no := true, false
	tricky := "<b>&\"\\\n\t\x01é\u2028\xff"
	full := rqBody{
		Model: "gpt-5.5", Instructions: tricky,
		Input: []any{
			&rqMessageItem{Type: "message", Role: "user", Content: []any{
				&rqTextPart{Type: "input_text", Text: tricky},
				&rqImagePart{Type: "input_image", ImageURL: "data:image/png;base64,AAAA", Detail: "low"},
				&rqImagePart{Type: "input_image", ImageURL: "https://x/y.png"},
				&rqFilePart{Type: "input_file", FileData: "data:application/pdf;base64,AA", Filename: "a.pdf"},
				&rqFilePart{Type: "input_file", FileData: "d"},
			}},
			&rqMessageItem{Type: "message", Role: "assistant", Content: nil},
			&rqCallItem{Type: "function_call", Name: "f", Arguments: `{"a": 1}`, CallID: "c1"},
			&rqCustomCallItem{Type: "custom_tool_call", CallID: "c2", Name: "g", Input: tricky},
			&rqOutputItem{Type: "function_call_output", CallID: "c1", Output: tricky},
			&rqOutputItem{Type: "function_call_output", CallID: "c3", Output: []any{&rqTextPart{Type: "input_text", Text: "x"}}},
			json.RawMessage(` {"type" : "reasoning", "summary": [ ] } `),
			map[string]any{"type": "other", "v": 1},
		},
		Tools:             []json.RawMessage{json.RawMessage(`{"type":"function","name":"f"}`), json.RawMessage(` { "type" : "web_search" } `)},
		ToolChoice:        json.RawMessage(` "auto" `),
		ParallelToolCalls: &yes,
		Reasoning:         &rqReasoning{Effort: "high", Summary: "auto"},
		Store:             false, Stream: true,
		Include:        []string{includeEncrypted},
		PromptCacheKey: "k",
		Text:           &rqText{Format: json.RawMessage(`{"type": "json_object"}`), Verbosity: "low"},
		ServiceTier:    "priority",
	}
	for name, b := range map[string]*rqBody{
		"full":    &full,
		"minimal": {Model: "m", Input: []any{}, Include: []string{}},
		"nil include and input, empty reasoning and text": {Model: "m", Reasoning: &rqReasoning{}, Text: &rqText{}, ParallelToolCalls: &no},
		"summary only": {Model: "m", Input: []any{}, Reasoning: &rqReasoning{Summary: "auto"}, Text: &rqText{Verbosity: "high"}},
	} {
		want, err := marshalCompact(b)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendRequestBody(nil, b)
		if err != nil || string(got) != string(want) {
			t.Errorf("%s:\ngot  %s\nwant %s (%v)", name, got, want, err)
		}
	}
}
