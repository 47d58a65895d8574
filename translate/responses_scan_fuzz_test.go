package translate

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// The scanner path of NormalizeResponses against the encoding/json
// reference kept in responses_reference_test.go.

// FuzzNormalizeResponsesReference holds NormalizeResponses to the
// encoding/json version it replaced: the same Mapped (body byte for byte,
// model, effort, tool names, call ids, dropped parameters …) for every body
// both accept, and the same client error for every body both refuse.
func FuzzNormalizeResponsesReference(f *testing.F) {
	rqFuzzSeeds(f, responsesCases, chatCases)
	for _, s := range normalizeReferenceSeeds(f) {
		f.Add(s, uint8(0))
	}
	f.Fuzz(func(t *testing.T, body []byte, sel uint8) {
		checkNormalizeReference(t, body, rqFuzzOptions(sel))
	})
}

// normalizeReferenceSeeds are bodies that reach what the scanner does
// differently from encoding/json: whitespace to compact, escaped and
// repeated keys, non-ASCII and escaped strings, ids to strip, long call ids
// and tool names, data URLs, retired tool types.
func normalizeReferenceSeeds(tb testing.TB) [][]byte {
	tb.Helper()
	m, err := ChatToResponses(rqBenchConversation(2), RequestOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, m.Body, "", " \t"); err != nil {
		tb.Fatal(err)
	}
	long := string(bytes.Repeat([]byte("x"), 80))
	return [][]byte{
		m.Body,
		pretty.Bytes(),
		[]byte(`{"model":"gpt-5.5","input":[{"type":"message","role":"system","id":"m1","status":"completed","content":[{"type":"input_text","text":"s\u00e9 \"q\" \ud83d\ude00"}]},{"role":"user","content":"hi"}]}`),
		[]byte(`{"mod\u0065l":"gpt-5.5","input":"hi","input":[{"type":"message","role":"user","content":"a","type":"message"}],"tools":[]}`),
		[]byte(`{"model":"gpt-5.5","input":[{"type":"function_call","call_id":"call_` + long + `","name":"` + long + `","arguments":"{}","id":"fc_1"},{"type":"function_call_output","call_id":"call_` + long + `","output":"ok"}],"tools":[{"type":"function","name":"` + long + `","parameters":{ "type" : "object" }}],"tool_choice":{"type":"function","name":"` + long + `"}}`),
		[]byte(`{"model":"gpt-5.5","input":[{"type":"message","role":"user","content":[{"type":"input_image","image_url":"data:image/png;base64,iVBORw0KGgo=","prompt_cache_breakpoint":true},{"type":"input_text","text":"x"}]}],"text":{"verbosity":"low","format":{"type":"text"}},"include":["reasoning.encrypted_content","x"],"tools":[{"type":"web_search_preview"},{"type":"function","function":{"name":"f","parameters":{}}}],"parallel_tool_calls":true,"store":true,"metadata":{"a":"b"},"extra_thing":[1, 2 ,3]}`),
		[]byte(`{"model":"gpt-5.5","input":[{"type":"reasoning","id":"rs_1","summary":[],"content":[{"type":"reasoning_text","text":"t"}],"encrypted_content":"e"},{"type":"custom_tool_call","call_id":"c1","name":"apply_patch","input":"x"},{"type":"local_shell_call","call_id":"c2","action":{}},{"type":"function_call_output","call_id":"c2","output":"o"}],"reasoning":{"effort":"high","summary":"detailed"},"service_tier":"priority","prompt_cache_key":"k"}`),
		[]byte("{\"model\":\"gpt-5.5\",\"input\":[{\"type\":\"message\",\"role\":\"user\",\"content\":\"\xff bad utf-8\",\"\xfe\":1}]}"),
	}
}

// TestNormalizeResponsesReferenceSeeds runs the fuzzer's own seeds, and the
// bench conversations, as a plain test.
func TestNormalizeResponsesReferenceSeeds(t *testing.T) {
	bodies := normalizeReferenceSeeds(t)
	for _, rounds := range []int{1, 12, 40} {
		m, err := ChatToResponses(rqBenchConversation(rounds), RequestOptions{})
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, m.Body)
	}
	for _, c := range responsesCases {
		bodies = append(bodies, []byte(c.body))
	}
	for i, body := range bodies {
		for sel := range uint8(8) {
			checkNormalizeReference(t, body, rqFuzzOptions(sel))
		}
		if t.Failed() {
			t.Fatalf("body %d: %s", i, body)
		}
	}
}

// checkNormalizeReference fails t when the two versions disagree on body.
func checkNormalizeReference(t *testing.T, body []byte, opts RequestOptions) {
	t.Helper()
	got, gerr := NormalizeResponses(body, opts)
	want, werr := refNormalize(body, opts)
	if want != nil {
		// Images was found by api searching the upstream body before the
		// translator reported it.
		want.Images = UsesImageTool(want.Body)
	}
	switch {
	case gerr != nil && werr != nil:
		g, w := gerr.(*Error).JSON(), werr.(*Error).JSON()
		if !bytes.Equal(g, w) {
			t.Fatalf("errors differ for %q:\n got  %s\n want %s", body, g, w)
		}
	case gerr != nil || werr != nil:
		t.Fatalf("for %q: scanner error %v, reference error %v", body, gerr, werr)
	case !reflect.DeepEqual(got, want):
		t.Fatalf("results differ for %q:\n got  %+v\n want %+v\n got body  %s\n want body %s", body, got, want, got.Body, want.Body)
	}
}

// FuzzRawObjectReference holds the scanner primitives to the encoding/json
// ones they replaced, on valid JSON: parseRawObject and marshal, stringParam,
// boolParam and appendCompactValid.
func FuzzRawObjectReference(f *testing.F) {
	for _, s := range normalizeReferenceSeeds(f) {
		f.Add(s)
	}
	f.Add([]byte(`{"a" : 1, "a":[ true , null ], "\u0062":"x\/y", "":{}}`))
	f.Add([]byte(`"caf\u00e9 \ud800 x"`))
	f.Add([]byte(` true `))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) {
			return
		}
		var want bytes.Buffer
		_ = json.Compact(&want, raw)
		if got := appendCompactValid(nil, raw); !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("appendCompactValid(%q) = %q, json.Compact %q", raw, got, want.Bytes())
		}
		gs, gerr := stringParam(raw, "p")
		ws, werr := refStringParam(raw, "p")
		if gs != ws || (gerr == nil) != (werr == nil) {
			t.Fatalf("stringParam(%q) = %q, %v; reference %q, %v", raw, gs, gerr, ws, werr)
		}
		gb, gset, gerr := boolParam(raw, "p")
		wb, wset, werr := refBoolParam(raw, "p")
		if gb != wb || gset != wset || (gerr == nil) != (werr == nil) {
			t.Fatalf("boolParam(%q) = %v, %v, %v; reference %v, %v, %v", raw, gb, gset, gerr, wb, wset, werr)
		}
		if r := bytes.TrimSpace(raw); r[0] != '{' {
			return
		}
		got, perr := parseRawObject(raw)
		wantO, wperr := refParseRawObject(raw)
		if perr != nil || wperr != nil {
			t.Fatalf("parseRawObject(%q): %v; reference %v", raw, perr, wperr)
		}
		wb2, err := refMarshal(wantO)
		if err != nil {
			t.Fatal(err)
		}
		if gb2 := got.marshal(); !bytes.Equal(gb2, wb2) {
			t.Fatalf("parseRawObject+marshal(%q) = %s, reference %s", raw, gb2, wb2)
		}
		if len(got) != len(wantO) {
			t.Fatalf("parseRawObject(%q): %d members, reference %d", raw, len(got), len(wantO))
		}
		for i := range got {
			if got[i].key != wantO[i].key {
				t.Fatalf("parseRawObject(%q): key %d %q, reference %q", raw, i, got[i].key, wantO[i].key)
			}
		}
	})
}
