package caddymodule

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
)

// compactionInput is a conversation a client compacts with compaction v2
// (the Codex CLI's remote_compaction_v2): the history, then a
// compaction_trigger as its last item.
const compactionInput = `[{"role":"user","content":"first question"},` +
	`{"type":"message","role":"assistant","content":[{"type":"output_text","text":"first answer"}]},` +
	`{"type":"compaction_trigger"}]`

// onlyCompaction checks a response's output is exactly one compaction
// item, and returns its id.
func onlyCompaction(t *testing.T, where string, resp map[string]any) string {
	t.Helper()
	out, _ := resp["output"].([]any)
	if len(out) != 1 {
		t.Fatalf("%s: %d output items, want exactly one compaction item: %v", where, len(out), out)
	}
	item := out[0].(map[string]any)
	if enc, _ := item["encrypted_content"].(string); item["type"] != "compaction" || !strings.HasPrefix(enc, "gAAAAB") {
		t.Fatalf("%s: output item %v", where, item)
	}
	id, _ := resp["id"].(string)
	return id
}

// lastUpstreamInput is the input of the fake's last /responses request.
func lastUpstreamInput(t *testing.T, fake *codextest.Server) []any {
	t.Helper()
	reqs := fake.RequestsTo("/responses")
	in, _ := reqs[len(reqs)-1].JSON["input"].([]any)
	return in
}

// TestCompactionTriggerPassesThrough: a compaction_trigger input item goes
// upstream as the final item of the turn and the one compaction item the
// backend answers comes back, on HTTP and on a client WebSocket; a turn
// chained on the compaction with previous_response_id goes upstream
// without the trigger, which the backend refuses anywhere but last.
func TestCompactionTriggerPassesThrough(t *testing.T) {
	env := newProxyEnv(t)
	post := func(body string) (int, map[string]any) {
		t.Helper()
		r, _ := http.NewRequest(http.MethodPost, env.srv.URL+"/v1/responses", strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+env.key)
		r.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%d %s", res.StatusCode, b)
		}
		return res.StatusCode, m
	}

	status, resp := post(`{"model":"gpt-5.5","input":` + compactionInput + `}`)
	if status != http.StatusOK {
		t.Fatalf("HTTP: %d %v", status, resp)
	}
	httpID := onlyCompaction(t, "HTTP", resp)
	in := lastUpstreamInput(t, env.fake)
	if last := in[len(in)-1].(map[string]any); len(in) != 3 || last["type"] != "compaction_trigger" {
		t.Fatalf("upstream input %v", in)
	}

	// Chained on the compaction: the trigger asked for that turn only.
	status, resp = post(`{"model":"gpt-5.5","previous_response_id":"` + httpID + `","input":"second question"}`)
	if status != http.StatusOK {
		t.Fatalf("chained on the compaction: %d %v", status, resp)
	}
	for _, it := range lastUpstreamInput(t, env.fake) {
		if it.(map[string]any)["type"] == "compaction_trigger" {
			t.Fatalf("a replayed compaction_trigger went upstream: %v", lastUpstreamInput(t, env.fake))
		}
	}

	// The same over a client socket.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c := env.dialSocket(t, ctx)
	// turn sends one response.create and returns the types of the items
	// done and the completed response.
	turn := func(frame string) ([]string, map[string]any) {
		t.Helper()
		if err := c.Write(ctx, websocket.MessageText, []byte(frame)); err != nil {
			t.Fatal(err)
		}
		var done []string
		for {
			_, data, err := c.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var ev map[string]any
			_ = json.Unmarshal(data, &ev)
			switch ev["type"] {
			case "response.output_item.done":
				done = append(done, ev["item"].(map[string]any)["type"].(string))
			case "error", "response.failed":
				t.Fatalf("socket: %s", data)
			case "response.completed":
				return done, ev["response"].(map[string]any)
			}
		}
	}
	done, resp := turn(`{"type":"response.create","model":"gpt-5.5","input":` + compactionInput + `}`)
	socketID := onlyCompaction(t, "socket", resp)
	reqs := env.fake.RequestsTo("/responses")
	if len(done) != 1 || done[0] != "compaction" || !bytes.Contains(reqs[len(reqs)-1].Body, []byte(`"compaction_trigger"`)) {
		t.Fatalf("socket: items done %v", done)
	}
	// Chained on the socket's compaction, as on HTTP.
	if _, resp := turn(`{"type":"response.create","model":"gpt-5.5","previous_response_id":"` + socketID + `","input":"next on the socket"}`); resp["status"] != "completed" {
		t.Fatalf("chained on the socket's compaction: %v", resp)
	}
}
