package anthropic

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/usemysub/caddy-codex-proxy/translate"
)

// benchText is an upstream answer of n text deltas, the shape translate's
// BenchmarkChatStream* read, so the two translators' costs per event
// compare.
func benchText(n int) []byte {
	var b bytes.Buffer
	b.WriteString(created + msgAdded)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"item_id\":\"msg_1\",\"output_index\":1,\"content_index\":0,\"delta\":\" word \\\"%d\\\"\",\"logprobs\":[],\"sequence_number\":%d}\n\n", i, i+1)
	}
	b.WriteString(msgDone + completed)
	return b.Bytes()
}

func benchStream(b *testing.B, req Request) {
	data := benchText(1000)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	r := bytes.NewReader(data)
	rd := translate.NewReader(r)
	out := make([]byte, 0, 64<<10)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.Reset(data)
		rd.Reset(r)
		s := NewStream(StreamOptions{ID: "msg_bench", Request: req})
		for !s.Done() {
			ev, err := rd.Next()
			if err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				out = s.Finish(out[:0])
				break
			}
			out = s.Translate(out[:0], ev)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/event")
}

// BenchmarkStreamText: text deltas relayed as they come (no allocation per
// event beyond translate's scanner).
func BenchmarkStreamText(b *testing.B) { benchStream(b, Request{Model: "claude-sonnet-4-5"}) }

// BenchmarkStreamStopSequences: the same with stop sequences, which decode
// each delta to look for them.
func BenchmarkStreamStopSequences(b *testing.B) {
	benchStream(b, Request{Model: "claude-sonnet-4-5", StopSequences: []string{"\n\nHuman:"}})
}
