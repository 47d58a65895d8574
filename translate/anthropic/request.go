package anthropic

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/usemysub/caddy-codex-proxy/apierror"
	"github.com/usemysub/caddy-codex-proxy/translate"
)

// Options tunes one request's translation.
type Options struct {
	translate.RequestOptions
	// Models maps Claude model names; nil maps with the defaults.
	Models *ModelMap
	// SessionID is Claude Code's x-claude-code-session-id header: the
	// prompt-cache key when set (salted with CacheKeySalt).
	SessionID string
	// CountOnly parses a count_tokens body, which has no max_tokens.
	CountOnly bool
}

// Request is what the answer of a Messages request needs to know of it,
// carried in translate.Mapped.Dialect.
type Request struct {
	// Model is the Claude model name the client asked for, echoed back.
	Model string `json:"model"`
	// MaxTokens is the client's max_tokens: the proxy stops the answer
	// there (the backend refuses the parameter). Zero: no limit.
	MaxTokens int64 `json:"max_tokens,omitempty"`
	// StopSequences end the answer where its text first contains one.
	StopSequences []string `json:"stop_sequences,omitempty"`
	// Thinking reports whether the client enabled thinking: reasoning is
	// then answered as thinking blocks.
	Thinking bool `json:"thinking,omitempty"`
}

// SignaturePrefix marks the thinking signatures this proxy hands out (the
// upstream's encrypted reasoning). A thinking block signed by anyone else
// (Anthropic itself, earlier in a conversation) cannot be sent to the
// backend, which would refuse the whole request, and is left out.
const SignaturePrefix = "cdxr1."

// codes of the translator's 400s.
const (
	codeMissing     = "missing_required_parameter"
	codeInvalid     = "invalid_value"
	codeInvalidType = "invalid_type"
	codeUnsupported = "unsupported_value"
)

// consumed lists the Messages parameters this translator reads; any other
// top-level key is dropped and reported in Mapped.Dropped.
var consumed = map[string]bool{
	"model": true, "messages": true, "system": true, "max_tokens": true, "stop_sequences": true,
	"stream": true, "tools": true, "tool_choice": true, "thinking": true, "metadata": true,
	"output_config": true,
}

type msgRequest struct {
	Model         json.RawMessage `json:"model"`
	Messages      json.RawMessage `json:"messages"`
	System        json.RawMessage `json:"system"`
	MaxTokens     json.RawMessage `json:"max_tokens"`
	StopSequences []string        `json:"stop_sequences"`
	Stream        bool            `json:"stream"`
	Tools         []msgTool       `json:"tools"`
	ToolChoice    *msgToolChoice  `json:"tool_choice"`
	Thinking      *struct {
		Type         string `json:"type"`
		BudgetTokens int64  `json:"budget_tokens"`
	} `json:"thinking"`
	Metadata *struct {
		UserID string `json:"user_id"`
	} `json:"metadata"`
	OutputConfig *struct {
		Effort string `json:"effort"`
	} `json:"output_config"`
}

type msgTool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	InputSchema json.RawMessage `json:"input_schema"`
}

type msgToolChoice struct {
	Type                   string `json:"type"`
	Name                   string `json:"name"`
	DisableParallelToolUse bool   `json:"disable_parallel_tool_use"`
}

type msgMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// block is one content block, every kind's fields together.
type block struct {
	Type      string          `json:"type"`
	Text      string          `json:"text"`
	Source    *source         `json:"source"`
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Input     json.RawMessage `json:"input"`
	ToolUseID string          `json:"tool_use_id"`
	Content   json.RawMessage `json:"content"`
	IsError   bool            `json:"is_error"`
	Thinking  string          `json:"thinking"`
	Signature string          `json:"signature"`
	Data      string          `json:"data"`
	Title     string          `json:"title"`
}

type source struct {
	Type      string `json:"type"`
	MediaType string `json:"media_type"`
	Data      string `json:"data"`
	URL       string `json:"url"`
}

// ToResponses translates a Messages body into the upstream Responses
// body. The result's Dialect is a *Request. Errors are *translate.Error.
func ToResponses(body []byte, opts Options) (*translate.Mapped, error) {
	m, err := toResponses(body, opts)
	if err != nil {
		return nil, err
	}
	return m, nil
}

func toResponses(body []byte, opts Options) (*translate.Mapped, *translate.Error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil || top == nil {
		return nil, invalid("", codeInvalid, "the request body is not a JSON object")
	}
	var in msgRequest
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, decodeError(err)
	}
	var dropped []string
	for k := range top {
		if !consumed[k] {
			dropped = append(dropped, k)
		}
	}
	model, ok := rawString(in.Model)
	if !ok || strings.TrimSpace(model) == "" {
		return nil, invalid("model", codeMissing, "model: Field required (a string)")
	}
	req := &Request{Model: model, StopSequences: in.StopSequences, Thinking: in.Thinking != nil && in.Thinking.Type != "disabled"}
	if !opts.CountOnly {
		if isNull(in.MaxTokens) {
			return nil, invalid("max_tokens", codeMissing, "max_tokens: Field required")
		}
		var n float64
		if json.Unmarshal(in.MaxTokens, &n) != nil || n < 1 || n != float64(int64(n)) {
			return nil, invalid("max_tokens", codeInvalid, "max_tokens: must be a positive integer")
		}
		req.MaxTokens = int64(n)
	}
	for i, s := range in.StopSequences {
		if s == "" {
			return nil, invalid(fmt.Sprintf("stop_sequences.%d", i), codeInvalid, "stop_sequences: an empty string cannot stop anything")
		}
	}

	out := map[string]any{"stream": in.Stream} // the upstream always streams
	upModel, effort := model, ""
	if t, ok := opts.Models.Resolve(model); ok {
		upModel, effort = t.Model, t.Effort
	}
	out["model"] = upModel
	if e := thinkingEffort(in); e != "" {
		effort = e
	}
	if effort != "" {
		out["reasoning"] = map[string]string{"effort": effort}
	}

	var b builder
	system, err := systemText(in.System)
	if err != nil {
		return nil, err
	}
	if system != "" {
		if opts.SystemMode == translate.SystemAsInstructions {
			out["instructions"] = system
		} else {
			b.items = append(b.items, textMessage("developer", "input_text", system))
		}
	}
	var msgs []msgMessage
	if err := json.Unmarshal(orNull(in.Messages), &msgs); err != nil {
		return nil, invalid("messages", codeInvalidType, "messages: expected a list of messages")
	}
	if len(msgs) == 0 {
		return nil, invalid("messages", codeMissing, "messages: at least one message is required")
	}
	for i, msg := range msgs {
		if err := b.message(i, msg); err != nil {
			return nil, err
		}
	}
	out["input"] = b.items

	tools, toolDrops, err := convertTools(in.Tools)
	if err != nil {
		return nil, err
	}
	dropped = append(dropped, toolDrops...)
	if len(tools) > 0 {
		out["tools"] = tools
		parallel := true
		if tc := in.ToolChoice; tc != nil {
			parallel = !tc.DisableParallelToolUse
			switch tc.Type {
			case "auto", "":
				out["tool_choice"] = "auto"
			case "any":
				out["tool_choice"] = "required"
			case "none":
				out["tool_choice"] = "none"
			case "tool":
				if tc.Name == "" {
					return nil, invalid("tool_choice.name", codeMissing, "tool_choice.name: Field required for type tool")
				}
				if !slices.ContainsFunc(in.Tools, func(t msgTool) bool { return t.Name == tc.Name }) {
					return nil, invalid("tool_choice.name", codeInvalid, "tool_choice names the tool %q, which tools does not declare", tc.Name)
				}
				out["tool_choice"] = map[string]string{"type": "function", "name": tc.Name}
			default:
				return nil, invalid("tool_choice.type", codeInvalid, "tool_choice.type: %q is none of auto, any, tool and none", tc.Type)
			}
		}
		out["parallel_tool_calls"] = parallel
	}

	key := opts.SessionID
	if key == "" && in.Metadata != nil {
		key = in.Metadata.UserID
	}
	if key != "" {
		out["prompt_cache_key"] = translate.DerivePromptCacheKey(opts.CacheKeySalt, "anthropic-session", key)
	}

	shaped, merr := marshal(out)
	if merr != nil {
		return nil, invalid("", codeInvalid, "cannot encode the upstream request: %v", merr)
	}
	ropts := opts.RequestOptions
	if !req.Thinking {
		// Reasoning the client will not see needs no summary.
		ropts.ReasoningSummary = "none"
	}
	m, nerr := translate.NormalizeResponses(shaped, ropts)
	if nerr != nil {
		var ae *translate.Error
		if e, ok := nerr.(*translate.Error); ok {
			ae = e
		} else {
			ae = invalid("", codeInvalid, "%v", nerr)
		}
		return nil, ae
	}
	m.ClientModel = model
	m.Dialect = req
	m.Dropped = append(m.Dropped, dropped...)
	slices.Sort(m.Dropped)
	return m, nil
}

// thinkingEffort maps the client's thinking budget (or output_config's
// effort) to a reasoning effort; "" keeps the model mapping's.
func thinkingEffort(in msgRequest) string {
	if in.OutputConfig != nil {
		switch in.OutputConfig.Effort {
		case "low", "medium", "high":
			return in.OutputConfig.Effort
		case "max":
			return "xhigh"
		}
	}
	t := in.Thinking
	if t == nil || t.Type != "enabled" || t.BudgetTokens <= 0 {
		return ""
	}
	switch {
	case t.BudgetTokens < 4096:
		return "low"
	case t.BudgetTokens < 16384:
		return "medium"
	case t.BudgetTokens < 32768:
		return "high"
	default:
		return "xhigh"
	}
}

// systemText reads system as a string or a list of text blocks
// (cache_control and citations ignored).
func systemText(raw json.RawMessage) (string, *translate.Error) {
	if isNull(raw) {
		return "", nil
	}
	if s, ok := rawString(raw); ok {
		return s, nil
	}
	var blocks []block
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return "", invalid("system", codeInvalidType, "system: expected a string or a list of text blocks")
	}
	var parts []string
	for i, bl := range blocks {
		if bl.Type != "text" {
			return "", invalid(fmt.Sprintf("system.%d.type", i), codeInvalid, "system.%d: only text blocks are allowed, got %q", i, bl.Type)
		}
		parts = append(parts, bl.Text)
	}
	return strings.Join(parts, "\n\n"), nil
}

// builder collects the upstream input items of a conversation.
type builder struct {
	items []any
	// parts is the message being built (its role and content parts), sent
	// as one item when a block of another kind comes.
	role  string
	parts []any
}

func (b *builder) flush() {
	if len(b.parts) > 0 {
		b.items = append(b.items, map[string]any{"type": "message", "role": b.role, "content": b.parts})
	}
	b.parts = nil
}

func (b *builder) part(role string, p any) {
	if b.role != role {
		b.flush()
		b.role = role
	}
	b.parts = append(b.parts, p)
}

// message adds one conversation message.
func (b *builder) message(i int, msg msgMessage) *translate.Error {
	param := fmt.Sprintf("messages.%d", i)
	role := msg.Role
	switch role {
	case "user", "assistant":
	case "system", "developer":
		// Claude Code sends system messages in the middle of a conversation.
		role = "developer"
	default:
		return invalid(param+".role", codeInvalid, "%s.role: %q is neither user nor assistant", param, msg.Role)
	}
	textType := "input_text"
	if role == "assistant" {
		textType = "output_text"
	}
	if s, ok := rawString(msg.Content); ok {
		b.part(role, map[string]any{"type": textType, "text": s})
		b.flush()
		return nil
	}
	var blocks []block
	if err := json.Unmarshal(orNull(msg.Content), &blocks); err != nil {
		return invalid(param+".content", codeInvalidType, "%s.content: expected a string or a list of content blocks", param)
	}
	for j, bl := range blocks {
		if err := b.block(role, textType, fmt.Sprintf("%s.content.%d", param, j), bl); err != nil {
			return err
		}
	}
	b.flush()
	return nil
}

// block adds one content block of a message in role.
func (b *builder) block(role, textType, param string, bl block) *translate.Error {
	switch bl.Type {
	case "text":
		if bl.Text != "" {
			b.part(role, map[string]any{"type": textType, "text": bl.Text})
		}
	case "image", "document":
		if role == "assistant" {
			return invalid(param, codeInvalid, "%s: an assistant message cannot carry an %s", param, bl.Type)
		}
		p, err := mediaPart(param, bl)
		if err != nil {
			return err
		}
		b.part(role, p)
	case "tool_use", "server_tool_use":
		if role != "assistant" {
			return invalid(param, codeInvalid, "%s: tool_use blocks belong in assistant messages", param)
		}
		if bl.ID == "" || bl.Name == "" {
			return invalid(param, codeMissing, "%s: tool_use needs an id and a name", param)
		}
		args := "{}"
		if !isNull(bl.Input) {
			var c bytes.Buffer
			if err := json.Compact(&c, bl.Input); err != nil {
				return invalid(param+".input", codeInvalid, "%s.input: %v", param, err)
			}
			args = c.String()
		}
		b.flush()
		b.items = append(b.items, map[string]any{"type": "function_call", "call_id": bl.ID, "name": bl.Name, "arguments": args})
	case "tool_result":
		if bl.ToolUseID == "" {
			return invalid(param+".tool_use_id", codeMissing, "%s.tool_use_id: Field required", param)
		}
		output, err := toolOutput(param, bl)
		if err != nil {
			return err
		}
		b.flush()
		b.items = append(b.items, map[string]any{"type": "function_call_output", "call_id": bl.ToolUseID, "output": output})
	case "thinking", "redacted_thinking":
		enc := bl.Signature
		if bl.Type == "redacted_thinking" {
			enc = bl.Data
		}
		if !strings.HasPrefix(enc, SignaturePrefix) || role != "assistant" {
			return nil // not ours: the backend could not read it
		}
		summary := []any{}
		if bl.Thinking != "" {
			summary = append(summary, map[string]any{"type": "summary_text", "text": bl.Thinking})
		}
		b.flush()
		b.items = append(b.items, map[string]any{"type": "reasoning", "summary": summary,
			"encrypted_content": strings.TrimPrefix(enc, SignaturePrefix)})
	default:
		return invalid(param+".type", codeUnsupported, "%s: content blocks of type %q are not supported by this proxy", param, bl.Type)
	}
	return nil
}

// mediaPart maps an image or document block.
func mediaPart(param string, bl block) (any, *translate.Error) {
	s := bl.Source
	if s == nil {
		return nil, invalid(param+".source", codeMissing, "%s.source: Field required", param)
	}
	if bl.Type == "image" {
		switch s.Type {
		case "base64":
			return map[string]any{"type": "input_image", "image_url": "data:" + s.MediaType + ";base64," + s.Data, "detail": "auto"}, nil
		case "url":
			return map[string]any{"type": "input_image", "image_url": s.URL, "detail": "auto"}, nil
		}
		return nil, invalid(param+".source.type", codeUnsupported, "%s.source.type: images come as base64 or url, not %q", param, s.Type)
	}
	switch s.Type {
	case "text":
		return map[string]any{"type": "input_text", "text": s.Data}, nil
	case "base64":
		name := bl.Title
		if name == "" {
			name = "document.pdf"
		}
		return map[string]any{"type": "input_file", "filename": name, "file_data": "data:" + s.MediaType + ";base64," + s.Data}, nil
	}
	return nil, invalid(param+".source.type", codeUnsupported,
		"%s.source.type: documents come as base64 or text here; the backend does not fetch %q documents", param, s.Type)
}

// toolOutput maps a tool_result's content: a string, or a list of text
// and image blocks. An error result says so in its text, since the
// Responses API has no is_error.
func toolOutput(param string, bl block) (any, *translate.Error) {
	prefix := ""
	if bl.IsError {
		prefix = "Error: "
	}
	if isNull(bl.Content) {
		return prefix, nil
	}
	if s, ok := rawString(bl.Content); ok {
		return prefix + s, nil
	}
	var blocks []block
	if err := json.Unmarshal(bl.Content, &blocks); err != nil {
		return nil, invalid(param+".content", codeInvalidType, "%s.content: expected a string or a list of blocks", param)
	}
	var texts []string
	var parts []any
	images := false
	for j, c := range blocks {
		switch c.Type {
		case "text":
			texts = append(texts, c.Text)
			parts = append(parts, map[string]any{"type": "input_text", "text": c.Text})
		case "image", "document":
			p, err := mediaPart(fmt.Sprintf("%s.content.%d", param, j), c)
			if err != nil {
				return nil, err
			}
			images = true
			parts = append(parts, p)
		default:
			return nil, invalid(fmt.Sprintf("%s.content.%d.type", param, j), codeUnsupported, "%s.content.%d: a tool result carries text and images, not %q", param, j, c.Type)
		}
	}
	if !images {
		return prefix + strings.Join(texts, "\n"), nil
	}
	if prefix != "" {
		parts = append([]any{map[string]any{"type": "input_text", "text": prefix}}, parts...)
	}
	return parts, nil
}

// convertTools maps client tools to function tools. Anthropic's own tool
// types (web search, bash, the text editor…) run on Anthropic's side or
// have schemas only Claude knows: they are dropped and named in dropped.
func convertTools(tools []msgTool) ([]any, []string, *translate.Error) {
	var out []any
	var dropped []string
	for i, t := range tools {
		if t.Type != "" && t.Type != "custom" {
			dropped = append(dropped, "tools."+t.Type)
			continue
		}
		if t.Name == "" {
			return nil, nil, invalid(fmt.Sprintf("tools.%d.name", i), codeMissing, "tools.%d.name: Field required", i)
		}
		schema := t.InputSchema
		if isNull(schema) {
			schema = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		fn := map[string]any{"type": "function", "name": t.Name, "parameters": schema, "strict": false}
		if t.Description != "" {
			fn["description"] = t.Description
		}
		out = append(out, fn)
	}
	return out, dropped, nil
}

func textMessage(role, typ, text string) any {
	return map[string]any{"type": "message", "role": role, "content": []any{map[string]any{"type": typ, "text": text}}}
}

// marshal encodes v without HTML escaping (prompts are full of <tags>).
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

func rawString(raw json.RawMessage) (string, bool) {
	r := bytes.TrimSpace(raw)
	if len(r) == 0 || r[0] != '"' {
		return "", false
	}
	var s string
	return s, json.Unmarshal(r, &s) == nil
}

func isNull(raw json.RawMessage) bool {
	r := bytes.TrimSpace(raw)
	return len(r) == 0 || string(r) == "null"
}

func orNull(raw json.RawMessage) json.RawMessage {
	if len(bytes.TrimSpace(raw)) == 0 {
		return json.RawMessage("null")
	}
	return raw
}

func invalid(param, code, format string, args ...any) *translate.Error {
	return &translate.Error{Status: http.StatusBadRequest, Type: apierror.TypeInvalidRequest, Code: code, Param: param,
		Message: fmt.Sprintf(format, args...)}
}

// decodeError explains a body whose fields have the wrong types.
func decodeError(err error) *translate.Error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return invalid(te.Field, codeInvalidType, "%s: expected %s, got %s", te.Field, te.Type, te.Value)
	}
	return invalid("", codeInvalid, "the request body is not valid: %v", err)
}
