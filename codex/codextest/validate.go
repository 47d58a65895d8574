package codextest

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
)

// rejectedParams are the body fields the backend refuses with
// "Unsupported parameter: X" (docs/protocol.md#unsupported-parameters).
var rejectedParams = []string{
	"context_management", "max_completion_tokens", "max_output_tokens", "max_tokens", "metadata", "n",
	"previous_response_id", "prompt_cache_options", "prompt_cache_retention", "safety_identifier", "stop",
	"stream_options", "temperature", "top_k", "top_p", "truncation", "user",
}

func init() { sort.Strings(rejectedParams) }

// validate applies the backend's request rules (docs/protocol.md#request-rules) and
// returns the requested model.
func (s *Server) validate(req map[string]any) (*Model, *apiError) {
	if v, ok := req["store"]; !ok || v != false {
		return nil, detail(http.StatusBadRequest, "Store must be set to false")
	}
	if req["stream"] != true {
		return nil, detail(http.StatusBadRequest, "Stream must be set to true")
	}
	if _, ok := req["instructions"].(string); !ok {
		return nil, detail(http.StatusBadRequest, "Instructions are required")
	}
	input, ok := req["input"].([]any)
	if !ok {
		return nil, detail(http.StatusBadRequest, "Input must be a list")
	}
	for _, p := range rejectedParams {
		if _, ok := req[p]; ok {
			return nil, detail(http.StatusBadRequest, "Unsupported parameter: "+p)
		}
	}
	slug, _ := req["model"].(string)
	if slug == "" {
		return nil, badRequest("Missing required parameter: 'model'.", "model", "missing_required_parameter")
	}
	m := s.model(slug)
	if m == nil {
		return nil, detail(http.StatusBadRequest, fmt.Sprintf("The '%s' model is not supported when using Codex with a ChatGPT account.", slug))
	}
	if tier, ok := req["service_tier"]; ok && tier != nil && (tier != "priority" || m.NoFast) {
		return nil, detail(http.StatusBadRequest, fmt.Sprintf("Unsupported service_tier: %v", tier))
	}
	if e := validateReasoning(req["reasoning"], m); e != nil {
		return nil, e
	}
	if text, ok := req["text"].(map[string]any); ok {
		if v, ok := text["verbosity"].(string); ok {
			allowed := []string{"medium"}
			if m.Verbosity {
				allowed = []string{"low", "medium", "high"}
			}
			if !slices.Contains(allowed, v) {
				return nil, unsupportedValue(v, m.Slug, "text.verbosity", allowed)
			}
		}
	}
	if e := validateFormat(req); e != nil {
		return nil, e
	}
	if tools, ok := req["tools"].([]any); ok {
		for i, t := range tools {
			tm, _ := t.(map[string]any)
			if name, ok := tm["name"].(string); ok && len(name) > 64 {
				return nil, badRequest(tooLong(fmt.Sprintf("tools[%d].name", i), len(name)), fmt.Sprintf("tools[%d].name", i), "string_above_max_length")
			}
			if tm["type"] == "image_generation" {
				if e := validateImageTool(i, tm); e != nil {
					return nil, e
				}
			}
		}
	}
	if e := validateInput(input); e != nil {
		return nil, e
	}
	return m, nil
}

func validateReasoning(v any, m *Model) *apiError {
	r, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	if effort, ok := r["effort"].(string); ok && !slices.Contains(m.Efforts, effort) {
		return unsupportedValue(effort, m.Slug, "reasoning.effort", m.Efforts)
	}
	if sum, ok := r["summary"].(string); ok && !slices.Contains([]string{"auto", "concise", "detailed", "none"}, sum) {
		return badRequest(fmt.Sprintf("Invalid value: '%s'. Supported values are: 'auto', 'concise', and 'detailed'.", sum), "reasoning.summary", "invalid_value")
	}
	return nil
}

func tooLong(param string, n int) string {
	return fmt.Sprintf("Invalid '%s': string too long. Expected a string with maximum length 64, but got a string with length %d instead.", param, n)
}

// statusRefused lists the input item types on which the backend refuses
// "status", an output-only field clients copy along when they replay a
// previous response's output. The official client sends status only on
// local_shell_call, custom_tool_call and web_search_call (docs/protocol.md#replayed-status).
var statusRefused = []string{"message", "reasoning", "function_call", "function_call_output", "custom_tool_call_output"}

// validateInput checks item shapes, ids, call ids and call/output pairing
// (docs/protocol.md#tool-pairing, docs/protocol.md#item-ids).
func validateInput(input []any) *apiError {
	type call struct{ id, kind string }
	var calls, outputs []call
	for i, raw := range input {
		item, ok := raw.(map[string]any)
		if !ok {
			return badRequest(fmt.Sprintf("Invalid type for 'input[%d]': expected an object, but got %s instead.", i, jsonKind(raw)), fmt.Sprintf("input[%d]", i), "invalid_type")
		}
		typ, _ := item["type"].(string)
		if typ == "" && item["role"] != nil {
			typ = "message"
		}
		id, hasID := item["id"].(string)
		if hasID && len(id) > 64 {
			return badRequest(tooLong(fmt.Sprintf("input[%d].id", i), len(id)), fmt.Sprintf("input[%d].id", i), "string_above_max_length")
		}
		if cid, ok := item["call_id"].(string); ok && len(cid) > 64 {
			return badRequest(tooLong(fmt.Sprintf("input[%d].call_id", i), len(cid)), fmt.Sprintf("input[%d].call_id", i), "string_above_max_length")
		}
		if _, ok := item["status"]; ok && slices.Contains(statusRefused, typ) {
			return badRequest(fmt.Sprintf("Unknown parameter: 'input[%d].status'.", i), fmt.Sprintf("input[%d].status", i), "unknown_parameter")
		}
		notFound := badRequest(fmt.Sprintf("Item with id '%s' not found. Items are not persisted when `store` is set to false. "+
			"Try again with `store` set to true, or remove this item from your input.", id), "input", "")
		switch typ {
		case "compaction_trigger":
			// Compaction v2: the trigger asks this turn to compact what
			// precedes it, so nothing may follow it.
			if i != len(input)-1 {
				return badRequest("The 'compaction_trigger' item must be the final input item.", fmt.Sprintf("input[%d]", i), "invalid_value")
			}
		case "item_reference":
			if !hasID {
				return badRequest(fmt.Sprintf("Missing required parameter: 'input[%d].id'.", i), fmt.Sprintf("input[%d].id", i), "missing_required_parameter")
			}
			return notFound
		case "reasoning":
			// A reasoning item without its encrypted content can only be
			// resolved from server state, which store:false does not keep.
			if enc, _ := item["encrypted_content"].(string); hasID && enc == "" {
				return notFound
			}
		case "message":
			if e := validateMessage(i, item); e != nil {
				return e
			}
		case "function_call", "custom_tool_call":
			cid, _ := item["call_id"].(string)
			if cid == "" {
				return badRequest(fmt.Sprintf("Missing required parameter: 'input[%d].call_id'.", i), fmt.Sprintf("input[%d].call_id", i), "missing_required_parameter")
			}
			calls = append(calls, call{cid, typ})
		case "function_call_output", "custom_tool_call_output":
			cid, _ := item["call_id"].(string)
			if cid == "" {
				return badRequest(fmt.Sprintf("Missing required parameter: 'input[%d].call_id'.", i), fmt.Sprintf("input[%d].call_id", i), "missing_required_parameter")
			}
			outputs = append(outputs, call{cid, typ})
		}
	}
	has := func(list []call, id string) bool {
		return slices.ContainsFunc(list, func(c call) bool { return c.id == id })
	}
	for _, c := range calls {
		if !has(outputs, c.id) {
			kind := "function call"
			if c.kind == "custom_tool_call" {
				kind = "custom tool call"
			}
			return badRequest(fmt.Sprintf("No tool output found for %s %s.", kind, c.id), "input", "")
		}
	}
	for _, o := range outputs {
		if !has(calls, o.id) {
			kind := "function call output"
			if o.kind == "custom_tool_call_output" {
				kind = "custom tool call output"
			}
			return badRequest(fmt.Sprintf("No tool call found for %s with call_id %s.", kind, o.id), "input", "")
		}
	}
	return nil
}

// validateMessage checks the role and that content part types fit it.
func validateMessage(i int, item map[string]any) *apiError {
	role, _ := item["role"].(string)
	roles := []string{"assistant", "system", "developer", "user"}
	if !slices.Contains(roles, role) {
		return badRequest(fmt.Sprintf("Invalid value: '%s'. Supported values are: %s.", role, quoteList(roles)), fmt.Sprintf("input[%d].role", i), "invalid_value")
	}
	parts, ok := item["content"].([]any)
	if !ok {
		if _, isStr := item["content"].(string); isStr {
			return nil
		}
		return badRequest(fmt.Sprintf("Missing required parameter: 'input[%d].content'.", i), fmt.Sprintf("input[%d].content", i), "missing_required_parameter")
	}
	allowed := []string{"input_text", "input_image", "input_file", "input_audio"}
	if role == "assistant" {
		allowed = []string{"output_text", "refusal"}
	}
	for j, p := range parts {
		pm, _ := p.(map[string]any)
		pt, _ := pm["type"].(string)
		if !slices.Contains(allowed, pt) {
			return badRequest(fmt.Sprintf("Invalid value: '%s'. Supported values are: %s.", pt, quoteList(allowed)),
				fmt.Sprintf("input[%d].content[%d].type", i, j), "invalid_value")
		}
		if _, ok := pm["prompt_cache_breakpoint"]; ok {
			return detail(http.StatusBadRequest, "Unsupported parameter: prompt_cache_breakpoint")
		}
	}
	return nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case []any:
		return "an array"
	case nil:
		return "null"
	case bool:
		return "a boolean"
	default:
		return "a number"
	}
}
