package translate

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
)

// SystemMode chooses where chat system and developer messages go upstream.
type SystemMode string

const (
	// SystemAsDeveloper (the default) sends instructions:"" and keeps
	// system/developer messages in place as role "developer" input items,
	// as the official client does.
	SystemAsDeveloper SystemMode = "developer"
	// SystemAsInstructions joins the leading system/developer messages with
	// "\n\n" into instructions; later ones become developer items.
	SystemAsInstructions SystemMode = "instructions"
)

// RequestOptions tunes request translation.
type RequestOptions struct {
	// Catalog resolves model names; nil means DefaultCatalog().
	Catalog *Catalog
	// SystemMode places system messages; "" means SystemAsDeveloper.
	SystemMode SystemMode
	// ReasoningSummary is the summary mode used when reasoning is on and the
	// client did not choose one: "" means "auto", "none" disables summaries.
	ReasoningSummary string
	// CacheKeySalt is mixed into derived prompt_cache_key values (e.g. the
	// user id) so two users never share a key.
	CacheKeySalt string
	// MaxEffort is a ceiling on the reasoning effort sent (an API key's
	// policy); a higher one is lowered to it, see Mapped.EffortClampedFrom.
	// "" means none.
	MaxEffort string
	// Tier is the key's service-tier policy: "" or TierAllow passes the
	// client's choice, TierDeny never sends the Fast tier, TierForce
	// always does.
	Tier string
	// ModelTiers are per-model default tiers (upstream slug → "priority"),
	// used when the client names none; nil means none.
	ModelTiers map[string]string
}

// Mapped is a translated request ready to be sent upstream.
type Mapped struct {
	// Body is the upstream JSON body (Codex Responses dialect).
	Body []byte
	// ClientModel is the model name the client sent, echoed back to it.
	ClientModel string
	// UpstreamModel is the slug sent upstream.
	UpstreamModel string
	// Effort is the effective reasoning effort sent, "" when none was sent.
	Effort string
	// EffortClampedFrom is the effort the request asked for ("default"
	// when it named none) when RequestOptions.MaxEffort lowered it to
	// Effort; "" otherwise.
	EffortClampedFrom string
	// ServiceTier is the tier sent upstream: "priority" (Fast) or "" (the
	// account's default); see tier.go.
	ServiceTier string
	// RequestedTier is the service_tier the client sent, lower case, ""
	// when it sent none.
	RequestedTier string
	// Stream is what the client asked for; upstream always streams.
	Stream bool
	// IncludeUsage is chat stream_options.include_usage.
	IncludeUsage bool
	// ResponsesShaped reports a Responses-style body (input, no messages)
	// that arrived at /v1/chat/completions, as Cursor sends.
	ResponsesShaped bool
	// ToolNames maps shortened upstream tool names to the client's; nil
	// when nothing was shortened.
	ToolNames ToolNames
	// CallIDs maps shortened upstream tool-call ids to the client's; nil
	// when no id was longer than MaxCallIDLen.
	CallIDs CallIDs
	// LegacyFunctions reports a chat request that declared its tools with
	// the legacy "functions" field (and no "tools"): the answer then uses
	// message.function_call and finish_reason "function_call".
	LegacyFunctions bool
	// PromptCacheKey is the prompt_cache_key sent upstream.
	PromptCacheKey string
	// Dropped lists, sorted, the client parameters not sent upstream
	// because the backend rejects or ignores them; for logging.
	Dropped []string
	// Images reports a request that makes images (the image_generation
	// tool, or an Images API call): a key policy may deny it.
	Images bool
	// Dialect is what the translator of a dialect that lives in a package
	// of its own (translate/anthropic) needs from its request when it
	// answers; nil for the OpenAI dialects.
	Dialect any
}

// rqBody is the upstream body in the official client's field order.
type rqBody struct {
	Model             string            `json:"model"`
	Instructions      string            `json:"instructions"`
	Input             []any             `json:"input"`
	Tools             []json.RawMessage `json:"tools,omitempty"`
	ToolChoice        json.RawMessage   `json:"tool_choice,omitempty"`
	ParallelToolCalls *bool             `json:"parallel_tool_calls,omitempty"`
	Reasoning         *rqReasoning      `json:"reasoning,omitempty"`
	Store             bool              `json:"store"`
	Stream            bool              `json:"stream"`
	Include           []string          `json:"include"`
	PromptCacheKey    string            `json:"prompt_cache_key,omitempty"`
	Text              *rqText           `json:"text,omitempty"`
	ServiceTier       string            `json:"service_tier,omitempty"`
}

// chatConsumed lists the chat parameters this translator reads. Every other
// top-level key is dropped and reported in Mapped.Dropped: the backend
// rejects most of them (temperature, max_tokens, …) and guessing is worse.
var chatConsumed = map[string]bool{
	"model": true, "messages": true, "stream": true, "reasoning_effort": true,
	"reasoning": true, "tools": true, "functions": true, "tool_choice": true,
	"function_call": true, "parallel_tool_calls": true, "response_format": true,
	"verbosity": true, "service_tier": true, "prompt_cache_key": true, "n": true,
	"previous_response_id": true,
}

// ChatToResponses translates a /v1/chat/completions body into the upstream
// Responses body. A Responses-shaped body (input, and messages missing, null
// or empty) is handed to NormalizeResponses and marked ResponsesShaped.
// Errors are *Error with status 400.
func ChatToResponses(body []byte, opts RequestOptions) (*Mapped, error) {
	m, err := chatToResponses(body, opts)
	if err != nil {
		return nil, err // keep a nil *Error from becoming a non-nil error
	}
	return m, nil
}

// chatToResponses is ChatToResponses with a concrete error type.
func chatToResponses(body []byte, opts RequestOptions) (*Mapped, *Error) {
	top, err := decodeObject(body)
	if err != nil {
		return nil, err
	}
	if isNullRaw(top["messages"]) || isEmptyArray(top["messages"]) {
		// Cursor posts Responses bodies here, sometimes with "messages": [].
		if _, ok := top["input"]; ok {
			mp, err := normalizeResponses(top, opts)
			if err != nil {
				return nil, err
			}
			mp.ResponsesShaped = true
			return mp, nil
		}
		if isNullRaw(top["messages"]) {
			return nil, InvalidRequest("messages", codeMissingParam, "missing required parameter: 'messages'")
		}
	}
	cat := opts.Catalog
	if cat == nil {
		cat = DefaultCatalog()
	}
	mode := opts.SystemMode
	if mode == "" {
		mode = SystemAsDeveloper
	}
	if mode != SystemAsDeveloper && mode != SystemAsInstructions {
		mode = SystemAsDeveloper
	}

	var drops dropSet
	for k := range top {
		if !chatConsumed[k] {
			drops.add(k)
		}
	}
	mp, res, err := mapModel(top, cat, &drops)
	if err != nil {
		return nil, err
	}
	if mp.Stream, _, err = boolParam(top["stream"], "stream"); err != nil {
		return nil, err
	}
	if mp.IncludeUsage, err = chatIncludeUsage(top["stream_options"]); err != nil {
		return nil, err
	}

	msgs, err := decodeMessages(top["messages"])
	if err != nil {
		return nil, err
	}
	if len(msgs) == 0 {
		return nil, InvalidRequest("messages", codeInvalidValue, "'messages' must contain at least one message")
	}

	var names ToolNames
	var ids CallIDs
	tools, err := convertChatTools(top["tools"], top["functions"], &names)
	if err != nil {
		return nil, err
	}
	mp.LegacyFunctions = isLegacyFunctions(top["tools"], top["functions"])
	conv, err := convertMessages(msgs, mode, &names, &ids)
	if err != nil {
		return nil, err
	}

	out := rqBody{
		Model:        res.Upstream,
		Instructions: strings.Join(conv.instructions, "\n\n"),
		Input:        conv.items,
		Store:        false,
		Stream:       true,
	}
	mp.Images = tools.images
	if len(tools.list) > 0 {
		out.Tools = tools.list
	}
	choice, dropped, err := convertToolChoice(top["tool_choice"], top["function_call"], tools, &names)
	if err != nil {
		return nil, err
	}
	if dropped != "" {
		drops.add(dropped)
	}
	out.ToolChoice = choice
	ptc, ptcSet, err := boolParam(top["parallel_tool_calls"], "parallel_tool_calls")
	if err != nil {
		return nil, err
	}
	switch {
	case len(out.Tools) == 0:
		if _, ok := top["parallel_tool_calls"]; ok {
			drops.add("parallel_tool_calls")
		}
	case mp.LegacyFunctions:
		// A legacy answer carries one function_call: ask for one, whatever
		// the client said.
		ptc = false
		out.ParallelToolCalls = &ptc
	case !ptcSet:
		ptc = true
		fallthrough
	default:
		out.ParallelToolCalls = &ptc
	}

	var reasoningObj struct {
		Effort  json.RawMessage `json:"effort"`
		Summary json.RawMessage `json:"summary"`
	}
	if r := top["reasoning"]; !isNullRaw(r) {
		if err := decodeObjectField(r, &reasoningObj, "reasoning"); err != nil {
			return nil, err
		}
	}
	plan, err := planReasoning(cat, res, []effortInput{
		{top["reasoning_effort"], "reasoning_effort"},
		{reasoningObj.Effort, "reasoning.effort"},
	}, reasoningObj.Summary, "reasoning.summary", opts)
	if err != nil {
		return nil, err
	}
	out.Reasoning, mp.Effort, mp.EffortClampedFrom = plan.reasoning, plan.effort, plan.clamped
	out.Include = []string{}
	if plan.include {
		out.Include = []string{includeEncrypted}
	}

	var text rqText
	if text.Format, err = convertResponseFormat(top["response_format"]); err != nil {
		return nil, err
	}
	verbosity, err := stringParam(top["verbosity"], "verbosity")
	if err != nil {
		return nil, err
	}
	if verbosity != "" {
		if err := checkVerbosity(verbosity, "verbosity"); err != nil {
			return nil, err
		}
		if verbosityAllowed(res) {
			text.Verbosity = verbosity
		} else {
			drops.add("verbosity")
		}
	}
	if text.Format != nil || text.Verbosity != "" {
		out.Text = &text
	}

	if mp.RequestedTier, out.ServiceTier, err = pickServiceTier(top["service_tier"], res.Upstream, opts, &drops); err != nil {
		return nil, err
	}
	mp.ServiceTier = out.ServiceTier

	if out.PromptCacheKey, err = stringParam(top["prompt_cache_key"], "prompt_cache_key"); err != nil {
		return nil, err
	}
	if out.PromptCacheKey == "" {
		out.PromptCacheKey = derivePromptCacheKey(opts.CacheKeySalt, conv.firstSystem, conv.firstUser)
	}
	mp.PromptCacheKey = out.PromptCacheKey

	if out.Input == nil {
		out.Input = []any{}
	}
	b, merr := appendRequestBody(make([]byte, 0, len(body)+len(body)/8+512), &out)
	if merr != nil {
		return nil, InvalidRequest("", codeInvalidValue, "cannot encode the upstream request: %s", merr.Error())
	}
	mp.Body = b
	if len(names) > 0 {
		mp.ToolNames = names
	}
	if len(ids) > 0 {
		mp.CallIDs = ids
	}
	mp.Dropped = drops.sorted()
	return mp, nil
}

// isLegacyFunctions reports a request that declares functions and no tools.
func isLegacyFunctions(toolsRaw, functionsRaw json.RawMessage) bool {
	if isNullRaw(functionsRaw) || isEmptyArray(functionsRaw) {
		return false
	}
	return isNullRaw(toolsRaw) || isEmptyArray(toolsRaw)
}

// isEmptyArray reports whether raw is the JSON array [] (spaces allowed).
func isEmptyArray(raw json.RawMessage) bool {
	r := bytes.TrimSpace(raw)
	if len(r) < 2 || r[0] != '[' || r[len(r)-1] != ']' {
		return false
	}
	return len(bytes.TrimSpace(r[1:len(r)-1])) == 0
}

// errPreviousResponseID explains why server-side conversation state is not
// available.
func errPreviousResponseID() *Error {
	return InvalidRequest("previous_response_id", codeUnsupportedPar,
		"'previous_response_id' is not supported: conversations are stateless here (store is false upstream); send the full conversation history instead")
}

// checkN accepts n = 1 (dropped: it is the only value the backend produces)
// and rejects anything else.
func checkN(raw json.RawMessage, drops *dropSet) *Error {
	if raw == nil {
		return nil
	}
	drops.add("n")
	if isNullRaw(raw) {
		return nil
	}
	var n float64
	if err := json.Unmarshal(raw, &n); err != nil {
		return InvalidRequest("n", codeInvalidType, "invalid type for 'n': expected an integer, got %s", rawKind(raw))
	}
	if n != math.Trunc(n) || n < 1 {
		return InvalidRequest("n", codeInvalidValue, "invalid value for 'n': must be a positive integer")
	}
	if n > 1 {
		return InvalidRequest("n", codeUnsupportedPar, "'n' greater than 1 is not supported: the backend returns one choice per request")
	}
	return nil
}

// chatIncludeUsage reads stream_options.include_usage.
func chatIncludeUsage(raw json.RawMessage) (bool, *Error) {
	if isNullRaw(raw) {
		return false, nil
	}
	var so struct {
		IncludeUsage json.RawMessage `json:"include_usage"`
	}
	if err := decodeObjectField(raw, &so, "stream_options"); err != nil {
		return false, err
	}
	v, _, err := boolParam(so.IncludeUsage, "stream_options.include_usage")
	return v, err
}
