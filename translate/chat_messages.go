package translate

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
)

// rqChatMessage is one chat message as clients send it. Content stays raw
// because it is either a string or an array of parts.
type rqChatMessage struct {
	Role         string           `json:"role"`
	Content      json.RawMessage  `json:"content"`
	Name         string           `json:"name"`
	ToolCalls    []rqChatToolCall `json:"tool_calls"`
	ToolCallID   string           `json:"tool_call_id"`
	FunctionCall json.RawMessage  `json:"function_call"`
	Refusal      string           `json:"refusal"`
}

// decodeMessages decodes the messages array in one pass. Only when that
// fails is it decoded element by element, to name the exact message and
// tool call at fault (encoding/json reports field paths without indices).
func decodeMessages(raw json.RawMessage) ([]rqChatMessage, *Error) {
	if msgs, ok := scanMessages(raw); ok {
		return msgs, nil
	}
	var msgs []rqChatMessage
	if json.Unmarshal(raw, &msgs) == nil {
		return msgs, nil
	}
	var raws []json.RawMessage
	if err := decodeField(raw, &raws, "messages"); err != nil {
		return nil, err
	}
	msgs = make([]rqChatMessage, len(raws))
	for i, r := range raws {
		param := "messages[" + strconv.Itoa(i) + "]"
		var m struct { // rqChatMessage with tool_calls left raw
			Role         string          `json:"role"`
			Content      json.RawMessage `json:"content"`
			Name         string          `json:"name"`
			ToolCalls    json.RawMessage `json:"tool_calls"`
			ToolCallID   string          `json:"tool_call_id"`
			FunctionCall json.RawMessage `json:"function_call"`
			Refusal      string          `json:"refusal"`
		}
		if err := decodeObjectField(r, &m, param); err != nil {
			return nil, err
		}
		msgs[i] = rqChatMessage{Role: m.Role, Content: m.Content, Name: m.Name, ToolCallID: m.ToolCallID, FunctionCall: m.FunctionCall, Refusal: m.Refusal}
		if isNullRaw(m.ToolCalls) {
			continue
		}
		var calls []json.RawMessage
		if err := decodeField(m.ToolCalls, &calls, param+".tool_calls"); err != nil {
			return nil, err
		}
		msgs[i].ToolCalls = make([]rqChatToolCall, len(calls))
		for j, c := range calls {
			if err := decodeObjectField(c, &msgs[i].ToolCalls[j], param+".tool_calls["+strconv.Itoa(j)+"]"); err != nil {
				return nil, err
			}
		}
	}
	return msgs, nil
}

// rqChatPart is one content part of a chat message.
type rqChatPart struct {
	Type     string          `json:"type"`
	Text     *string         `json:"text"`
	Refusal  *string         `json:"refusal"`
	ImageURL json.RawMessage `json:"image_url"`
	Detail   string          `json:"detail"`
	File     *struct {
		FileData string `json:"file_data"`
		FileID   string `json:"file_id"`
		Filename string `json:"filename"`
	} `json:"file"`
	FileData string `json:"file_data"`
	FileID   string `json:"file_id"`
	Filename string `json:"filename"`
}

// rqChatToolCall is one entry of an assistant message's tool_calls.
type rqChatToolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
	} `json:"function"`
	Custom struct {
		Name  string `json:"name"`
		Input string `json:"input"`
	} `json:"custom"`
}

// Upstream input items and content parts, in the official field order.
type (
	rqMessageItem struct {
		Type    string `json:"type"`
		Role    string `json:"role"`
		Content []any  `json:"content"`
	}
	rqTextPart struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	rqImagePart struct {
		Type     string `json:"type"`
		ImageURL string `json:"image_url"`
		Detail   string `json:"detail,omitempty"`
	}
	rqFilePart struct {
		Type     string `json:"type"`
		FileData string `json:"file_data"`
		Filename string `json:"filename,omitempty"`
	}
	rqCallItem struct {
		Type      string `json:"type"`
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
		CallID    string `json:"call_id"`
	}
	rqCustomCallItem struct {
		Type   string `json:"type"`
		CallID string `json:"call_id"`
		Name   string `json:"name"`
		Input  string `json:"input"`
	}
	rqOutputItem struct {
		Type   string `json:"type"`
		CallID string `json:"call_id"`
		Output any    `json:"output"`
	}
)

// chatConverter turns chat messages into upstream input items.
type chatConverter struct {
	mode         SystemMode
	names        *ToolNames
	ids          *CallIDs // long client call ids → short upstream ids
	items        []any
	instructions []string
	leading      bool // still inside the leading system/developer block
	pair         *pairer
	legacy       map[string][]string // function name → unanswered legacy call ids
	firstSystem  string
	firstUser    string
	haveSystem   bool
	haveUser     bool
}

// convertMessages converts the chat history. Pairing works on the client's
// call ids (so errors name them); ids over MaxCallIDLen are shortened only in
// the items sent upstream.
func convertMessages(msgs []rqChatMessage, mode SystemMode, names *ToolNames, ids *CallIDs) (*chatConverter, *Error) {
	c := &chatConverter{mode: mode, names: names, ids: ids, leading: true, pair: newPairer(), items: make([]any, 0, len(msgs)+len(msgs)/4)}
	for i := range msgs {
		if err := c.message(i, &msgs[i]); err != nil {
			return nil, err
		}
	}
	c.items = insertOutputs(c.items, c.pair.missing(), func(p pairInsert) any {
		return newOutputItem(c.ids.shorten(p.callID), p.custom, abortedOutput)
	})
	return c, nil
}

// newOutputItem builds the output item matching the call kind.
func newOutputItem(callID string, custom bool, output any) *rqOutputItem {
	typ := "function_call_output"
	if custom {
		typ = "custom_tool_call_output"
	}
	return &rqOutputItem{Type: typ, CallID: callID, Output: output}
}

// message converts messages[i].
func (c *chatConverter) message(i int, m *rqChatMessage) *Error {
	param := "messages[" + strconv.Itoa(i) + "]"
	switch m.Role {
	case "system", "developer":
		return c.system(m, param)
	case "user":
		c.leading = false
		return c.user(m, param)
	case "assistant":
		c.leading = false
		return c.assistant(i, m, param)
	case "tool":
		c.leading = false
		return c.tool(m, param)
	case "function":
		c.leading = false
		return c.function(m, param)
	case "":
		return InvalidRequest(param+".role", codeMissingParam, "missing required parameter: '%s.role'", param)
	}
	return InvalidRequest(param+".role", codeInvalidValue, "invalid value for '%s.role': %q; supported values are system, developer, user, assistant, tool and function", param, m.Role)
}

// system handles system and developer messages according to the mode.
func (c *chatConverter) system(m *rqChatMessage, param string) *Error {
	parts, text, err := textContent(m.Content, param, "input_text", false)
	if err != nil {
		return err
	}
	if text == "" {
		return nil // nothing to say; an empty developer item is noise
	}
	if !c.haveSystem {
		c.firstSystem, c.haveSystem = text, true
	}
	if c.mode == SystemAsInstructions && c.leading {
		c.instructions = append(c.instructions, text)
		return nil
	}
	c.items = append(c.items, &rqMessageItem{Type: "message", Role: "developer", Content: parts})
	return nil
}

// user handles user messages, including images and files.
func (c *chatConverter) user(m *rqChatMessage, param string) *Error {
	parts, err := userContent(m.Content, param)
	if err != nil {
		return err
	}
	if !c.haveUser {
		c.firstUser, c.haveUser = contentFingerprint(m.Content), true
	}
	c.items = append(c.items, &rqMessageItem{Type: "message", Role: "user", Content: parts})
	return nil
}

// assistant handles assistant history: text first, then one function_call
// item per tool call. No empty message is emitted before the calls (docs/protocol.md#tool-pairing).
func (c *chatConverter) assistant(i int, m *rqChatMessage, param string) *Error {
	parts, _, err := textContent(m.Content, param, "output_text", true)
	if err != nil {
		return err
	}
	if len(parts) == 0 && m.Refusal != "" {
		parts = []any{&rqTextPart{Type: "output_text", Text: m.Refusal}}
	}
	if len(parts) > 0 {
		c.items = append(c.items, &rqMessageItem{Type: "message", Role: "assistant", Content: parts})
	}
	for j := range m.ToolCalls {
		if err := c.toolCall(i, j, &m.ToolCalls[j], param+".tool_calls["+strconv.Itoa(j)+"]"); err != nil {
			return err
		}
	}
	if !isNullRaw(m.FunctionCall) {
		p := param + ".function_call"
		var fc struct {
			Name      string          `json:"name"`
			Arguments json.RawMessage `json:"arguments"`
		}
		if err := decodeObjectField(m.FunctionCall, &fc, p); err != nil {
			return err
		}
		if fc.Name == "" {
			return InvalidRequest(p+".name", codeMissingParam, "missing required parameter: '%s.name'", p)
		}
		args, err := callArguments(fc.Arguments, p+".arguments")
		if err != nil {
			return err
		}
		// Legacy calls carry no id; derive one from the position so it is
		// the same on every turn.
		id := "call_legacy_" + strconv.Itoa(i)
		if err := c.pair.call(len(c.items), id, false, p); err != nil {
			return err
		}
		if c.legacy == nil {
			c.legacy = make(map[string][]string)
		}
		c.legacy[fc.Name] = append(c.legacy[fc.Name], id)
		c.items = append(c.items, &rqCallItem{Type: "function_call", Name: c.names.shorten(fc.Name), Arguments: args, CallID: id})
	}
	return nil
}

// toolCall converts messages[i].tool_calls[j].
func (c *chatConverter) toolCall(i, j int, tc *rqChatToolCall, param string) *Error {
	id := tc.ID
	if id == "" {
		id = "call_missing_" + strconv.Itoa(i) + "_" + strconv.Itoa(j)
	}
	switch tc.Type {
	case "", "function":
		if tc.Function.Name == "" {
			return InvalidRequest(param+".function.name", codeMissingParam, "missing required parameter: '%s.function.name'", param)
		}
		args, err := callArguments(tc.Function.Arguments, param+".function.arguments")
		if err != nil {
			return err
		}
		if err := c.pair.call(len(c.items), id, false, param); err != nil {
			return err
		}
		c.items = append(c.items, &rqCallItem{Type: "function_call", Name: c.names.shorten(tc.Function.Name), Arguments: args, CallID: c.ids.shorten(id)})
	case "custom":
		if tc.Custom.Name == "" {
			return InvalidRequest(param+".custom.name", codeMissingParam, "missing required parameter: '%s.custom.name'", param)
		}
		if err := c.pair.call(len(c.items), id, true, param); err != nil {
			return err
		}
		c.items = append(c.items, &rqCustomCallItem{Type: "custom_tool_call", CallID: c.ids.shorten(id), Name: c.names.shorten(tc.Custom.Name), Input: tc.Custom.Input})
	default:
		return InvalidRequest(param+".type", codeInvalidValue, "invalid value for '%s.type': %q; supported values are function and custom", param, tc.Type)
	}
	return nil
}

// callArguments returns tool-call arguments as the exact string the client
// sent. Missing arguments become "{}"; an object some clients send instead
// of a string is kept as its compact JSON text.
func callArguments(raw json.RawMessage, param string) (string, *Error) {
	r := bytes.TrimSpace(raw)
	if isNullRaw(r) {
		return "{}", nil
	}
	switch r[0] {
	case '"':
		s, err := decodeString(r)
		if err != nil {
			return "", InvalidRequest(param, codeInvalidType, "invalid '%s': %s", param, err.Error())
		}
		return s, nil
	case '{', '[':
		var b bytes.Buffer
		if err := json.Compact(&b, r); err != nil {
			return "", InvalidRequest(param, codeInvalidType, "invalid '%s': %s", param, err.Error())
		}
		return b.String(), nil
	}
	return "", InvalidRequest(param, codeInvalidType, "invalid type for '%s': expected a string, got %s", param, rawKind(r))
}

// tool converts a tool-result message to a function_call_output item.
func (c *chatConverter) tool(m *rqChatMessage, param string) *Error {
	id, err := c.pair.output(m.ToolCallID, param+".tool_call_id")
	if err != nil {
		return err
	}
	out, err := toolOutput(m.Content, param)
	if err != nil {
		return err
	}
	c.items = append(c.items, newOutputItem(c.ids.shorten(id), c.pair.isCustom(id), out))
	return nil
}

// function converts a legacy function-result message; it answers the oldest
// unanswered legacy call of the same name.
func (c *chatConverter) function(m *rqChatMessage, param string) *Error {
	if m.Name == "" {
		return InvalidRequest(param+".name", codeMissingParam, "missing required parameter: '%s.name'", param)
	}
	queue := c.legacy[m.Name]
	if len(queue) == 0 {
		return InvalidRequest(param+".name", codeToolPairing, "function result at '%s' for %q has no earlier function_call of that name", param, m.Name)
	}
	c.legacy[m.Name] = queue[1:]
	id, err := c.pair.output(queue[0], param)
	if err != nil {
		return err
	}
	out, err := toolOutput(m.Content, param)
	if err != nil {
		return err
	}
	c.items = append(c.items, newOutputItem(id, false, out))
	return nil
}

// contentParts decodes message content that is an array of parts. A string
// is returned through s with parts nil.
func contentParts(raw json.RawMessage, param string) (s string, parts []rqChatPart, isString bool, e *Error) {
	r := bytes.TrimSpace(raw)
	if isNullRaw(r) {
		return "", nil, false, nil
	}
	switch r[0] {
	case '"':
		var err error
		if s, err = decodeString(r); err != nil {
			return "", nil, false, InvalidRequest(param+".content", codeInvalidType, "invalid '%s.content': %s", param, err.Error())
		}
		return s, nil, true, nil
	case '[':
		if parts, ok := scanParts(r); ok {
			return "", parts, false, nil
		}
		if json.Unmarshal(r, &parts) == nil {
			if parts == nil {
				parts = []rqChatPart{}
			}
			return "", parts, false, nil
		}
		// Decode again part by part to name the one at fault.
		var raws []json.RawMessage
		if err := decodeField(r, &raws, param+".content"); err != nil {
			return "", nil, false, err
		}
		parts = make([]rqChatPart, len(raws))
		for j, pr := range raws {
			if err := decodeObjectField(pr, &parts[j], partParam(param, j)); err != nil {
				return "", nil, false, err
			}
		}
		return "", parts, false, nil
	}
	return "", nil, false, InvalidRequest(param+".content", codeInvalidType, "invalid type for '%s.content': expected a string or an array of content parts, got %s", param, rawKind(r))
}

// partParam names messages[i].content[j].
func partParam(param string, j int) string {
	return param + ".content[" + strconv.Itoa(j) + "]"
}

// textContent converts content that may only hold text (system, developer,
// assistant) into parts of partType, also returning the text joined with
// "\n\n". allowRefusal admits assistant refusal parts. Null content is
// allowed: assistants often send it next to tool calls.
func textContent(raw json.RawMessage, param, partType string, allowRefusal bool) ([]any, string, *Error) {
	s, parts, isString, err := contentParts(raw, param)
	if err != nil {
		return nil, "", err
	}
	if isString {
		if s == "" {
			return nil, "", nil
		}
		return []any{&rqTextPart{Type: partType, Text: s}}, s, nil
	}
	out := make([]any, 0, len(parts))
	texts := make([]string, 0, len(parts))
	for j, p := range parts {
		var text string
		switch {
		case (p.Type == "text" || p.Type == "input_text" || p.Type == "output_text") && p.Text != nil:
			text = *p.Text
		case p.Type == "refusal" && allowRefusal && p.Refusal != nil:
			text = *p.Refusal
		case p.Type == "text" || p.Type == "input_text" || p.Type == "output_text":
			return nil, "", InvalidRequest(partParam(param, j)+".text", codeMissingParam, "missing required parameter: '%s.text'", partParam(param, j))
		default:
			return nil, "", InvalidRequest(partParam(param, j), codeUnsupportedCont,
				"content part of type %q at '%s' is not supported in a message with this role; only text is", p.Type, partParam(param, j))
		}
		if text == "" {
			continue
		}
		out = append(out, &rqTextPart{Type: partType, Text: text})
		texts = append(texts, text)
	}
	return out, strings.Join(texts, "\n\n"), nil
}

// userContent converts user message content. Every part is either
// converted or rejected: user content is never dropped silently.
func userContent(raw json.RawMessage, param string) ([]any, *Error) {
	s, parts, isString, err := contentParts(raw, param)
	if err != nil {
		return nil, err
	}
	if isString {
		return []any{&rqTextPart{Type: "input_text", Text: s}}, nil
	}
	if parts == nil {
		return nil, InvalidRequest(param+".content", codeMissingParam, "missing required parameter: '%s.content'", param)
	}
	if len(parts) == 0 {
		return nil, InvalidRequest(param+".content", codeInvalidValue, "'%s.content' must not be an empty array", param)
	}
	out := make([]any, 0, len(parts))
	for j, p := range parts {
		v, err := mediaPart(p, partParam(param, j))
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// mediaPart converts a text, image or file part of user or tool content.
func mediaPart(p rqChatPart, param string) (any, *Error) {
	switch p.Type {
	case "text", "input_text":
		if p.Text == nil {
			return nil, InvalidRequest(param+".text", codeMissingParam, "missing required parameter: '%s.text'", param)
		}
		return &rqTextPart{Type: "input_text", Text: *p.Text}, nil
	case "image_url", "input_image":
		return imagePart(p, param)
	case "file", "input_file":
		return filePart(p, param)
	case "input_audio":
		return nil, InvalidRequest(param, codeUnsupportedCont, "audio input at '%s' is not supported by this backend", param)
	case "":
		return nil, InvalidRequest(param+".type", codeMissingParam, "missing required parameter: '%s.type'", param)
	}
	return nil, InvalidRequest(param, codeUnsupportedCont, "content part of type %q at '%s' is not supported", p.Type, param)
}

// imagePart converts image_url parts ({"url","detail"} or a bare string).
func imagePart(p rqChatPart, param string) (any, *Error) {
	r := bytes.TrimSpace(p.ImageURL)
	if isNullRaw(r) {
		if p.FileID != "" {
			return nil, InvalidRequest(param, codeUnsupportedCont, "image at '%s' refers to a file_id; uploaded files are not available here, send the image as a URL or data URL", param)
		}
		return nil, InvalidRequest(param+".image_url", codeMissingParam, "missing required parameter: '%s.image_url'", param)
	}
	var url, detail string
	switch r[0] {
	case '"':
		_ = json.Unmarshal(r, &url)
		detail = p.Detail
	case '{':
		var iu struct {
			URL    string `json:"url"`
			Detail string `json:"detail"`
		}
		if err := decodeField(r, &iu, param+".image_url"); err != nil {
			return nil, err
		}
		url, detail = iu.URL, iu.Detail
	default:
		return nil, InvalidRequest(param+".image_url", codeInvalidType, "invalid type for '%s.image_url': expected a string or an object, got %s", param, rawKind(r))
	}
	u, err := normalizeImageURL(url, param+".image_url")
	if err != nil {
		return nil, err
	}
	return &rqImagePart{Type: "input_image", ImageURL: u, Detail: detail}, nil
}

// filePart converts file parts; only inline data can be forwarded because
// there is no file store behind this proxy.
func filePart(p rqChatPart, param string) (any, *Error) {
	data, id, name := p.FileData, p.FileID, p.Filename
	if p.File != nil {
		data, id, name = p.File.FileData, p.File.FileID, p.File.Filename
	}
	if data == "" {
		if id != "" {
			return nil, InvalidRequest(param, codeUnsupportedCont, "file at '%s' refers to file_id %q; uploaded files are not available here, send file.file_data as a data URL", param, id)
		}
		return nil, InvalidRequest(param+".file.file_data", codeMissingParam, "missing required parameter: '%s.file.file_data'", param)
	}
	if hasPrefixFold(data, "data:") {
		var err *Error
		if data, err = normalizeDataURL(data, param+".file.file_data", "file_data"); err != nil {
			return nil, err
		}
	}
	if name == "" {
		name = "file"
	}
	return &rqFilePart{Type: "input_file", FileData: data, Filename: name}, nil
}

// toolOutput converts tool-message content: a string stays a string, text
// parts are joined, and content with images becomes an array of parts.
func toolOutput(raw json.RawMessage, param string) (any, *Error) {
	s, parts, isString, err := contentParts(raw, param)
	if err != nil {
		return nil, err
	}
	if isString || parts == nil {
		return s, nil
	}
	allText := true
	for _, p := range parts {
		if p.Type != "text" && p.Type != "input_text" {
			allText = false
			break
		}
	}
	if allText {
		texts := make([]string, len(parts))
		for j, p := range parts {
			if p.Text == nil {
				return nil, InvalidRequest(partParam(param, j)+".text", codeMissingParam, "missing required parameter: '%s.text'", partParam(param, j))
			}
			texts[j] = *p.Text
		}
		return strings.Join(texts, "\n"), nil
	}
	out := make([]any, 0, len(parts))
	for j, p := range parts {
		v, err := mediaPart(p, partParam(param, j))
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}
