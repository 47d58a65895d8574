package codextest

import (
	"encoding/json"
	"strings"
	"testing"
)

// withFormat is validBody with a json_schema text.format.
func withFormat(text string, schema map[string]any, strict bool) map[string]any {
	b := validBody(text)
	b["text"] = map[string]any{"format": map[string]any{"type": "json_schema", "name": "answer", "strict": strict, "schema": schema}}
	return b
}

func TestStructuredOutputReply(t *testing.T) {
	s := New(t)
	tok := s.AddAccount("acc-1", "a@example.com", "plus")
	schema := map[string]any{
		"type": "object",
		"properties": map[string]any{
			"city":   map[string]any{"type": "string"},
			"temp":   map[string]any{"type": "number"},
			"sunny":  map[string]any{"type": "boolean"},
			"kind":   map[string]any{"type": "string", "enum": []any{"metric", "imperial"}},
			"tags":   map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
			"note":   map[string]any{"type": []any{"string", "null"}},
			"nested": map[string]any{"$ref": "#/$defs/place"},
		},
		"required":             []any{"city", "temp", "sunny", "kind", "tags", "note", "nested"},
		"additionalProperties": false,
		"$defs": map[string]any{"place": map[string]any{
			"type": "object", "properties": map[string]any{"name": map[string]any{"type": "string"}},
			"required": []any{"name"}, "additionalProperties": false,
		}},
	}
	resp := post(t, s, tok, "acc-1", withFormat("Paris please [[scenario:plain]]", schema, true))
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, bodyString(t, resp))
	}
	var text strings.Builder
	for _, e := range readEvents(t, resp.Body) {
		if e.name == "response.output_text.delta" {
			text.WriteString(e.data["delta"].(string))
		}
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(text.String()), &got); err != nil {
		t.Fatalf("message is not JSON: %v: %q", err, text.String())
	}
	want := `{"city":"Paris please","kind":"metric","nested":{"name":"Paris please"},"note":"Paris please","sunny":true,"tags":["Paris please"],"temp":42}`
	if b, _ := json.Marshal(got); string(b) != want {
		t.Errorf("structured reply\n got %s\nwant %s", b, want)
	}
}

func TestStructuredOutputStrictRules(t *testing.T) {
	s := New(t)
	tok := s.AddAccount("acc-1", "a@example.com", "plus")
	obj := func(props map[string]any, required []any, extra any) map[string]any {
		m := map[string]any{"type": "object", "properties": props, "required": required}
		if extra != nil {
			m["additionalProperties"] = extra
		}
		return m
	}
	str := map[string]any{"type": "string"}
	tests := []struct {
		name   string
		schema map[string]any
		strict bool
		status int
		want   string
	}{
		{"conforming", obj(map[string]any{"a": str}, []any{"a"}, false), true, 200, ""},
		{"no additionalProperties", obj(map[string]any{"a": str}, []any{"a"}, nil), true, 400,
			`{"error":{"code":"invalid_json_schema","message":"Invalid schema for response_format 'answer': In context=(), 'additionalProperties' is required to be supplied and to be false.","param":"text.format.schema","type":"invalid_request_error"}}`},
		{"missing required", obj(map[string]any{"a": str, "b": str}, []any{"a"}, false), true, 400,
			`{"error":{"code":"invalid_json_schema","message":"Invalid schema for response_format 'answer': In context=(), 'required' is required to be supplied and to be an array including every key in properties. Missing 'b'.","param":"text.format.schema","type":"invalid_request_error"}}`},
		{"nested object", obj(map[string]any{"p": obj(map[string]any{"x": str}, []any{"x"}, nil)}, []any{"p"}, false), true, 400,
			`{"error":{"code":"invalid_json_schema","message":"Invalid schema for response_format 'answer': In context=('properties', 'p'), 'additionalProperties' is required to be supplied and to be false.","param":"text.format.schema","type":"invalid_request_error"}}`},
		{"not strict: anything goes", obj(map[string]any{"a": str, "b": str}, nil, nil), false, 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := post(t, s, tok, "acc-1", withFormat("x", tc.schema, tc.strict))
			got := bodyString(t, resp)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, got)
			}
			if tc.want != "" && got != tc.want {
				t.Fatalf("body\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}
