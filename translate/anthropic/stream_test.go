package anthropic

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usemysub/caddy-codex-proxy/translate"
)

// runStream translates a whole upstream stream as relay.Stream drives a
// translator: event by event, then Finish at the end of the stream.
func runStream(t testing.TB, sse []byte, opts StreamOptions) (string, translate.StreamResult) {
	t.Helper()
	s := NewStream(opts)
	rd := translate.NewReader(bytes.NewReader(sse))
	var out []byte
	for !s.Done() {
		ev, err := rd.Next()
		if err != nil {
			out = s.Finish(out)
			break
		}
		out = s.Translate(out, ev)
	}
	return string(out), s.Result()
}

// TestStreamGolden translates translate's own upstream streams (its
// testdata/stream), as a stream with thinking shown and as one Message.
func TestStreamGolden(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "stream", "*.sse"))
	if len(files) < 10 {
		t.Fatalf("want translate's upstream streams, got %d", len(files))
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".sse")
		t.Run(name, func(t *testing.T) {
			sse, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			opts := StreamOptions{ID: "msg_test", Request: Request{Model: "claude-opus-5-5", Thinking: true}}
			out, res := runStream(t, sse, opts)
			checkEvents(t, out)
			agg, ares := Aggregate(bytes.NewReader(sse), opts)
			if (res.Err == nil) != (ares.Err == nil) || res.FinishReason != ares.FinishReason {
				t.Errorf("stream and aggregate disagree: %+v vs %+v", res, ares)
			}
			var b strings.Builder
			b.WriteString(out)
			fmt.Fprintf(&b, "--- result: finish=%q usage=%+v err=%v\n--- aggregate\n", res.FinishReason, res.Usage, res.Err)
			if ares.Err != nil {
				fmt.Fprintf(&b, "error %d: %s\n", ares.Err.Status, ErrorBody(ares.Err))
			} else {
				var pretty bytes.Buffer
				if err := json.Indent(&pretty, agg, "", "  "); err != nil {
					t.Fatalf("aggregate is not JSON: %v\n%s", err, agg)
				}
				b.Write(pretty.Bytes())
				b.WriteByte('\n')
			}
			checkGolden(t, filepath.Join("testdata", "stream", name+".golden"), []byte(b.String()))
		})
	}
}

// checkEvents asserts the framing Anthropic's SDK parses: "event: NAME"
// then one data line of JSON whose type is NAME, then a blank line; and
// the order message_start … message_stop with balanced blocks.
func checkEvents(t testing.TB, out string) []string {
	t.Helper()
	var names []string
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		name, ok := strings.CutPrefix(sc.Text(), "event: ")
		if !ok {
			t.Fatalf("want an event line, got %q in\n%s", sc.Text(), out)
		}
		sc.Scan()
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		var v struct{ Type string }
		if !ok || json.Unmarshal([]byte(data), &v) != nil || v.Type != name {
			t.Fatalf("event %s has data %q", name, sc.Text())
		}
		sc.Scan()
		if sc.Text() != "" {
			t.Fatalf("event %s not ended by a blank line", name)
		}
		names = append(names, name)
	}
	open := false
	for i, n := range names {
		switch n {
		case "message_start":
			if i != 0 {
				t.Fatalf("message_start at %d: %v", i, names)
			}
		case "content_block_start":
			if open {
				t.Fatalf("block started inside a block: %v", names)
			}
			open = true
		case "content_block_delta":
			if !open {
				t.Fatalf("delta outside a block: %v", names)
			}
		case "content_block_stop":
			open = false
		case "message_stop", "error":
			if open && n == "message_stop" || i != len(names)-1 {
				t.Fatalf("%s not last or inside a block: %v", n, names)
			}
		}
	}
	return names
}

const (
	created   = "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\"}}\n\n"
	msgAdded  = "event: response.output_item.added\ndata: {\"type\":\"response.output_item.added\",\"output_index\":1,\"item\":{\"id\":\"msg_1\",\"type\":\"message\"}}\n\n"
	msgDone   = "event: response.output_item.done\ndata: {\"type\":\"response.output_item.done\",\"output_index\":1,\"item\":{\"id\":\"msg_1\",\"type\":\"message\"}}\n\n"
	completed = "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_1\",\"usage\":{\"input_tokens\":100,\"input_tokens_details\":{\"cached_tokens\":60},\"output_tokens\":7}}}\n\n"
	rsAdded   = "event: response.output_item.added\ndata: {\"type\":\"response.output_item.added\",\"output_index\":0,\"item\":{\"id\":\"rs_1\",\"type\":\"reasoning\"}}\n\n"
)

func textDelta(s string) string {
	b, _ := json.Marshal(s)
	return "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"item_id\":\"msg_1\",\"output_index\":1,\"delta\":" + string(b) + "}\n\n"
}

// text is the concatenated text_delta of a translated stream.
func streamedText(t *testing.T, out string) string {
	var b strings.Builder
	for _, line := range strings.Split(out, "\n") {
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		var ev struct {
			Delta struct{ Type, Text string }
		}
		_ = json.Unmarshal([]byte(data), &ev)
		if ev.Delta.Type == "text_delta" {
			b.WriteString(ev.Delta.Text)
		}
	}
	return b.String()
}

func TestStreamStops(t *testing.T) {
	for _, tc := range []struct {
		name     string
		req      Request
		sse      string
		text     string
		reason   string
		contains []string
	}{
		{name: "end turn with cache reads", req: Request{MaxTokens: 100},
			sse: created + msgAdded + textDelta("Hello") + msgDone + completed, text: "Hello", reason: "end_turn",
			contains: []string{`"usage":{"input_tokens":40,"cache_creation_input_tokens":0,"cache_read_input_tokens":60,"output_tokens":7}`}},
		{name: "stop sequence split over deltas", req: Request{StopSequences: []string{"STOP", "\n\nHuman:"}},
			sse: created + msgAdded + textDelta("one two ST") + textDelta("OP three") + msgDone + completed, text: "one two ", reason: "stop_sequence",
			contains: []string{`"stop_sequence":"STOP"`}},
		{name: "stop sequence never met keeps all text", req: Request{StopSequences: []string{"STOP"}},
			sse: created + msgAdded + textDelta("é ST") + textDelta("é") + msgDone + completed, text: "é STé", reason: "end_turn"},
		{name: "max tokens stops the relay", req: Request{MaxTokens: 3},
			sse:  created + msgAdded + textDelta("abcd") + textDelta("efgh") + textDelta("ijkl") + textDelta("mnop") + msgDone + completed,
			text: "abcdefghijkl", reason: "max_tokens"},
		{name: "hidden reasoning pings", req: Request{},
			sse: created + rsAdded + msgAdded + textDelta("Hi") + msgDone + completed, text: "Hi", reason: "end_turn",
			contains: []string{"event: ping\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.Model = "claude-sonnet-4-5"
			out, res := runStream(t, []byte(tc.sse), StreamOptions{Request: tc.req})
			checkEvents(t, out)
			if got := streamedText(t, out); got != tc.text {
				t.Errorf("text %q, want %q", got, tc.text)
			}
			if res.FinishReason != tc.reason || !strings.Contains(out, `"stop_reason":"`+tc.reason+`"`) {
				t.Errorf("stop reason %q, want %q:\n%s", res.FinishReason, tc.reason, out)
			}
			for _, c := range tc.contains {
				if !strings.Contains(out, c) {
					t.Errorf("missing %s in\n%s", c, out)
				}
			}
			agg, ares := Aggregate(strings.NewReader(tc.sse), StreamOptions{Request: tc.req})
			if ares.FinishReason != tc.reason || !strings.Contains(string(agg), `"text":`+mustJSON(tc.text)) {
				t.Errorf("aggregate: %s", agg)
			}
		})
	}
}

func mustJSON(s string) string { b, _ := json.Marshal(s); return string(b) }
