package api

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/usemysub/caddy-codex-proxy/translate"
)

// A response.create with "generate": false (the Codex CLI sends one when it
// opens a WebSocket, to warm the backend's cache with the conversation's
// prefix) asks for no output. With an upstream that speaks HTTP there is
// nothing to warm, and sending it would run, and bill, a whole generation
// the client never reads: the proxy answers it itself with an empty
// completed response, stored like any other so a next turn can chain on
// its id with previous_response_id, and charges nothing.

// generateFalse reports whether a Responses body asks for no generation.
func generateFalse(body []byte) bool {
	if !bytes.Contains(body, []byte(`"generate"`)) {
		return false // the common case, without a decode
	}
	var b struct {
		Generate *bool `json:"generate"`
	}
	return json.Unmarshal(body, &b) == nil && b.Generate != nil && !*b.Generate
}

// prewarm answers a generate:false request: an empty completed response,
// as one stream of response.created and response.completed or as one JSON
// body.
func (h *Handler) prewarm(w http.ResponseWriter, req *request) outcome {
	m := req.mapped
	resp := map[string]any{
		"id": "resp_" + strings.ToLower(rand.Text()), "object": "response", "created_at": time.Now().Unix(),
		"status": "completed", "model": m.ClientModel, "output": []any{},
		"usage": map[string]any{"input_tokens": 0, "output_tokens": 0, "total_tokens": 0},
	}
	done, _ := json.Marshal(resp)
	if h.storing(req) {
		job := h.pendWrite(req)
		job.build = func() []byte { return done }
		defer job.run()
	}
	if !m.Stream {
		return h.writeJSON(w, json.RawMessage(done))
	}
	resp["status"] = "in_progress"
	created, _ := json.Marshal(resp)
	var out []byte
	out = translate.AppendEvent(out, []byte("response.created"), append([]byte(`{"type":"response.created","response":`), append(created, '}')...))
	out = translate.AppendEvent(out, []byte("response.completed"), append([]byte(`{"type":"response.completed","response":`), append(done, '}')...))
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
	return outcome{status: http.StatusOK}
}
