package translate

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
)

// refDepth is jsonDepth computed with encoding/json's tokenizer.
func refDepth(b []byte) (int, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	depth, deepest := 0, 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return deepest, nil
		}
		if err != nil {
			return 0, err
		}
		if d, ok := tok.(json.Delim); ok {
			if d == '{' || d == '[' {
				depth++
				deepest = max(deepest, depth)
			} else {
				depth--
			}
		}
	}
}

func TestJSONDepth(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{`1`, 0},
		{`"[{"`, 0},
		{`{}`, 1},
		{`[]`, 1},
		{`{"a":[]}`, 2},
		{`{"a":"[[[{{{"}`, 1},
		{`{"a":"\"[[","b":{}}`, 2},
		{`[{"a":"\\"},[[]]]`, 3},
		{`[{"a":"\\\"]]]"},[[{"b":"\u005b"}]]]`, 4},
		{`{"a":[{"b":[{"c":[]}]}]}`, 6},
	} {
		if got := jsonDepth([]byte(tc.in), 100); got != tc.want {
			t.Errorf("jsonDepth(%s) = %d, want %d", tc.in, got, tc.want)
		}
		if ref, _ := refDepth([]byte(tc.in)); ref != tc.want {
			t.Errorf("reference depth of %s = %d, want %d", tc.in, ref, tc.want)
		}
	}
	if got := jsonDepth([]byte(strings.Repeat("[", 50)+strings.Repeat("]", 50)), 10); got != 11 {
		t.Errorf("over the limit: %d, want limit+1", got)
	}
}

func FuzzJSONDepth(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":"\\"}`, `[[[]],{"x":"]"}]`, `"\"["`, `{"a":[1,{"b":null}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) {
			return
		}
		want, err := refDepth(b)
		if err != nil {
			return
		}
		if got := jsonDepth(b, 1<<20); got != want {
			t.Fatalf("jsonDepth(%q) = %d, encoding/json says %d", b, got, want)
		}
	})
}

// nested returns a JSON schema nested depth levels deep (arrays of arrays).
func nested(depth int) string {
	return strings.Repeat(`{"type":"array","items":`, depth-1) + `{"type":"string"}` + strings.Repeat(`}`, depth-1)
}

// deepResponsesBody is a /v1/responses body whose tool schema makes the
// whole body exactly depth levels deep.
func deepResponsesBody(t *testing.T, depth int) string {
	t.Helper()
	body := `{"model":"gpt-5.5","input":"hi","tools":[{"type":"function","name":"f","parameters":` + nested(depth-3) + `}]}`
	if d, _ := refDepth([]byte(body)); d != depth {
		t.Fatalf("built a body %d deep, want %d", d, depth)
	}
	return body
}

// TestEventDepthLimit pins maxEventDepth to what the stream scanner really
// reads: the margin MaxRequestDepth keeps is only real if it is.
func TestEventDepthLimit(t *testing.T) {
	event := func(depth int) []byte {
		return []byte(`{"type":"response.created","response":{"id":"r","tools":[` + nested(depth-3) + `]}}`)
	}
	if d, _ := refDepth(event(maxEventDepth)); d != maxEventDepth {
		t.Fatalf("built an event %d deep", d)
	}
	if _, ok := parseEvent(Event{Data: event(maxEventDepth)}); !ok {
		t.Fatalf("an event %d deep is refused", maxEventDepth)
	}
	if _, ok := parseEvent(Event{Data: event(maxEventDepth + 1)}); ok {
		t.Fatalf("an event %d deep is read: maxEventDepth is stale", maxEventDepth+1)
	}
	if MaxRequestDepth+2 > maxEventDepth {
		t.Fatal("no room for the echo's wrapping")
	}
}

func TestRequestDepthLimit(t *testing.T) {
	chatBody := func(depth int) string {
		// tools[i].function.parameters sits one level deeper than in a
		// Responses body.
		return `{"model":"gpt-5.5","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f","parameters":` + nested(depth-4) + `}}]}`
	}
	for name, fn := range map[string]func(int) string{
		"responses": func(d int) string { return deepResponsesBody(t, d) },
		"chat":      chatBody,
		"chat, input shape": func(d int) string {
			return strings.Replace(deepResponsesBody(t, d), `"input"`, `"messages":[],"input"`, 1)
		},
	} {
		t.Run(name, func(t *testing.T) {
			mapRequest := NormalizeResponses
			if strings.HasPrefix(name, "chat") {
				mapRequest = ChatToResponses
			}
			rqMust(t, mapRequest, fn(MaxRequestDepth), RequestOptions{})
			e := rqErr(t, mapRequest, fn(MaxRequestDepth+1), RequestOptions{})
			if e.Status != 400 || e.Type != "invalid_request_error" || e.Code != codeTooDeep ||
				!strings.Contains(e.Message, strconv.Itoa(MaxRequestDepth)) {
				t.Fatalf("error %+v", e)
			}
		})
	}
}

// TestMaximalDepthEchoCompletes: the deepest request accepted, echoed back
// the way the backend does (its tools and text.format inside the response
// object of created, in_progress and completed), is answered on every path.
// Before the request-side limit this ended in 502 stream_incomplete.
func TestMaximalDepthEchoCompletes(t *testing.T) {
	body := deepResponsesBody(t, MaxRequestDepth)
	body = strings.Replace(body, `"input":"hi",`, `"input":"hi","text":{"format":{"type":"json_schema","name":"x","schema":`+nested(MaxRequestDepth-3)+`}},`, 1)
	m := rqMust(t, NormalizeResponses, body, RequestOptions{})
	var up struct {
		Tools json.RawMessage `json:"tools"`
		Text  json.RawMessage `json:"text"`
	}
	if err := json.Unmarshal(m.Body, &up); err != nil || up.Tools == nil || up.Text == nil {
		t.Fatalf("upstream body: %v", err)
	}
	resp := func(status string) string {
		return `{"id":"resp_deep","object":"response","status":"` + status + `","tools":` + string(up.Tools) + `,"text":` + string(up.Text) + `,"output":[]`
	}
	stream := "event: response.created\ndata: {\"type\":\"response.created\",\"response\":" + resp("in_progress") + "}}\n\n" +
		"event: response.in_progress\ndata: {\"type\":\"response.in_progress\",\"response\":" + resp("in_progress") + "}}\n\n" +
		"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"item_id\":\"msg_1\",\"output_index\":0,\"delta\":\"ok\"}\n\n" +
		"event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":" + resp("completed") + `,"usage":{"input_tokens":1,"output_tokens":1,"total_tokens":2}}}` + "\n\n"
	if d, _ := refDepth([]byte(`{"response":` + resp("x") + `}}`)); d <= MaxRequestDepth {
		t.Fatalf("the echo is only %d deep; the test proves nothing", d)
	}

	out, res := translateAll(t, strings.NewReader(stream), ChatStreamOptions{Model: "gpt-5.5"})
	if res.Err != nil || !res.Completed || !bytes.Contains(out, []byte(`"finish_reason":"stop"`)) {
		t.Fatalf("chat stream: %+v\n%s", res.Err, out)
	}
	if _, res := AggregateChat(strings.NewReader(stream), ChatStreamOptions{}); res.Err != nil || !res.Completed {
		t.Fatalf("chat aggregate: %+v", res.Err)
	}
	if b, res := AggregateResponses(strings.NewReader(stream), nil, nil); res.Err != nil || !json.Valid(b) {
		t.Fatalf("responses aggregate: %+v", res.Err)
	}
	var rs ResponsesStream
	rd := NewReader(strings.NewReader(stream))
	for {
		ev, err := rd.Next()
		if err != nil {
			break
		}
		rs.Translate(nil, ev)
	}
	if !rs.Done() || rs.Result().Err != nil || !rs.Result().Completed {
		t.Fatalf("responses stream: %+v", rs.Result())
	}
}

// BenchmarkJSONDepth is the depth check's share of BenchmarkChatToResponses50:
// one pass over the same body.
func BenchmarkJSONDepth(b *testing.B) {
	body := rqBenchConversation(12)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if jsonDepth(body, MaxRequestDepth) > MaxRequestDepth {
			b.Fatal("too deep")
		}
	}
}
