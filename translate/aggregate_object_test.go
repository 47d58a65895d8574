package translate

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzResponseObject holds appendResponseObject to the encoding/json
// version it replaced (responseObjectJSON, still its fallback): the same
// bytes for every response object and items both take.
func FuzzResponseObject(f *testing.F) {
	f.Add([]byte(`{"id":"resp_1","object":"response","status":"completed","output":[{"type":"x"}],"usage":{"input_tokens":1}}`),
		[]byte(`{"type":"message","content":[{"type":"output_text","text":"<b> & \u2028 </b>"}]}`), []byte(`{"type":"reasoning"}`))
	f.Add([]byte(` { "z" : 1 , "a":[ 1, 2 ], "a":"<dup>", "\u0062":"\u003c", "k<&>": "v\u2029" } `), []byte("{\"t\":\"\xe2\x80\xa8 \xe2\x80\xa9 \xff\"}"), []byte(`[]`))
	f.Add([]byte(``), []byte(`{}`), []byte(`{"a":"b"}`))
	f.Add([]byte(`null`), []byte(`{}`), []byte(`{"a":"b"}`))
	f.Add([]byte(`{"":1,"output":null}`), []byte(` {"a" : "b"} `), []byte(`"x"`))
	f.Fuzz(func(t *testing.T, response, item1, item2 []byte) {
		items := []json.RawMessage{item1, item2}
		want, werr := responseObjectJSON(response, items)
		got, ok := appendResponseObject(nil, response, items)
		if !ok {
			return // the caller uses responseObjectJSON
		}
		if werr != nil {
			t.Fatalf("appendResponseObject took %q, %q, %q, which encoding/json refuses: %v", response, item1, item2, werr)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("for %q, %q, %q:\n got  %s\n want %s", response, item1, item2, got, want)
		}
	})
}

// FuzzWithMembers holds WithMembers to the map decode and re-encode it
// replaces in api's storedView.
func FuzzWithMembers(f *testing.F) {
	f.Add([]byte(`{"id":"resp_1","store":false,"output":[{"t":"<x>"}]}`), []byte(`true`), []byte(`"resp_0"`))
	f.Add([]byte(` { "b" : [1, 2], "a":"\u2028" } `), []byte(`null`), []byte(` { "x" : "&" } `))
	f.Add([]byte(`null`), []byte(`true`), []byte(`1`))
	f.Fuzz(func(t *testing.T, obj, store, prev []byte) {
		got, ok := WithMembers(obj, []string{"store", "previous_response_id"}, []json.RawMessage{store, prev})
		var m map[string]json.RawMessage
		if json.Unmarshal(obj, &m) != nil || m == nil {
			if ok && len(bytes.TrimSpace(obj)) > 0 {
				t.Fatalf("WithMembers took %q, which does not decode to an object", obj)
			}
			return
		}
		m["store"], m["previous_response_id"] = store, prev
		want, err := json.Marshal(m)
		if !ok {
			return // the caller keeps encoding/json
		}
		if err != nil {
			t.Fatalf("WithMembers took %q, %q, %q, which encoding/json refuses: %v", obj, store, prev, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("for %q, %q, %q:\n got  %s\n want %s", obj, store, prev, got, want)
		}
	})
}

// BenchmarkResponseObject is the stored (and non-stream) response object
// of a 200-delta answer, from its completed event, as ResponseCollector
// makes it; BenchmarkResponseObjectJSON the same by encoding/json.
func BenchmarkResponseObject(b *testing.B) {
	resp, items := benchResponseObject()
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := appendResponseObject(nil, resp, items); !ok {
			b.Fatal("refused")
		}
	}
}

func BenchmarkResponseObjectJSON(b *testing.B) {
	resp, items := benchResponseObject()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := responseObjectJSON(resp, items); err != nil {
			b.Fatal(err)
		}
	}
}

func benchResponseObject() ([]byte, []json.RawMessage) {
	text := bytes.Repeat([]byte("Hello benchmark, this is a delta. "), 200)
	item, _ := json.Marshal(map[string]any{"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
		"content": []any{map[string]any{"type": "output_text", "text": string(text), "annotations": []any{}}}})
	resp, _ := json.Marshal(map[string]any{"id": "resp_1", "object": "response", "status": "completed", "model": "gpt-5.5",
		"output": []json.RawMessage{item}, "usage": map[string]any{"input_tokens": 12, "output_tokens": 200},
		"instructions": "You are a helpful assistant.", "tools": []any{}, "reasoning": map[string]any{"effort": "medium"}})
	return resp, []json.RawMessage{item}
}

// FuzzDoneItemType holds doneItemType to json.Unmarshal into an outItem,
// on valid JSON.
func FuzzDoneItemType(f *testing.F) {
	for _, s := range []string{
		`{"type":"message","id":"m","role":"assistant","status":"completed","content":[{"type":"output_text","text":"hi","annotations":[]}]}`,
		`{"type":"reasoning","summary":[{"type":"summary_text","text":"s"}],"encrypted_content":"e"}`,
		`{"type":"function_call","call_id":"c","name":"f","arguments":"{}"}`,
		`{"Type":"message"}`, `{"type":null}`, `{"type":"a","type":null}`, `{"type":"x","content":"str"}`,
		`{"type":"x","content":[1]}`, `{"type":"x","content":[null,{"TEXT":1}]}`, `{"type":"x","name":5}`,
		`{"ty\u0070e":"x"}`, `{"":1,"type":"x"}`, `[]`, `"x"`, `{"type":"x","summary":{}}`, `{"type":"caf\u00e9"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, item []byte) {
		if !json.Valid(item) {
			return
		}
		var it outItem
		want := ""
		if json.Unmarshal(item, &it) == nil {
			want = it.Type
		}
		if got := doneItemType(item); got != want {
			t.Fatalf("doneItemType(%q) = %q, encoding/json %q", item, got, want)
		}
	})
}
