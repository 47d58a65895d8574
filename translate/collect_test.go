package translate

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// TestResponseCollectorMatchesAggregate checks that the store's collector,
// fed the events one at a time, builds the response a non-streaming
// client gets from the same stream.
func TestResponseCollectorMatchesAggregate(t *testing.T) {
	for _, name := range []string{"reasoning_tool_call", "parallel_tool_calls", "done_only_call", "text_only_in_done", "reasoning_text", "incomplete", "cut_stream"} {
		t.Run(name, func(t *testing.T) {
			names := fixtureOptions(false).ToolNames
			stream := readFixture(t, name)
			want, wantRes := AggregateResponses(bytes.NewReader(stream), names, nil)
			rc := NewResponseCollector(names, nil)
			rd := NewReader(bytes.NewReader(stream))
			for {
				ev, err := rd.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if rc.Observe(ev) {
					break
				}
			}
			got, res := rc.Response()
			if !bytes.Equal(got, want) {
				t.Errorf("collector built\n%s\nAggregateResponses\n%s", got, want)
			}
			if (res.Err == nil) != (wantRes.Err == nil) || res.Completed != wantRes.Completed {
				t.Errorf("result %+v, want %+v", res, wantRes)
			}
		})
	}
}
