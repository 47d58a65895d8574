package translate

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
)

// responsesOrder is the official client's field order; other kept keys
// follow sorted.
var responsesOrder = []string{
	"model", "instructions", "input", "tools", "tool_choice", "parallel_tool_calls",
	"reasoning", "store", "stream", "include", "prompt_cache_key", "text", "service_tier",
}

// responsesDropped lists Responses parameters the backend rejects (docs/protocol.md#unsupported-parameters),
// plus Chat Completions parameters that Responses-shaped bodies from chat
// clients carry along. They are removed and reported in Mapped.Dropped.
var responsesDropped = map[string]bool{
	"max_output_tokens": true, "max_completion_tokens": true, "temperature": true,
	"top_p": true, "truncation": true, "prompt_cache_retention": true,
	"prompt_cache_options": true, "safety_identifier": true, "context_management": true,
	"user": true, "metadata": true, "stream_options": true, "background": true,
	"conversation": true, "top_logprobs": true,
	// Chat Completions only.
	"top_k": true, "max_tokens": true, "stop": true, "presence_penalty": true,
	"frequency_penalty": true, "logit_bias": true, "logprobs": true, "seed": true,
	"modalities": true, "audio": true, "prediction": true, "web_search_options": true,
	"functions": true, "function_call": true, "messages": true,
}

// responsesConsumed lists keys handled explicitly (rebuilt or validated).
var responsesConsumed = map[string]bool{
	"model": true, "instructions": true, "input": true, "tools": true,
	"tool_choice": true, "parallel_tool_calls": true, "reasoning": true,
	"reasoning_effort": true, "store": true, "stream": true, "include": true,
	"prompt_cache_key": true, "text": true, "service_tier": true,
	"previous_response_id": true, "n": true, "response_format": true, "verbosity": true,
}

// NormalizeResponses prepares a /v1/responses body for the stateless Codex
// backend: store false, stream true, instructions present, input a list
// without item ids, item references or output-only fields, call ids the
// backend would find too long shortened, model and reasoning resolved
// through the catalog, rejected parameters removed. Fields the backend accepts are
// preserved. Errors are *Error with status 400.
func NormalizeResponses(body []byte, opts RequestOptions) (*Mapped, error) {
	top, err := decodeObject(body)
	if err != nil {
		return nil, err
	}
	m, err := normalizeResponses(top, opts)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// normalizeResponses works on the decoded top-level object.
func normalizeResponses(top map[string]json.RawMessage, opts RequestOptions) (*Mapped, *Error) {
	cat := opts.Catalog
	if cat == nil {
		cat = DefaultCatalog()
	}
	var drops dropSet
	mp, res, err := mapModel(top, cat, &drops)
	if err != nil {
		return nil, err
	}
	out := map[string]json.RawMessage{"model": quoteJSON(res.Upstream)}

	instructions, err := stringParam(top["instructions"], "instructions")
	if err != nil {
		return nil, err
	}
	out["instructions"] = quoteJSON(instructions)

	if mp.Stream, _, err = boolParam(top["stream"], "stream"); err != nil {
		return nil, err
	}
	if mp.IncludeUsage, err = chatIncludeUsage(top["stream_options"]); err != nil {
		return nil, err
	}
	if r := top["store"]; r != nil && string(bytes.TrimSpace(r)) != "false" {
		drops.add("store") // forced to false: the backend rejects anything else
	}

	var names ToolNames
	tools, hasTools, images, err := normalizeResponsesTools(top["tools"], &names)
	if err != nil {
		return nil, err
	}
	mp.Images = images
	if hasTools {
		out["tools"] = tools
	}

	var ids CallIDs
	in, err := normalizeInput(top["input"], &names, &ids)
	if err != nil {
		return nil, err
	}
	out["input"] = in.raw

	if r := top["tool_choice"]; !isNullRaw(r) {
		choice, drop, err := normalizeResponsesToolChoice(r, hasTools, &names)
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
		if _, _, err := boolParam(r, "parallel_tool_calls"); err != nil {
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
	include, err := normalizeInclude(top["include"], plan.include)
	if err != nil {
		return nil, err
	}
	out["include"] = include

	key, err := stringParam(top["prompt_cache_key"], "prompt_cache_key")
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

	text, err := normalizeText(top, res, &drops)
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

	// Every value is valid JSON (taken from the body decodeObject accepted,
	// or written here), so it is only compacted, not checked again.
	n := 512
	for _, v := range out {
		n += len(v)
	}
	for _, k := range extra {
		n += len(k) + len(top[k]) + 4
	}
	b := append(make([]byte, 0, n), '{')
	for _, k := range responsesOrder {
		if v, ok := out[k]; ok {
			b = appendMember(b, k, v)
		}
	}
	for _, k := range extra {
		b = appendMember(b, k, top[k])
	}
	mp.Body = append(b, '}')
	if len(names) > 0 {
		mp.ToolNames = names
	}
	if len(ids) > 0 {
		mp.CallIDs = ids
	}
	mp.Dropped = drops.sorted()
	return mp, nil
}

// appendMember appends "k":v to the object being written in b, v compacted.
func appendMember(b []byte, k string, v json.RawMessage) []byte {
	if b[len(b)-1] != '{' {
		b = append(b, ',')
	}
	b = appendJSONStr(b, k)
	b = append(b, ':')
	return appendCompactValid(b, v)
}

// normalizeResponsesTools passes tools through, renaming retired built-in
// types, shortening over-long names and flattening chat-style function
// tools. hasTools is false for a missing or empty array; images reports the
// hosted image_generation tool among them.
func normalizeResponsesTools(raw json.RawMessage, names *ToolNames) (out json.RawMessage, hasTools, images bool, e *Error) {
	if isNullRaw(raw) {
		return nil, false, false, nil
	}
	list, err := splitArray(raw, "tools")
	if err != nil {
		return nil, false, false, err
	}
	if len(list) == 0 {
		return nil, false, false, nil
	}
	var declared chatTools
	for i, t := range list {
		param := "tools[" + strconv.Itoa(i) + "]"
		if r := bytes.TrimSpace(t); len(r) == 0 || r[0] != '{' {
			return nil, false, false, InvalidRequest(param, codeInvalidType, "invalid type for '%s': expected an object, got %s", param, rawKind(t))
		}
		o, perr := parseRawObject(t)
		if perr != nil {
			return nil, false, false, InvalidRequest(param, codeInvalidValue, "invalid tool at '%s': %s", param, perr.Error())
		}
		typRaw, _ := o.get("type")
		typ, err := stringParam(typRaw, param+".type")
		if err != nil {
			return nil, false, false, err
		}
		nameRaw, _ := o.get("name")
		name, err := stringParam(nameRaw, param+".name")
		if err != nil {
			return nil, false, false, err
		}
		fnRaw, hasFn := o.get("function")
		switch {
		case typ == "function" && name == "" && hasFn && !isNullRaw(fnRaw):
			// Chat-style tool in a Responses body: flatten it.
			var fd rqFuncDef
			if err := decodeObjectField(fnRaw, &fd, param+".function"); err != nil {
				return nil, false, false, err
			}
			if err := declared.addFunction(fd, param+".function", names); err != nil {
				return nil, false, false, err
			}
			list[i] = declared.list[len(declared.list)-1]
		case typ == "function" || typ == "custom":
			if name == "" {
				return nil, false, false, InvalidRequest(param+".name", codeMissingParam, "missing required parameter: '%s.name'", param)
			}
			kind := kindFunction
			if typ == "custom" {
				kind = kindCustom
			}
			short := names.shorten(name)
			if err := declared.declare(name, short, kind, param); err != nil {
				return nil, false, false, err
			}
			if short != name {
				o.set("name", quoteJSON(short))
				list[i] = o.marshal()
			}
		case typ == "":
			return nil, false, false, InvalidRequest(param+".type", codeMissingParam, "missing required parameter: '%s.type'", param)
		default:
			nt := builtinToolType(typ)
			images = images || nt == imageTool
			if nt != typ {
				o.set("type", quoteJSON(nt))
				list[i] = o.marshal()
			}
		}
	}
	return rawArray(list), true, images, nil
}

// splitArray returns the elements of the JSON array raw, a value of a body
// decodeObject accepted, aliasing raw; what is not an array gets
// decodeField's error naming param.
func splitArray(raw json.RawMessage, param string) ([]json.RawMessage, *Error) {
	list := make([]json.RawMessage, 0, 16)
	if forEachElement(raw, func(v []byte) bool {
		list = append(list, v)
		return true
	}) {
		return list, nil
	}
	list = nil
	if err := decodeField(raw, &list, param); err != nil {
		return nil, err
	}
	return list, nil
}

// rawArray builds a JSON array from raw elements.
func rawArray(list []json.RawMessage) json.RawMessage {
	n := 2
	for _, r := range list {
		n += len(r) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, r := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, r...)
	}
	return append(b, ']')
}

// normalizeResponsesToolChoice shortens or flattens function choices and
// renames retired built-in types. drop reports a "none"/"auto" choice sent
// without tools, which is meaningless and removed.
func normalizeResponsesToolChoice(raw json.RawMessage, hasTools bool, names *ToolNames) (json.RawMessage, bool, *Error) {
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

// normalizeInclude keeps the client's include entries and adds (or, with
// reasoning off, removes) reasoning.encrypted_content.
func normalizeInclude(raw json.RawMessage, encrypted bool) (json.RawMessage, *Error) {
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

// normalizeText removes text.verbosity for models that reject it and maps
// chat-style response_format/verbosity found in Responses-shaped bodies.
func normalizeText(top map[string]json.RawMessage, res Resolved, drops *dropSet) (json.RawMessage, *Error) {
	var o rawObject
	if r := top["text"]; !isNullRaw(r) {
		if r := bytes.TrimSpace(r); r[0] != '{' {
			return nil, InvalidRequest("text", codeInvalidType, "invalid type for 'text': expected an object, got %s", rawKind(r))
		}
		var err error
		if o, err = parseRawObject(r); err != nil {
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
		v, err := stringParam(r, "verbosity")
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
	return o.marshal(), nil
}

// mapModel does what both request mappers start with: refuse
// previous_response_id and n > 1, and resolve the model through the catalog.
func mapModel(top map[string]json.RawMessage, cat *Catalog, drops *dropSet) (*Mapped, Resolved, *Error) {
	if !isNullRaw(top["previous_response_id"]) {
		return nil, Resolved{}, errPreviousResponseID()
	}
	if e := checkN(top["n"], drops); e != nil {
		return nil, Resolved{}, e
	}
	model, err := stringParam(top["model"], "model")
	if err != nil {
		return nil, Resolved{}, err
	}
	if strings.TrimSpace(model) == "" {
		return nil, Resolved{}, InvalidRequest("model", codeMissingParam, "missing required parameter: 'model'")
	}
	res := cat.Resolve(model)
	return &Mapped{ClientModel: model, UpstreamModel: res.Upstream}, res, nil
}
