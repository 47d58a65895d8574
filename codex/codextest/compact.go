package codextest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// compactFields are the fields the Codex CLI sends to /responses/compact
// (its CompactionInput): the compaction runs on what a turn would carry,
// without the turn-only store, stream and include, and the backend keeps
// no state for it either (no previous_response_id).
var compactFields = map[string]bool{
	"model": true, "input": true, "instructions": true, "tools": true, "parallel_tool_calls": true,
	"reasoning": true, "service_tier": true, "prompt_cache_key": true, "text": true,
}

// handleCompact is POST {BackendPath}/responses/compact: one JSON answer
// (no stream) whose output is the compacted history, the conversation's
// user messages followed by one compaction item whose encrypted_content
// stands for the rest. Input items are checked as on /responses.
func (s *Server) handleCompact(w http.ResponseWriter, r *http.Request) {
	body, bodyErr := readBody(r)
	s.record(newRequest(r, body))
	if bodyErr != nil {
		bodyErr.write(w)
		return
	}
	if _, ok := s.authenticate(w, r); !ok {
		return
	}
	var req map[string]any
	if err := json.Unmarshal(body, &req); err != nil || req == nil {
		detail(http.StatusBadRequest, "Invalid JSON body").write(w)
		return
	}
	for k := range req {
		if !compactFields[k] {
			detail(http.StatusBadRequest, "Unsupported parameter: "+k).write(w)
			return
		}
	}
	slug, _ := req["model"].(string)
	if slug == "" {
		badRequest("Missing required parameter: 'model'.", "model", "missing_required_parameter").write(w)
		return
	}
	if s.model(slug) == nil {
		detail(http.StatusBadRequest, fmt.Sprintf("The '%s' model is not supported when using Codex with a ChatGPT account.", slug)).write(w)
		return
	}
	input, ok := req["input"].([]any)
	if !ok {
		detail(http.StatusBadRequest, "Input must be a list").write(w)
		return
	}
	if e := validateInput(input); e != nil {
		e.write(w)
		return
	}
	var kept []any
	for _, raw := range input {
		if item, _ := raw.(map[string]any); item["role"] == "user" {
			kept = append(kept, item)
		}
	}
	kept = append(kept, compactionItem(input))
	writeJSON(w, http.StatusOK, map[string]any{"output": kept})
}

// compactionItem is the compaction item standing for input: its
// encrypted_content is opaque to clients (the fake's holds the items).
func compactionItem(input []any) map[string]any {
	var summary strings.Builder
	for _, item := range input {
		b, _ := json.Marshal(item)
		summary.Write(b)
	}
	return map[string]any{"type": "compaction", "id": newID("cmp_"),
		"encrypted_content": "gAAAAB" + base64.RawURLEncoding.EncodeToString([]byte("compacted:"+summary.String()))}
}

// compactionTriggered reports whether a /responses turn asks for a
// compaction (validateInput checked the trigger is its last item).
func compactionTriggered(req map[string]any) bool {
	input, _ := req["input"].([]any)
	if len(input) == 0 {
		return false
	}
	last, _ := input[len(input)-1].(map[string]any)
	return last["type"] == "compaction_trigger"
}

// compaction adds the one output item of a compaction_trigger turn: the
// compaction item for the input before the trigger.
func (g *gen) compaction(input []any) {
	idx, item := len(g.out), compactionItem(input[:len(input)-1])
	g.add("response.output_item.added", map[string]any{"output_index": idx, "item": map[string]any{"id": item["id"], "type": "compaction"}})
	g.add("response.output_item.done", map[string]any{"output_index": idx, "item": item})
	g.out = append(g.out, item)
	g.text.WriteString("compaction") // a few output tokens
}
