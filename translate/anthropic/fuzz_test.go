package anthropic

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usemysub/caddy-codex-proxy/translate"
)

// FuzzToResponses: any body is either a 400 in the client's terms or an
// upstream body that is one JSON object with the mapped model.
func FuzzToResponses(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "request", "*.json"))
	for _, file := range files {
		f.Add([]byte(loadGoldenRequest(f, file).Request), false)
	}
	f.Add([]byte(`{"model":"claude-opus","max_tokens":1,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"x","content":[{"type":"image","source":{"type":"url","url":"u"}}]}]}]}`), true)
	f.Add([]byte(`{"model":1}`), false)
	f.Fuzz(func(t *testing.T, body []byte, count bool) {
		m, err := ToResponses(body, Options{CountOnly: count})
		if err != nil {
			var e *translate.Error
			if !errors.As(err, &e) || e.Status != 400 || e.Message == "" {
				t.Fatalf("error %T %v is not a 400 *translate.Error", err, err)
			}
			return
		}
		var top map[string]json.RawMessage
		if err := json.Unmarshal(m.Body, &top); err != nil {
			t.Fatalf("upstream body is not a JSON object: %v\n%s", err, m.Body)
		}
		if string(top["stream"]) != "true" || string(top["store"]) != "false" {
			t.Fatalf("upstream body not stateless streaming: %s", m.Body)
		}
		if _, ok := m.Dialect.(*Request); !ok {
			t.Fatal("no Request in Dialect")
		}
	})
}

// FuzzStream: any upstream bytes give well-framed events ending in
// message_stop or error, never a panic, and Aggregate agrees.
func FuzzStream(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "stream", "*.sse"))
	for _, file := range files {
		f.Add(mustRead(f, file), false, uint8(0))
	}
	f.Add([]byte(created+msgAdded+textDelta("abcSTOPdef")+completed), true, uint8(2))
	f.Fuzz(func(t *testing.T, sse []byte, thinking bool, max uint8) {
		opts := StreamOptions{Request: Request{Model: "claude", Thinking: thinking, MaxTokens: int64(max), StopSequences: []string{"STOP"}}}
		out, res := runStream(t, sse, opts)
		names := checkEvents(t, out)
		if len(names) > 0 && names[len(names)-1] != "message_stop" && names[len(names)-1] != "error" {
			t.Fatalf("stream ends with %v", names)
		}
		if res.Err == nil && len(names) == 0 {
			t.Fatal("a successful stream produced nothing")
		}
		agg, ares := Aggregate(bytes.NewReader(sse), opts)
		if ares.Err == nil && !json.Valid(agg) {
			t.Fatalf("aggregate is not JSON: %s", agg)
		}
	})
}

func TestLongToolUseIDsMappedBothWays(t *testing.T) {
	long := "toolu_" + strings.Repeat("x", 80)
	body := `{"model":"claude-sonnet-4-5","max_tokens":50,"messages":[{"role":"user","content":"go"},` +
		`{"role":"assistant","content":[{"type":"tool_use","id":"` + long + `","name":"Read","input":{}}]},` +
		`{"role":"user","content":[{"type":"tool_result","tool_use_id":"` + long + `","content":"ok"}]}],` +
		`"tools":[{"name":"Read","input_schema":{"type":"object"}}]}`
	m, err := ToResponses([]byte(body), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(m.Body), long) || len(m.CallIDs) == 0 {
		t.Fatalf("the 86-character id went upstream: %s", m.Body)
	}
	var short string
	for k := range m.CallIDs {
		short = k
	}
	call := "event: response.output_item.added\ndata: {\"type\":\"response.output_item.added\",\"output_index\":0,\"item\":{\"id\":\"fc_1\",\"type\":\"function_call\",\"call_id\":\"" + short + "\",\"name\":\"Read\",\"arguments\":\"\"}}\n\n" + completed
	out, _ := runStream(t, []byte(call), OptionsFor(m))
	if !strings.Contains(out, `"id":"`+long+`"`) {
		t.Fatalf("the client's id is not restored:\n%s", out)
	}
}

func mustRead(f *testing.F, file string) []byte {
	b, err := os.ReadFile(file)
	if err != nil {
		f.Fatal(err)
	}
	return b
}
