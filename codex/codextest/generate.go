package codextest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"sort"
	"strings"
	"time"
)

// gen builds the event list of one streamed response.
type gen struct {
	respID  string
	model   string
	created int64
	evs     []event
	out     []any // finished output items, in output_index order
	text    strings.Builder
	reason  bool
	usage   map[string]any
	// imageUsage is response.tool_usage (the image model's tokens), nil
	// when no image was generated.
	imageUsage map[string]any
	echo       map[string]any // request fields the response object repeats
}

// echoedFields are the request fields the backend repeats in the response
// object of response.created, .in_progress, .completed and the others, as
// the Responses API does: tools with their full parameter schemas among them.
var echoedFields = []string{"instructions", "tools", "tool_choice", "parallel_tool_calls", "reasoning", "text", "store"}

func newGen(model string, req map[string]any) *gen {
	echo := make(map[string]any, len(echoedFields))
	for _, k := range echoedFields {
		if v, ok := req[k]; ok {
			echo[k] = v
		}
	}
	return &gen{respID: newID("resp_"), model: model, created: time.Now().Unix(), echo: echo}
}

func (g *gen) add(typ string, data map[string]any) { g.evs = append(g.evs, event{typ, data}) }

func (g *gen) response(status string, output []any) map[string]any {
	if output == nil {
		output = []any{}
	}
	r := map[string]any{
		"id": g.respID, "object": "response", "created_at": g.created, "status": status,
		"model": g.model, "output": output, "error": nil, "incomplete_details": nil, "usage": nil,
	}
	for k, v := range g.echo {
		r[k] = v
	}
	return r
}

func (g *gen) start() {
	g.add("response.created", map[string]any{"response": g.response("in_progress", nil)})
	g.add("response.in_progress", map[string]any{"response": g.response("in_progress", nil)})
}

// reasoning adds a reasoning item with the given summary paragraphs.
func (g *gen) reasoning(summaries ...string) {
	g.reason = true
	idx, id := len(g.out), newID("rs_")
	g.add("response.output_item.added", map[string]any{"output_index": idx, "item": map[string]any{"id": id, "type": "reasoning", "summary": []any{}}})
	var done []any
	for k, s := range summaries {
		base := map[string]any{"item_id": id, "output_index": idx, "summary_index": k}
		g.add("response.reasoning_summary_part.added", with(base, "part", map[string]any{"type": "summary_text", "text": ""}))
		for _, d := range chunk(s) {
			g.add("response.reasoning_summary_text.delta", with(base, "delta", d))
		}
		g.add("response.reasoning_summary_text.done", with(base, "text", s))
		g.add("response.reasoning_summary_part.done", with(base, "part", map[string]any{"type": "summary_text", "text": s}))
		done = append(done, map[string]any{"type": "summary_text", "text": s})
	}
	if done == nil {
		done = []any{}
	}
	item := map[string]any{"id": id, "type": "reasoning", "summary": done, "encrypted_content": encrypted()}
	g.add("response.output_item.done", map[string]any{"output_index": idx, "item": item})
	g.out = append(g.out, item)
}

// message adds an assistant message streamed as the given deltas.
func (g *gen) message(deltas ...string) {
	idx, id := len(g.out), newID("msg_")
	full := strings.Join(deltas, "")
	g.text.WriteString(full)
	g.add("response.output_item.added", map[string]any{"output_index": idx, "item": map[string]any{
		"id": id, "type": "message", "role": "assistant", "status": "in_progress", "content": []any{}}})
	base := map[string]any{"item_id": id, "output_index": idx, "content_index": 0}
	g.add("response.content_part.added", with(base, "part", textPart("")))
	for _, d := range deltas {
		g.add("response.output_text.delta", with(base, "delta", d))
	}
	g.add("response.output_text.done", with(base, "text", full))
	g.add("response.content_part.done", with(base, "part", textPart(full)))
	item := map[string]any{"id": id, "type": "message", "role": "assistant", "status": "completed", "content": []any{textPart(full)}}
	g.add("response.output_item.done", map[string]any{"output_index": idx, "item": item})
	g.out = append(g.out, item)
}

// functionCall adds a function call whose arguments arrive in deltas.
func (g *gen) functionCall(name, args string) {
	idx, id, callID := len(g.out), newID("fc_"), newID("call_")
	item := map[string]any{"id": id, "type": "function_call", "status": "in_progress", "arguments": "", "call_id": callID, "name": name}
	g.add("response.output_item.added", map[string]any{"output_index": idx, "item": item})
	for _, d := range splitN(args, 3) {
		g.add("response.function_call_arguments.delta", map[string]any{"item_id": id, "output_index": idx, "delta": d})
	}
	g.add("response.function_call_arguments.done", map[string]any{"item_id": id, "output_index": idx, "arguments": args})
	done := map[string]any{"id": id, "type": "function_call", "status": "completed", "arguments": args, "call_id": callID, "name": name}
	g.add("response.output_item.done", map[string]any{"output_index": idx, "item": done})
	g.out = append(g.out, done)
	g.text.WriteString(args)
}

func (g *gen) setUsage(input int, cached bool) {
	out := g.text.Len()/4 + 1
	reasoning := 0
	if g.reason {
		reasoning = 16
		out += reasoning
	}
	c := 0
	if cached {
		c = input / 2
	}
	g.usage = map[string]any{
		"input_tokens": input, "input_tokens_details": map[string]any{"cached_tokens": c},
		"output_tokens": out, "output_tokens_details": map[string]any{"reasoning_tokens": reasoning},
		"total_tokens": input + out,
	}
}

func (g *gen) completed(emptyOutput bool) {
	out := g.out
	if emptyOutput {
		out = nil
	}
	r := g.response("completed", out)
	r["usage"] = g.usage
	if g.imageUsage != nil {
		r["tool_usage"] = g.imageUsage
	}
	g.add("response.completed", map[string]any{"response": r})
}

func (g *gen) incomplete(reason string) {
	r := g.response("incomplete", g.out)
	r["usage"] = g.usage
	r["incomplete_details"] = map[string]any{"reason": reason}
	g.add("response.incomplete", map[string]any{"response": r})
}

func (g *gen) failed(code, msg string) {
	r := g.response("failed", nil)
	r["error"] = map[string]any{"code": code, "message": msg}
	g.add("response.failed", map[string]any{"response": r})
}

func with(base map[string]any, k string, v any) map[string]any {
	m := make(map[string]any, len(base)+1)
	for bk, bv := range base {
		m[bk] = bv
	}
	m[k] = v
	return m
}

func textPart(text string) map[string]any {
	return map[string]any{"type": "output_text", "text": text, "annotations": []any{}}
}

func encrypted() string {
	b := make([]byte, 48)
	rand.Read(b)
	return "gAAAAB" + base64.RawURLEncoding.EncodeToString(b)
}

// chunk splits text after spaces, a few words per delta like the model.
func chunk(text string) []string {
	words := strings.SplitAfter(text, " ")
	var out []string
	for i := 0; i < len(words); i += 2 {
		out = append(out, strings.Join(words[i:min(i+2, len(words))], ""))
	}
	if len(out) == 0 {
		out = []string{""}
	}
	return out
}

// splitN cuts s into n roughly equal byte pieces (JSON is ASCII here).
func splitN(s string, n int) []string {
	if len(s) < n {
		return []string{s}
	}
	var out []string
	size := (len(s) + n - 1) / n
	for i := 0; i < len(s); i += size {
		out = append(out, s[i:min(i+size, len(s))])
	}
	return out
}

// toolArgs builds arguments for the first property of a function tool's
// schema, carrying the user's text so tests see it round-trip.
func toolArgs(tool map[string]any, value string) string {
	if args, ok := tool[markedArgs].(string); ok && args != "" {
		return args
	}
	prop := "input"
	if params, ok := tool["parameters"].(map[string]any); ok {
		if props, ok := params["properties"].(map[string]any); ok && len(props) > 0 {
			names := make([]string, 0, len(props))
			for n := range props {
				names = append(names, n)
			}
			sort.Strings(names)
			prop = names[0]
		}
	}
	b, _ := json.Marshal(map[string]string{prop: value})
	return string(b)
}

// markedArgs holds, in a tool picked by a ToolMarker, the arguments the
// marker gave (not a field of the request).
const markedArgs = "\x00marked_args"

// functionTools returns the function tools of the request, or a stand-in.
func functionTools(req map[string]any) []map[string]any {
	var out []map[string]any
	tools, _ := req["tools"].([]any)
	for _, t := range tools {
		if tm, ok := t.(map[string]any); ok && tm["type"] == "function" {
			if _, ok := tm["name"].(string); ok {
				out = append(out, tm)
			}
		}
	}
	if name, args, ok := markedTool(lastUserText(req)); ok {
		for i, t := range out {
			if t["name"] == name {
				marked := with(t, markedArgs, args)
				out = append([]map[string]any{marked}, append(out[:i:i], out[i+1:]...)...)
				break
			}
		}
	}
	if len(out) == 0 {
		out = append(out, map[string]any{"name": "get_weather", "parameters": map[string]any{"properties": map[string]any{"location": map[string]any{"type": "string"}}}})
	}
	return out
}
