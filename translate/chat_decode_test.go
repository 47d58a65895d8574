package translate

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzScanDecoders: whatever the fast decoders accept, encoding/json
// accepts too and decodes to the same values, so taking the fast path never
// changes a mapping.
func FuzzScanDecoders(f *testing.F) {
	for _, s := range []string{
		`{"model":"m","messages":[{"role":"user","content":"hi"}]}`,
		`[{"role":"user","content":"a\nb","name":null},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]}]`,
		`[{"role":"tool","tool_call_id":"c1","content":[{"type":"text","text":"out"}]}]`,
		`[{"Role":"user","content":"x"}]`,
		`[{"role":"user","role":null,"content":"x"}]`,
		`[{"r\u006fle":"user"}]`,
		`[{"role":5}]`,
		`[null]`,
		`[{"tool_calls":[{"function":null,"custom":{"name":"c","input":"i"}}]}]`,
		`[{"type":"image_url","image_url":{"url":"data:x"},"detail":"low"},{"type":"text","text":null},{"type":"file","file":{"file_data":"d"}}]`,
		`[{"type":"input_text","text":"\ud83d\ude00 \u2028","TEXT":"y"}]`,
		`{"a":1,"a":2,"b":[ {"c" : "d"} ]}`,
		`{"type":"function","function":{"name":"f","description":"d","parameters":{"type":"object"},"strict":true}}`,
		`{"type":"function","name":"f","parameters":null,"function":null,"Strict":1}`,
		`{"type":"custom","custom":{"name":"c"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if got, ok := scanTopObject(in); ok {
			var want map[string]json.RawMessage
			if err := json.Unmarshal(in, &want); err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("top: %q\ngot  %q\nwant %q %v", in, got, want, err)
			}
		}
		if !json.Valid(in) {
			// The fast decoders only ever see validated JSON; on anything
			// else they may be wrong but must not panic.
			scanMessages(in)
			scanParts(in)
			return
		}
		if got, ok := scanMessages(in); ok {
			var want []rqChatMessage
			if err := json.Unmarshal(in, &want); err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("messages: %q\ngot  %+v\nwant %+v %v", in, got, want, err)
			}
		}
		if got := (rqChatTool{}); len(in) > 0 && in[0] == '{' && scanChatTool(in, &got) {
			var want rqChatTool
			if err := json.Unmarshal(in, &want); err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("tool: %q\ngot  %+v\nwant %+v %v", in, got, want, err)
			}
		}
		if got, ok := scanParts(in); ok {
			var want []rqChatPart
			if err := json.Unmarshal(in, &want); err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("parts: %q\ngot  %+v\nwant %+v %v", in, got, want, err)
			}
		}
	})
}
