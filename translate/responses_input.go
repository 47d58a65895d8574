package translate

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// normalizedInput is the rewritten Responses input plus what the prompt
// cache key derivation needs.
type normalizedInput struct {
	raw         json.RawMessage
	firstSystem string
	firstUser   string
}

// normalizeInput turns input into a list of items the stateless backend
// accepts: a string becomes one user message, ids are stripped (with
// store:false they point at nothing; the official client sends none),
// output-only fields of replayed output items are removed, system roles
// become developer, item references are rejected, call ids over
// MaxCallIDLen are shortened and tool calls are paired like chat history.
func normalizeInput(raw json.RawMessage, names *ToolNames, ids *CallIDs) (normalizedInput, *Error) {
	var in normalizedInput
	r := bytes.TrimSpace(raw)
	if isNullRaw(r) {
		return in, InvalidRequest("input", codeMissingParam, "missing required parameter: 'input'")
	}
	if r[0] == '"' {
		s, ok := unquoteJSON(r)
		if !ok {
			if err := json.Unmarshal(r, &s); err != nil {
				return in, InvalidRequest("input", codeInvalidType, "invalid 'input': %s", err.Error())
			}
		}
		in.firstUser = s
		b, _ := marshalCompact([]any{&rqMessageItem{Type: "message", Role: "user", Content: []any{&rqTextPart{Type: "input_text", Text: s}}}})
		in.raw = b
		return in, nil
	}
	if r[0] != '[' {
		return in, InvalidRequest("input", codeInvalidType, "invalid type for 'input': expected a string or an array of items, got %s", rawKind(r))
	}
	items, err := splitArray(r, "input")
	if err != nil {
		return in, err
	}
	if len(items) == 0 {
		return in, InvalidRequest("input", codeInvalidValue, "'input' must contain at least one item")
	}
	n := &inputNormalizer{names: names, ids: ids, pair: newPairer()}
	for i, item := range items {
		out, err := n.item(i, item)
		if err != nil {
			return in, err
		}
		items[i] = out
	}
	items = insertOutputs(items, n.pair.missing(), func(p pairInsert) json.RawMessage {
		b, _ := marshalCompact(newOutputItem(ids.shorten(p.callID), p.custom, abortedOutput))
		return b
	})
	in.raw, in.firstSystem, in.firstUser = rawArray(items), n.firstSystem, n.firstUser
	return in, nil
}

// statusRefused lists the input item types on which "status" is an
// output-only field: clients that replay a previous response's output items
// (messages, reasoning, function calls) carry status:"completed" along and
// the backend refuses it with "Unknown parameter: 'input[N].status'". The
// official client never sends it on these (docs/protocol.md#replayed-status); it does
// on local_shell_call, custom_tool_call and web_search_call, which keep it,
// as do item types this proxy does not know.
var statusRefused = map[string]bool{
	"message": true, "reasoning": true, "function_call": true, "function_call_output": true,
	"custom_tool_call_output": true,
}

// inputNormalizer carries state across input items.
type inputNormalizer struct {
	names       *ToolNames
	ids         *CallIDs
	pair        *pairer
	firstSystem string
	firstUser   string
	haveSystem  bool
	haveUser    bool
	scratch     rawObject // reused by item for the members of each item
}

// item normalises input[i]; it returns the item to send. Keys are matched
// exactly (encoding/json would also match "Type" for "type", and the
// upstream would not), and items nobody edits are passed on as they came.
func (n *inputNormalizer) item(i int, raw json.RawMessage) (json.RawMessage, *Error) {
	// The parameter's name is only built for an error: most items need none.
	param := func(suffix string) string { return "input[" + strconv.Itoa(i) + "]" + suffix }
	if r := bytes.TrimSpace(raw); len(r) == 0 || r[0] != '{' {
		return nil, InvalidRequest(param(""), codeInvalidType, "invalid type for '%s': expected an object, got %s", param(""), rawKind(raw))
	}
	o, perr := parseRawObjectInto(n.scratch[:0], raw)
	if perr != nil {
		return nil, InvalidRequest(param(""), codeInvalidValue, "invalid item at '%s': %s", param(""), perr.Error())
	}
	defer func() { n.scratch = o[:0] }() // o does not outlive the item
	field := func(key string) (string, *Error) {
		v, _ := o.get(key)
		return memberString(v, param, key)
	}
	typ, err := field("type")
	if err != nil {
		return nil, err
	}
	callID, err := field("call_id")
	if err != nil {
		return nil, err
	}
	changed := o.del("id")
	if typ == "" {
		if role, _ := o.get("role"); !isNullRaw(role) {
			typ, changed = "message", true
			o = append(rawObject{{key: "type", val: json.RawMessage(`"message"`)}}, o...)
		}
	}
	if statusRefused[typ] && o.del("status") {
		changed = true
	}
	upID := callID // the call_id sent upstream
	switch typ {
	case "message":
		c, err := n.message(&o, param)
		if err != nil {
			return nil, err
		}
		changed = changed || c
	case "item_reference":
		return nil, InvalidRequest(param(""), codeUnsupportedCont,
			"item_reference at '%s' is not supported: conversations are stateless here (store is false upstream); send the referenced item itself", param(""))
	case "reasoning":
		// reasoning_text content is never replayed by the official client;
		// the backend ignores it and it only costs upload.
		if c, ok := o.get("content"); ok && bytes.Contains(c, []byte(`"reasoning_text"`)) {
			o.del("content")
			changed = true
		}
	case "local_shell_call":
		// Its output is a function_call_output; older items carry no call_id
		// and cannot be paired.
		if callID != "" {
			if err := n.pair.call(i, callID, false, param(".call_id")); err != nil {
				return nil, err
			}
		}
	case "function_call", "custom_tool_call":
		if err := n.pair.call(i, callID, typ == "custom_tool_call", param(".call_id")); err != nil {
			return nil, err
		}
		name, err := field("name")
		if err != nil {
			return nil, err
		}
		if short := n.names.shorten(name); short != name {
			o.set("name", quoteJSON(short))
			changed = true
		}
	case "function_call_output", "custom_tool_call_output":
		id, err := n.pair.output(callID, param(".call_id"))
		if err != nil {
			return nil, err
		}
		upID = id // an output without call_id answers the one waiting call
	case "":
		return nil, InvalidRequest(param(".type"), codeMissingParam, "missing required parameter: '%s.type'", param(""))
	}
	if upID = n.ids.shorten(upID); upID != callID {
		o.set("call_id", quoteJSON(upID))
		changed = true
	}
	if !changed {
		return raw, nil
	}
	return o.marshal(), nil
}

// memberString is stringParam for the member key of the object param("")
// names: a string or null decodes without building the member's name, and
// the type and role values items carry are interned, so they cost no
// allocation.
func memberString(v json.RawMessage, param func(suffix string) string, key string) (string, *Error) {
	if isNullRaw(v) {
		return "", nil
	}
	switch string(v) {
	case `"message"`:
		return "message", nil
	case `"function_call"`:
		return "function_call", nil
	case `"function_call_output"`:
		return "function_call_output", nil
	case `"reasoning"`:
		return "reasoning", nil
	case `"custom_tool_call"`:
		return "custom_tool_call", nil
	case `"custom_tool_call_output"`:
		return "custom_tool_call_output", nil
	case `"user"`:
		return "user", nil
	case `"assistant"`:
		return "assistant", nil
	case `"developer"`:
		return "developer", nil
	case `"system"`:
		return "system", nil
	}
	if s, ok := unquoteJSON(v); ok {
		return s, nil
	}
	return stringParam(v, param("."+key))
}

// message rewrites a message item: system → developer, data URLs
// re-encoded, per-part prompt_cache_breakpoint removed (docs/protocol.md#unsupported-parameters). It reports
// whether o changed.
func (n *inputNormalizer) message(o *rawObject, param func(suffix string) string) (bool, *Error) {
	roleRaw, _ := o.get("role")
	role, err := memberString(roleRaw, param, "role")
	if err != nil {
		return false, err
	}
	changed := false
	switch role {
	case "system":
		o.set("role", json.RawMessage(`"developer"`))
		role, changed = "developer", true
	case "":
		return false, InvalidRequest(param(".role"), codeMissingParam, "missing required parameter: '%s.role'", param(""))
	}
	content, _ := o.get("content")
	switch {
	case role == "developer" && !n.haveSystem:
		if s := contentFingerprint(content); s != "" {
			n.firstSystem, n.haveSystem = s, true
		}
	case role == "user" && !n.haveUser:
		n.firstUser, n.haveUser = contentFingerprint(content), true
	}
	c := bytes.TrimSpace(content)
	if len(c) == 0 || c[0] != '[' {
		return changed, nil
	}
	if !bytes.Contains(c, []byte("prompt_cache_breakpoint")) && !bytes.Contains(c, []byte(`"data:`)) {
		return changed, nil
	}
	parts, err := splitArray(c, param(".content"))
	if err != nil {
		return false, err
	}
	for j, p := range parts {
		np, err := normalizePart(p, param(".content["+strconv.Itoa(j)+"]"))
		if err != nil {
			return false, err
		}
		parts[j] = np
	}
	o.set("content", rawArray(parts))
	return true, nil
}

// normalizePart fixes one content part of a Responses message.
func normalizePart(raw json.RawMessage, param string) (json.RawMessage, *Error) {
	if r := bytes.TrimSpace(raw); len(r) == 0 || r[0] != '{' {
		return nil, InvalidRequest(param, codeInvalidType, "invalid type for '%s': expected an object, got %s", param, rawKind(raw))
	}
	o, err := parseRawObject(raw)
	if err != nil {
		return nil, InvalidRequest(param, codeInvalidValue, "invalid content part at '%s': %s", param, err.Error())
	}
	o.del("prompt_cache_breakpoint")
	typRaw, _ := o.get("type")
	typ, _ := stringParam(typRaw, param+".type")
	switch typ {
	case "input_image":
		if r, ok := o.get("image_url"); ok && len(bytes.TrimSpace(r)) > 0 && bytes.TrimSpace(r)[0] == '"' {
			u, _ := decodeString(bytes.TrimSpace(r))
			if hasPrefixFold(u, "data:") {
				nu, err := normalizeImageURL(u, param+".image_url")
				if err != nil {
					return nil, err
				}
				o.set("image_url", quoteJSON(nu))
			}
		}
	case "input_file":
		if r, ok := o.get("file_data"); ok && len(bytes.TrimSpace(r)) > 0 && bytes.TrimSpace(r)[0] == '"' {
			d, _ := decodeString(bytes.TrimSpace(r))
			if hasPrefixFold(d, "data:") {
				nd, err := normalizeDataURL(d, param+".file_data", "file_data")
				if err != nil {
					return nil, err
				}
				o.set("file_data", quoteJSON(nd))
			}
		}
	}
	return o.marshal(), nil
}
