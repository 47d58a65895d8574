package codextest

import (
	"regexp"
	"strings"
)

// Scenario names a scripted upstream behaviour. Pick one per request with
// a Script, with a "[[scenario:NAME]]" marker in the last user message, or
// server-wide with Options.Default / SetScenario.
type Scenario string

// Streaming scenarios (HTTP 200, SSE).
const (
	// ScenarioText is sequence A (docs/protocol.md#sequence-text): a reasoning item with a summary, then an
	// assistant message echoing the user ("You said: …").
	ScenarioText Scenario = "text"
	// ScenarioPlain is an assistant message only.
	ScenarioPlain Scenario = "plain"
	// ScenarioReasoningText has a reasoning item with two summary parts
	// before the message.
	ScenarioReasoningText Scenario = "reasoning_text"
	// ScenarioToolCall is one function call whose arguments arrive in
	// several deltas (output_index 0).
	ScenarioToolCall Scenario = "tool_call"
	// ScenarioReasoningToolCall is sequence B (docs/protocol.md#sequence-tool-call): a reasoning item at
	// output_index 0, the function call at 1.
	ScenarioReasoningToolCall Scenario = "reasoning_tool_call"
	// ScenarioParallelToolCalls is two function calls in one response.
	ScenarioParallelToolCalls Scenario = "parallel_tool_calls"
	// ScenarioFailed is sequence C (docs/protocol.md#sequence-failed): response.failed with rate_limit_exceeded.
	ScenarioFailed Scenario = "failed"
	// ScenarioErrorEvent is a top-level "error" event
	// (server_is_overloaded) instead of response.failed.
	ScenarioErrorEvent Scenario = "error_event"
	// ScenarioCut drops the connection mid-message, before
	// response.completed.
	ScenarioCut Scenario = "cut"
	// ScenarioSlow is ScenarioText with Options.SlowDelay between events.
	ScenarioSlow Scenario = "slow"
	// ScenarioLongLine has one output_text delta of Options.LongLineBytes.
	ScenarioLongLine Scenario = "long_line"
	// ScenarioIncomplete ends with response.incomplete, reason
	// max_output_tokens.
	ScenarioIncomplete Scenario = "incomplete"
	// ScenarioEmptyOutput streams a message but response.completed carries
	// an empty output list (docs/protocol.md#empty-output).
	ScenarioEmptyOutput Scenario = "empty_output"
)

// ScenarioCompaction answers a turn whose last input item is a
// compaction_trigger (compaction v2, as the Codex CLI's
// remote_compaction_v2 sends it): its only output is one compaction item
// whose encrypted_content stands for the input before the trigger. It is
// chosen by the trigger, whatever the markers in the history; no marker
// picks it.
const ScenarioCompaction Scenario = "compaction"

// Error scenarios (no SSE).
const (
	// ScenarioUsageLimit is sequence D (docs/protocol.md#sequence-usage-limit): 429 usage_limit_reached with the
	// rate-limit headers.
	ScenarioUsageLimit Scenario = "usage_limit"
	// ScenarioUsageNotIncluded is 429 usage_not_included (plan without
	// Codex).
	ScenarioUsageNotIncluded Scenario = "usage_not_included"
	// ScenarioRateLimited is a plain 429 rate_limit_exceeded with
	// Retry-After.
	ScenarioRateLimited Scenario = "rate_limited"
	// ScenarioUnauthorized is 401 token_expired whatever the token.
	ScenarioUnauthorized Scenario = "unauthorized"
	// ScenarioServerError is Options.ServerErrorStatus (500) with a JSON
	// body.
	ScenarioServerError Scenario = "server_error"
	// ScenarioCloudflare is a 403 "Just a moment..." challenge page with
	// cf-mitigated: challenge.
	ScenarioCloudflare Scenario = "cloudflare"
)

// Transport-failure scenarios (no HTTP answer at all). The fake has read
// the whole request first, so a client that sees them has sent a
// generation the real backend may have started.
const (
	// ScenarioHangHeaders reads the request and then sends nothing, not
	// even response headers, until the client goes away (or the fake
	// closes): a backend that accepted the turn and hung.
	ScenarioHangHeaders Scenario = "hang_headers"
	// ScenarioResetAfterRead reads the request and then resets the
	// connection (TCP RST on HTTP/1, RST_STREAM on HTTP/2) without an
	// answer.
	ScenarioResetAfterRead Scenario = "reset_after_read"
)

// Scenarios lists every scenario.
var Scenarios = []Scenario{
	ScenarioText, ScenarioPlain, ScenarioReasoningText, ScenarioToolCall, ScenarioReasoningToolCall,
	ScenarioParallelToolCalls, ScenarioFailed, ScenarioErrorEvent, ScenarioCut, ScenarioSlow,
	ScenarioLongLine, ScenarioIncomplete, ScenarioEmptyOutput, ScenarioUsageLimit,
	ScenarioUsageNotIncluded, ScenarioRateLimited, ScenarioUnauthorized, ScenarioServerError,
	ScenarioCloudflare, ScenarioHangHeaders, ScenarioResetAfterRead,
}

// Script picks the scenario for a Responses request that passed
// validation; "" defers to the marker and the default.
type Script func(r Request) Scenario

// Marker returns the text that selects sc when put in a user message.
func Marker(sc Scenario) string { return "[[scenario:" + string(sc) + "]]" }

var markerRE = regexp.MustCompile(`\[\[scenario:([a-z0-9_]+)\]\]`)

func knownScenario(sc Scenario) bool {
	for _, s := range Scenarios {
		if s == sc {
			return true
		}
	}
	return false
}

// lastUserText returns the text of the last user message in input.
func lastUserText(req map[string]any) string {
	input, _ := req["input"].([]any)
	for i := len(input) - 1; i >= 0; i-- {
		item, _ := input[i].(map[string]any)
		if item["role"] != "user" {
			continue
		}
		switch c := item["content"].(type) {
		case string:
			return c
		case []any:
			var b strings.Builder
			for _, p := range c {
				pm, _ := p.(map[string]any)
				if t, ok := pm["text"].(string); ok {
					if b.Len() > 0 {
						b.WriteString(" ")
					}
					b.WriteString(t)
				}
			}
			return b.String()
		}
		return ""
	}
	return ""
}

// markerScenario finds a marker in the user text.
func markerScenario(text string) (Scenario, bool) {
	m := markerRE.FindStringSubmatch(text)
	if m == nil {
		return "", false
	}
	return Scenario(m[1]), true
}

// echoText is the user text without markers.
func echoText(text string) string {
	return strings.TrimSpace(toolMarkerRE.ReplaceAllString(markerRE.ReplaceAllString(text, ""), ""))
}

// ToolMarker returns the text that makes the tool-call scenarios call the
// function tool name (instead of the first one declared), with args as its
// arguments when not empty: what a client that runs real tools (Claude
// Code's Read, say) needs to see a call it can run.
func ToolMarker(name, args string) string {
	if args == "" {
		return "[[tool:" + name + "]]"
	}
	return "[[tool:" + name + " " + args + "]]"
}

var toolMarkerRE = regexp.MustCompile(`\[\[tool:([A-Za-z0-9_.:-]+)(?: (\{.*?\}))?\]\]`)

// markedTool finds a ToolMarker in text: the tool's name and arguments.
func markedTool(text string) (name, args string, ok bool) {
	m := toolMarkerRE.FindStringSubmatch(text)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}
