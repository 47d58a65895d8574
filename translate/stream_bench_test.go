package translate

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
)

// textStream builds an upstream stream of n text deltas of a few words each,
// the shape of a real answer.
func textStream(n int) []byte {
	var b bytes.Buffer
	b.WriteString("event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_b\",\"status\":\"in_progress\",\"output\":[]},\"sequence_number\":0}\n\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"item_id\":\"msg_0123456789abcdef\",\"output_index\":1,\"content_index\":0,\"delta\":\" word \\\"%d\\\"\",\"logprobs\":[],\"sequence_number\":%d}\n\n", i, i+1)
	}
	b.WriteString("event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_b\",\"status\":\"completed\",\"output\":[],\"usage\":{\"input_tokens\":10,\"output_tokens\":1000,\"total_tokens\":1010}}}\n\n")
	return b.Bytes()
}

// toolStream builds a stream of one tool call whose arguments arrive in n
// deltas.
func toolStream(n int) []byte {
	var b bytes.Buffer
	b.WriteString("event: response.output_item.added\ndata: {\"type\":\"response.output_item.added\",\"output_index\":0,\"item\":{\"id\":\"fc_1\",\"type\":\"function_call\",\"status\":\"in_progress\",\"arguments\":\"\",\"call_id\":\"call_1\",\"name\":\"write_file\"}}\n\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "event: response.function_call_arguments.delta\ndata: {\"type\":\"response.function_call_arguments.delta\",\"item_id\":\"fc_1\",\"output_index\":0,\"delta\":\"line %d\\\\n\",\"sequence_number\":%d}\n\n", i, i+1)
	}
	b.WriteString("event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_b\",\"status\":\"completed\",\"output\":[]}}\n\n")
	return b.Bytes()
}

// benchTranslate measures reading and translating a whole stream: SSE
// parsing, event scanning and chunk writing, as the handler does per event.
func benchTranslate(b *testing.B, data []byte, events int) {
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	r := bytes.NewReader(data)
	out := make([]byte, 0, 64<<10)
	rd := NewReader(r)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.Reset(data)
		rd.Reset(r)
		s := NewChatStream(ChatStreamOptions{ID: "chatcmpl-bench", Model: "gpt-5.5", Created: 1, IncludeUsage: true})
		for {
			ev, err := rd.Next()
			if err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				break
			}
			out = s.Translate(out[:0], ev)
		}
		out = s.Finish(out[:0])
	}
	b.StopTimer()
	perEvent := float64(b.Elapsed().Nanoseconds()) / float64(b.N) / float64(events)
	b.ReportMetric(perEvent, "ns/event")
	b.ReportMetric(1e9/perEvent, "events/s")
}

func BenchmarkChatStreamText1000(b *testing.B) { benchTranslate(b, textStream(1000), 1002) }

func BenchmarkChatStreamToolCall1000(b *testing.B) { benchTranslate(b, toolStream(1000), 1002) }

// BenchmarkTranslateTextDelta isolates one text-delta event: scanning and
// writing the chunk, with no SSE framing.
func BenchmarkTranslateTextDelta(b *testing.B) {
	ev := Event{
		Name: []byte("response.output_text.delta"),
		Data: []byte(`{"type":"response.output_text.delta","item_id":"msg_0123456789abcdef","output_index":1,"content_index":0,"delta":" word \"42\"","logprobs":[],"sequence_number":7}`),
	}
	s := NewChatStream(ChatStreamOptions{ID: "chatcmpl-bench", Model: "gpt-5.5", Created: 1})
	out := make([]byte, 0, 4096)
	out = s.Translate(out, ev)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out = s.Translate(out[:0], ev)
	}
	if !strings.Contains(string(out), `"content":" word \"42\""`) {
		b.Fatalf("unexpected chunk %s", out)
	}
}

func BenchmarkAggregateChat1000(b *testing.B) {
	data := textStream(1000)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		if _, res := AggregateChat(bytes.NewReader(data), ChatStreamOptions{Model: "m"}); res.Err != nil {
			b.Fatal(res.Err)
		}
	}
}

// BenchmarkResponsesStreamText1000 is the /v1/responses relay: read events,
// note the terminal one, write them on in the client's framing, as the
// handler's loop does.
func BenchmarkResponsesStreamText1000(b *testing.B) {
	data := textStream(1000)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	r := bytes.NewReader(data)
	out := make([]byte, 0, 64<<10)
	rd := NewReader(r)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.Reset(data)
		rd.Reset(r)
		var s ResponsesStream
		for {
			ev, err := rd.Next()
			if err != nil {
				break
			}
			out = s.Translate(out, ev)
			if len(out) >= 32<<10 {
				out = out[:0]
			}
		}
		if !s.Done() || !s.Result().Completed {
			b.Fatal("stream not completed")
		}
	}
	b.StopTimer()
	perEvent := float64(b.Elapsed().Nanoseconds()) / float64(b.N) / 1002
	b.ReportMetric(perEvent, "ns/event")
}
