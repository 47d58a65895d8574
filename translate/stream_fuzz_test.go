package translate

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func addStreamSeeds(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "stream", "*.sse"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("data: {\"type\":\"response.output_text.delta\",\"delta\":\"\\ud83d\\ude00\"}\n\n"))
	f.Add([]byte("data: {\"type\":\"response.output_item.done\",\"item\":{\"type\":\"function_call\",\"name\":\"\\u0000x\",\"call_id\":\"c\",\"arguments\":\"{}\"}}\n\n"))
	f.Add([]byte("data: {\"type\":\"error\",\"error\":{\"type\":\"x\",\"message\":\"m\"}}\n\n"))
}

// FuzzReader: the SSE reader never panics and never returns more data than
// it was given.
func FuzzReader(f *testing.F) {
	addStreamSeeds(f)
	f.Add([]byte("data: a\r\ndata: b\r\r\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		rd := NewReaderSize(bytes.NewReader(in), 1<<16)
		total := 0
		for {
			ev, err := rd.Next()
			if err != nil {
				return
			}
			total += len(ev.Data)
			if total > len(in) {
				t.Fatalf("read %d data bytes from %d input bytes", total, len(in))
			}
		}
	})
}

// FuzzChatStream: whatever the upstream sends, every event the client gets is
// valid JSON or [DONE], [DONE] comes once and last, and there is at most one
// finish_reason.
func FuzzChatStream(f *testing.F) {
	addStreamSeeds(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		s := NewChatStream(ChatStreamOptions{ID: "chatcmpl-f", Model: "m\"\u2028", Created: 1, IncludeUsage: true,
			ToolNames: ToolNames{"a": "b"}, CallIDs: fuzzCallIDs, LegacyFunctions: len(in)%2 == 1})
		rd := NewReaderSize(bytes.NewReader(in), 1<<16)
		var out []byte
		for {
			ev, err := rd.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, ErrEventTooLarge) {
					t.Fatal(err)
				}
				break
			}
			out = s.Translate(out, ev)
		}
		out = s.Finish(out)
		blocks := strings.Split(strings.TrimSuffix(string(out), "\n\n"), "\n\n")
		finishes := 0
		for i, b := range blocks {
			data, ok := strings.CutPrefix(b, "data: ")
			if !ok || strings.Contains(data, "\n") {
				t.Fatalf("bad block %q", b)
			}
			if data == "[DONE]" {
				if i != len(blocks)-1 {
					t.Fatal("[DONE] before the end")
				}
				continue
			}
			if !json.Valid([]byte(data)) {
				t.Fatalf("invalid JSON sent to the client: %s", data)
			}
			finishes += strings.Count(data, `"finish_reason":"`)
		}
		if blocks[len(blocks)-1] != "data: [DONE]" {
			t.Fatal("stream does not end with [DONE]")
		}
		if finishes > 1 {
			t.Fatalf("%d finish reasons", finishes)
		}
	})
}

// fuzzCallIDs restores a short id that seeds and mutations can contain into
// a long one that needs JSON escaping.
var fuzzCallIDs = CallIDs{"call_1": "long\"id\u2028<" + strings.Repeat("x", 64)}

// FuzzAggregate: non-stream aggregation never panics and yields either valid
// JSON or an error.
func FuzzAggregate(f *testing.F) {
	addStreamSeeds(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		body, res := AggregateChat(bytes.NewReader(in), ChatStreamOptions{Model: "m", CallIDs: fuzzCallIDs, LegacyFunctions: len(in)%2 == 1})
		if res.Err == nil && !json.Valid(body) {
			t.Fatalf("invalid chat body %s", body)
		}
		if res.Err != nil && !json.Valid(res.Err.JSON()) {
			t.Fatal("invalid error JSON")
		}
		body, res = AggregateResponses(bytes.NewReader(in), nil, fuzzCallIDs)
		if res.Err == nil && !json.Valid(body) {
			t.Fatalf("invalid responses body %s", body)
		}
		rs := ResponsesStream{CallIDs: fuzzCallIDs}
		rd := NewReaderSize(bytes.NewReader(in), 1<<16)
		var out []byte
		for {
			ev, err := rd.Next()
			if err != nil {
				break
			}
			out = rs.Translate(out, ev)
		}
		_ = rs.Finish(out)
	})
}
