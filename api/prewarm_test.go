package api

import (
	"io"
	"strings"
	"testing"
)

// A generate:false request (the Codex CLI's WebSocket prewarm) is answered
// by the proxy: an empty completed response, nothing sent upstream,
// nothing charged.
func TestPrewarmRunsNothingUpstream(t *testing.T) {
	for _, stream := range []bool{true, false} {
		e := newEnv(t)
		body := `{"model":"gpt-5.5","generate":false,"input":"warm me","stream":` + map[bool]string{true: "true", false: "false"}[stream] + `}`
		res, m := e.do(t, "POST", "/v1/responses", testKey, strings.NewReader(body))
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 || e.up.calls() != 0 {
			t.Fatalf("stream=%v: %d, %d upstream calls: %s", stream, res.StatusCode, e.up.calls(), b)
		}
		if stream && (!strings.Contains(string(b), "event: response.created") || !strings.Contains(string(b), `"type":"response.completed"`)) {
			t.Fatalf("events: %s", b)
		}
		if !stream && (m["status"] != "completed" || !strings.HasPrefix(m["id"].(string), "resp_")) {
			t.Fatalf("body: %v", m)
		}
		if rec := e.rec.last(); rec.Status != 200 || rec.InputTokens != 0 || rec.Estimated {
			t.Fatalf("stream=%v: charged %+v", stream, rec)
		}
	}
	// generate:true (or absent) still generates.
	e := newEnv(t)
	if res, _ := e.do(t, "POST", "/v1/responses", testKey, strings.NewReader(`{"model":"gpt-5.5","generate":true,"input":"hi"}`)); res.StatusCode != 200 || e.up.calls() != 1 {
		t.Fatalf("generate:true: %d, %d calls", res.StatusCode, e.up.calls())
	}
}
