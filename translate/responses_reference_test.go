package translate

// This file keeps NormalizeResponses as it was before it moved to the
// package's scanner (encoding/json for every nested value, json.Compact for
// every value written) as the reference FuzzNormalizeResponsesReference
// holds the scanner path to: on every input both must give the same body,
// the same Mapped and the same error. The helpers both versions share
// (planReasoning, pickServiceTier, checkN, …) are not copied; the
// primitives the scanner path replaced (parseRawObject, rawObject.marshal,
// stringParam, boolParam) are, and FuzzRawObjectReference compares those
// on their own.

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// refParseRawObject splits a JSON object into its members. A repeated key keeps
// its first position and its last value, as encoding/json would read it.
func refParseRawObject(raw json.RawMessage) (rawObject, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errNotObject
	}
	var o rawObject
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, errNotObject
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		o.set(key, v)
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	return o, nil
}

// refAppendJSON appends o as compact JSON.
func refAppendJSON(o rawObject, dst *bytes.Buffer) error {
	dst.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			dst.WriteByte(',')
		}
		refAppendJSONString(dst, f.key)
		dst.WriteByte(':')
		if err := json.Compact(dst, f.val); err != nil {
			return err
		}
	}
	dst.WriteByte('}')
	return nil
}

// refMarshal returns o as compact JSON (rawObject.marshal before).
func refMarshal(o rawObject) (json.RawMessage, error) {
	var b bytes.Buffer
	if err := refAppendJSON(o, &b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// refAppendJSONString appends s as a JSON string literal like encoding/json
// does (invalid UTF-8 becomes U+FFFD, U+2028/U+2029 are escaped) but without
// HTML escaping.
func refAppendJSONString(dst *bytes.Buffer, s string) {
	const hexDigits = "0123456789abcdef"
	dst.WriteByte('"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst.WriteString(s[start:i])
			switch c {
			case '"', '\\':
				dst.WriteByte('\\')
				dst.WriteByte(c)
			case '\n':
				dst.WriteString(`\n`)
			case '\r':
				dst.WriteString(`\r`)
			case '\t':
				dst.WriteString(`\t`)
			case '\b':
				dst.WriteString(`\b`)
			case '\f':
				dst.WriteString(`\f`)
			default:
				dst.WriteString(`\u00`)
				dst.WriteByte(hexDigits[c>>4])
				dst.WriteByte(hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst.WriteString(s[start:i])
			dst.WriteString(`\ufffd`)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst.WriteString(s[start:i])
			dst.WriteString(`\u202`)
			dst.WriteByte(hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst.WriteString(s[start:])
	dst.WriteByte('"')
}

// refStringParam is stringParam before: encoding/json decodes every value.
func refStringParam(raw json.RawMessage, param string) (string, *Error) {
	if isNullRaw(raw) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", InvalidRequest(param, codeInvalidType, "invalid type for '%s': expected a string, got %s", param, rawKind(raw))
	}
	return s, nil
}

// refBoolParam is boolParam before.
func refBoolParam(raw json.RawMessage, param string) (v, set bool, e *Error) {
	if isNullRaw(raw) {
		return false, false, nil
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return false, false, InvalidRequest(param, codeInvalidType, "invalid type for '%s': expected a boolean, got %s", param, rawKind(raw))
	}
	return v, true, nil
}

// refNormalize is NormalizeResponses as it was.
func refNormalize(body []byte, opts RequestOptions) (*Mapped, error) {
	top, err := decodeObject(body)
	if err != nil {
		return nil, err
	}
	m, err := refNormalizeTop(top, opts)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// refNormalizeTop works on the decoded top-level object.
func refNormalizeTop(top map[string]json.RawMessage, opts RequestOptions) (*Mapped, *Error) {
	cat := opts.Catalog
	if cat == nil {
		cat = DefaultCatalog()
	}
	var drops dropSet
	mp, res, err := refMapModel(top, cat, &drops)
	if err != nil {
		return nil, err
	}
	out := map[string]json.RawMessage{"model": quoteJSON(res.Upstream)}

	instructions, err := refStringParam(top["instructions"], "instructions")
	if err != nil {
		return nil, err
	}
	out["instructions"] = quoteJSON(instructions)

	if mp.Stream, _, err = refBoolParam(top["stream"], "stream"); err != nil {
		return nil, err
	}
	if mp.IncludeUsage, err = chatIncludeUsage(top["stream_options"]); err != nil {
		return nil, err
	}
	if r := top["store"]; r != nil && string(bytes.TrimSpace(r)) != "false" {
		drops.add("store") // forced to false: the backend rejects anything else
	}

	var names ToolNames
	tools, hasTools, err := refNormalizeResponsesTools(top["tools"], &names)
	if err != nil {
		return nil, err
	}
	if hasTools {
		out["tools"] = tools
	}

	var ids CallIDs
	in, err := refNormalizeInput(top["input"], &names, &ids)
	if err != nil {
		return nil, err
	}
	out["input"] = in.raw

	if r := top["tool_choice"]; !isNullRaw(r) {
		choice, drop, err := refNormalizeResponsesToolChoice(r, hasTools, &names)
		if err != nil {
			return nil, err
		}
		if drop {
			drops.add("tool_choice")
		} else {
			out["tool_choice"] = choice
		}
	}
	if r, ok := top["parallel_tool_calls"]; ok {
		if _, _, err := refBoolParam(r, "parallel_tool_calls"); err != nil {
			return nil, err
		}
		if hasTools && !isNullRaw(r) {
			out["parallel_tool_calls"] = r
		} else {
			drops.add("parallel_tool_calls")
		}
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
		{reasoningObj.Effort, "reasoning.effort"},
		{top["reasoning_effort"], "reasoning_effort"},
	}, reasoningObj.Summary, "reasoning.summary", opts)
	if err != nil {
		return nil, err
	}
	mp.Effort, mp.EffortClampedFrom = plan.effort, plan.clamped
	if plan.reasoning != nil {
		out["reasoning"], _ = marshalCompact(plan.reasoning)
	}
	out["store"] = json.RawMessage("false")
	out["stream"] = json.RawMessage("true")
	include, err := refNormalizeInclude(top["include"], plan.include)
	if err != nil {
		return nil, err
	}
	out["include"] = include

	key, err := refStringParam(top["prompt_cache_key"], "prompt_cache_key")
	if err != nil {
		return nil, err
	}
	if key == "" {
		system := instructions
		if in.firstSystem != "" {
			system += "\n\n" + in.firstSystem
		}
		key = derivePromptCacheKey(opts.CacheKeySalt, system, in.firstUser)
	}
	mp.PromptCacheKey = key
	out["prompt_cache_key"] = quoteJSON(key)

	text, err := refNormalizeText(top, res, &drops)
	if err != nil {
		return nil, err
	}
	if text != nil {
		out["text"] = text
	}

	if mp.RequestedTier, mp.ServiceTier, err = pickServiceTier(top["service_tier"], mp.UpstreamModel, opts, &drops); err != nil {
		return nil, err
	}
	if mp.ServiceTier != "" {
		out["service_tier"] = quoteJSON(mp.ServiceTier)
	}

	var extra []string
	for k := range top {
		switch {
		case responsesDropped[k]:
			drops.add(k)
		case !responsesConsumed[k]:
			extra = append(extra, k) // unknown to us, maybe valid upstream
		}
	}
	slices.Sort(extra)

	var b bytes.Buffer
	b.Grow(len(in.raw) + 512)
	b.WriteByte('{')
	first := true
	write := func(k string, v json.RawMessage) *Error {
		if !first {
			b.WriteByte(',')
		}
		first = false
		refAppendJSONString(&b, k)
		b.WriteByte(':')
		if err := json.Compact(&b, v); err != nil {
			return InvalidRequest(k, codeInvalidValue, "invalid '%s': %s", k, err.Error())
		}
		return nil
	}
	for _, k := range responsesOrder {
		if v, ok := out[k]; ok {
			if err := write(k, v); err != nil {
				return nil, err
			}
		}
	}
	for _, k := range extra {
		if err := write(k, top[k]); err != nil {
			return nil, err
		}
	}
	b.WriteByte('}')
	mp.Body = b.Bytes()
	if len(names) > 0 {
		mp.ToolNames = names
	}
	if len(ids) > 0 {
		mp.CallIDs = ids
	}
	mp.Dropped = drops.sorted()
	return mp, nil
}

// refNormalizeResponsesTools passes tools through, renaming retired built-in
// types, shortening over-long names and flattening chat-style function
// tools. hasTools is false for a missing or empty array.
func refNormalizeResponsesTools(raw json.RawMessage, names *ToolNames) (json.RawMessage, bool, *Error) {
	if isNullRaw(raw) {
		return nil, false, nil
	}
	var list []json.RawMessage
	if err := decodeField(raw, &list, "tools"); err != nil {
		return nil, false, err
	}
	if len(list) == 0 {
		return nil, false, nil
	}
	var declared chatTools
	for i, t := range list {
		param := "tools[" + strconv.Itoa(i) + "]"
		if r := bytes.TrimSpace(t); len(r) == 0 || r[0] != '{' {
			return nil, false, InvalidRequest(param, codeInvalidType, "invalid type for '%s': expected an object, got %s", param, rawKind(t))
		}
		o, perr := refParseRawObject(t)
		if perr != nil {
			return nil, false, InvalidRequest(param, codeInvalidValue, "invalid tool at '%s': %s", param, perr.Error())
		}
		typRaw, _ := o.get("type")
		typ, err := refStringParam(typRaw, param+".type")
		if err != nil {
			return nil, false, err
		}
		nameRaw, _ := o.get("name")
		name, err := refStringParam(nameRaw, param+".name")
		if err != nil {
			return nil, false, err
		}
		fnRaw, hasFn := o.get("function")
		switch {
		case typ == "function" && name == "" && hasFn && !isNullRaw(fnRaw):
			// Chat-style tool in a Responses body: flatten it.
			var fd rqFuncDef
			if err := decodeObjectField(fnRaw, &fd, param+".function"); err != nil {
				return nil, false, err
			}
			if err := declared.addFunction(fd, param+".function", names); err != nil {
				return nil, false, err
			}
			list[i] = declared.list[len(declared.list)-1]
		case typ == "function" || typ == "custom":
			if name == "" {
				return nil, false, InvalidRequest(param+".name", codeMissingParam, "missing required parameter: '%s.name'", param)
			}
			kind := kindFunction
			if typ == "custom" {
				kind = kindCustom
			}
			short := names.shorten(name)
			if err := declared.declare(name, short, kind, param); err != nil {
				return nil, false, err
			}
			if short != name {
				o.set("name", quoteJSON(short))
				list[i], _ = refMarshal(o)
			}
		case typ == "":
			return nil, false, InvalidRequest(param+".type", codeMissingParam, "missing required parameter: '%s.type'", param)
		default:
			if nt := builtinToolType(typ); nt != typ {
				o.set("type", quoteJSON(nt))
				list[i], _ = refMarshal(o)
			}
		}
	}
	return rawArray(list), true, nil
}

// refNormalizeResponsesToolChoice shortens or flattens function choices and
// renames retired built-in types. drop reports a "none"/"auto" choice sent
// without tools, which is meaningless and removed.
func refNormalizeResponsesToolChoice(raw json.RawMessage, hasTools bool, names *ToolNames) (json.RawMessage, bool, *Error) {
	r := bytes.TrimSpace(raw)
	switch r[0] {
	case '"':
		var s string
		_ = json.Unmarshal(r, &s)
		if !hasTools && (s == "none" || s == "auto") {
			return nil, true, nil
		}
		return r, false, nil
	case '{':
	default:
		return nil, false, InvalidRequest("tool_choice", codeInvalidType, "invalid type for 'tool_choice': expected a string or an object, got %s", rawKind(r))
	}
	var tc struct {
		Type     string `json:"type"`
		Name     string `json:"name"`
		Function *struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if err := decodeField(r, &tc, "tool_choice"); err != nil {
		return nil, false, err
	}
	switch tc.Type {
	case "function", "custom":
		name := tc.Name
		if name == "" && tc.Function != nil {
			name = tc.Function.Name
		}
		if name == "" {
			return nil, false, InvalidRequest("tool_choice", codeMissingParam, "'tool_choice' must name a tool")
		}
		if short := names.shorten(name); short != tc.Name || tc.Function != nil {
			b, _ := marshalCompact(rqToolChoiceFunc{Type: tc.Type, Name: short})
			return b, false, nil
		}
		return r, false, nil
	}
	b, err := builtinTool(r, tc.Type)
	if err != nil {
		return nil, false, InvalidRequest("tool_choice", codeInvalidValue, "invalid 'tool_choice': %s", err.Error())
	}
	return b, false, nil
}

// refNormalizeInclude keeps the client's include entries and adds (or, with
// reasoning off, removes) reasoning.encrypted_content.
func refNormalizeInclude(raw json.RawMessage, encrypted bool) (json.RawMessage, *Error) {
	var list []string
	if !isNullRaw(raw) {
		if err := decodeField(raw, &list, "include"); err != nil {
			return nil, err
		}
	}
	list = slices.DeleteFunc(list, func(s string) bool { return s == includeEncrypted })
	if encrypted {
		list = append(list, includeEncrypted)
	}
	if list == nil {
		list = []string{}
	}
	b, _ := marshalCompact(list)
	return b, nil
}

// refNormalizeText removes text.verbosity for models that reject it and maps
// chat-style response_format/verbosity found in Responses-shaped bodies.
func refNormalizeText(top map[string]json.RawMessage, res Resolved, drops *dropSet) (json.RawMessage, *Error) {
	var o rawObject
	if r := top["text"]; !isNullRaw(r) {
		if r := bytes.TrimSpace(r); r[0] != '{' {
			return nil, InvalidRequest("text", codeInvalidType, "invalid type for 'text': expected an object, got %s", rawKind(r))
		}
		var err error
		if o, err = refParseRawObject(r); err != nil {
			return nil, InvalidRequest("text", codeInvalidValue, "invalid 'text': %s", err.Error())
		}
	}
	if r := top["response_format"]; !isNullRaw(r) {
		f, err := convertResponseFormat(r)
		if err != nil {
			return nil, err
		}
		if _, has := o.get("format"); f != nil && !has {
			o.set("format", f)
		} else if f != nil {
			drops.add("response_format") // text.format wins
		}
	}
	if r := top["verbosity"]; !isNullRaw(r) {
		v, err := refStringParam(r, "verbosity")
		if err != nil {
			return nil, err
		}
		if err := checkVerbosity(v, "verbosity"); err != nil {
			return nil, err
		}
		if _, has := o.get("verbosity"); !has {
			o.set("verbosity", quoteJSON(v))
		} else {
			drops.add("verbosity") // text.verbosity wins
		}
	}
	if v, ok := o.get("verbosity"); ok && (isNullRaw(v) || !verbosityAllowed(res)) {
		o.del("verbosity")
		if !isNullRaw(v) {
			drops.add("text.verbosity")
		}
	}
	if len(o) == 0 {
		return nil, nil
	}
	b, err := refMarshal(o)
	if err != nil {
		return nil, InvalidRequest("text", codeInvalidValue, "invalid 'text': %s", err.Error())
	}
	return b, nil
}

// refMapModel does what both request mappers start with: refuse
// previous_response_id and n > 1, and resolve the model through the catalog.
func refMapModel(top map[string]json.RawMessage, cat *Catalog, drops *dropSet) (*Mapped, Resolved, *Error) {
	if !isNullRaw(top["previous_response_id"]) {
		return nil, Resolved{}, errPreviousResponseID()
	}
	if e := checkN(top["n"], drops); e != nil {
		return nil, Resolved{}, e
	}
	model, err := refStringParam(top["model"], "model")
	if err != nil {
		return nil, Resolved{}, err
	}
	if strings.TrimSpace(model) == "" {
		return nil, Resolved{}, InvalidRequest("model", codeMissingParam, "missing required parameter: 'model'")
	}
	res := cat.Resolve(model)
	return &Mapped{ClientModel: model, UpstreamModel: res.Upstream}, res, nil
}

// refNormalizedInput is the rewritten Responses input plus what the prompt
// cache key derivation needs.
type refNormalizedInput struct {
	raw         json.RawMessage
	firstSystem string
	firstUser   string
}

// refNormalizeInput turns input into a list of items the stateless backend
// accepts: a string becomes one user message, ids are stripped (with
// store:false they point at nothing; the official client sends none),
// output-only fields of replayed output items are removed, system roles
// become developer, item references are rejected, call ids over
// MaxCallIDLen are shortened and tool calls are paired like chat history.
func refNormalizeInput(raw json.RawMessage, names *ToolNames, ids *CallIDs) (refNormalizedInput, *Error) {
	var in refNormalizedInput
	r := bytes.TrimSpace(raw)
	if isNullRaw(r) {
		return in, InvalidRequest("input", codeMissingParam, "missing required parameter: 'input'")
	}
	if r[0] == '"' {
		var s string
		if err := json.Unmarshal(r, &s); err != nil {
			return in, InvalidRequest("input", codeInvalidType, "invalid 'input': %s", err.Error())
		}
		in.firstUser = s
		b, _ := marshalCompact([]any{&rqMessageItem{Type: "message", Role: "user", Content: []any{&rqTextPart{Type: "input_text", Text: s}}}})
		in.raw = b
		return in, nil
	}
	if r[0] != '[' {
		return in, InvalidRequest("input", codeInvalidType, "invalid type for 'input': expected a string or an array of items, got %s", rawKind(r))
	}
	var items []json.RawMessage
	if err := decodeField(r, &items, "input"); err != nil {
		return in, err
	}
	if len(items) == 0 {
		return in, InvalidRequest("input", codeInvalidValue, "'input' must contain at least one item")
	}
	n := &refInputNormalizer{names: names, ids: ids, pair: newPairer()}
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

// refInputNormalizer carries state across input items.
type refInputNormalizer struct {
	names       *ToolNames
	ids         *CallIDs
	pair        *pairer
	firstSystem string
	firstUser   string
	haveSystem  bool
	haveUser    bool
}

// item normalises input[i]; it returns the item to send. Keys are matched
// exactly (encoding/json would also match "Type" for "type", and the
// upstream would not), and items nobody edits are passed on as they came.
func (n *refInputNormalizer) item(i int, raw json.RawMessage) (json.RawMessage, *Error) {
	param := "input[" + strconv.Itoa(i) + "]"
	if r := bytes.TrimSpace(raw); len(r) == 0 || r[0] != '{' {
		return nil, InvalidRequest(param, codeInvalidType, "invalid type for '%s': expected an object, got %s", param, rawKind(raw))
	}
	o, perr := refParseRawObject(raw)
	if perr != nil {
		return nil, InvalidRequest(param, codeInvalidValue, "invalid item at '%s': %s", param, perr.Error())
	}
	field := func(key string) (string, *Error) {
		v, _ := o.get(key)
		return refStringParam(v, param+"."+key)
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
		return nil, InvalidRequest(param, codeUnsupportedCont,
			"item_reference at '%s' is not supported: conversations are stateless here (store is false upstream); send the referenced item itself", param)
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
			if err := n.pair.call(i, callID, false, param+".call_id"); err != nil {
				return nil, err
			}
		}
	case "function_call", "custom_tool_call":
		if err := n.pair.call(i, callID, typ == "custom_tool_call", param+".call_id"); err != nil {
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
		id, err := n.pair.output(callID, param+".call_id")
		if err != nil {
			return nil, err
		}
		upID = id // an output without call_id answers the one waiting call
	case "":
		return nil, InvalidRequest(param+".type", codeMissingParam, "missing required parameter: '%s.type'", param)
	}
	if upID = n.ids.shorten(upID); upID != callID {
		o.set("call_id", quoteJSON(upID))
		changed = true
	}
	if !changed {
		return raw, nil
	}
	b, merr := refMarshal(o)
	if merr != nil {
		return nil, InvalidRequest(param, codeInvalidValue, "invalid item at '%s': %s", param, merr.Error())
	}
	return b, nil
}

// message rewrites a message item: system → developer, data URLs
// re-encoded, per-part prompt_cache_breakpoint removed (docs/protocol.md#unsupported-parameters). It reports
// whether o changed.
func (n *refInputNormalizer) message(o *rawObject, param string) (bool, *Error) {
	roleRaw, _ := o.get("role")
	role, err := refStringParam(roleRaw, param+".role")
	if err != nil {
		return false, err
	}
	changed := false
	switch role {
	case "system":
		o.set("role", json.RawMessage(`"developer"`))
		role, changed = "developer", true
	case "":
		return false, InvalidRequest(param+".role", codeMissingParam, "missing required parameter: '%s.role'", param)
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
	var parts []json.RawMessage
	if err := decodeField(c, &parts, param+".content"); err != nil {
		return false, err
	}
	for j, p := range parts {
		np, err := refNormalizePart(p, param+".content["+strconv.Itoa(j)+"]")
		if err != nil {
			return false, err
		}
		parts[j] = np
	}
	o.set("content", rawArray(parts))
	return true, nil
}

// refNormalizePart fixes one content part of a Responses message.
func refNormalizePart(raw json.RawMessage, param string) (json.RawMessage, *Error) {
	if r := bytes.TrimSpace(raw); len(r) == 0 || r[0] != '{' {
		return nil, InvalidRequest(param, codeInvalidType, "invalid type for '%s': expected an object, got %s", param, rawKind(raw))
	}
	o, err := refParseRawObject(raw)
	if err != nil {
		return nil, InvalidRequest(param, codeInvalidValue, "invalid content part at '%s': %s", param, err.Error())
	}
	o.del("prompt_cache_breakpoint")
	typRaw, _ := o.get("type")
	typ, _ := refStringParam(typRaw, param+".type")
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
	b, merr := refMarshal(o)
	if merr != nil {
		return nil, InvalidRequest(param, codeInvalidValue, "invalid content part at '%s': %s", param, merr.Error())
	}
	return b, nil
}
