package translate

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
)

// Error codes used by the request translators.
const (
	codeInvalidJSON     = "invalid_json"
	codeMissingParam    = "missing_required_parameter"
	codeInvalidType     = "invalid_type"
	codeInvalidValue    = "invalid_value"
	codeUnsupportedPar  = "unsupported_parameter"
	codeUnsupportedCont = "unsupported_content"
	codeToolPairing     = "invalid_tool_call"
)

// includeEncrypted asks the stateless backend to return reasoning as an
// opaque blob that the client can replay in later turns.
const includeEncrypted = "reasoning.encrypted_content"

// decodeObject parses a request body that must be a JSON object, reporting
// where it is broken.
func decodeObject(body []byte) (map[string]json.RawMessage, *Error) {
	if m, ok := scanTopObject(body); ok {
		if err := checkDepth(body); err != nil {
			return nil, err
		}
		return m, nil
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, InvalidRequest("", codeInvalidJSON, "request body is empty; expected a JSON object")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			// Offset counts the bytes read, including the offending one;
			// report the 0-based position of that byte.
			off := se.Offset
			if off > 0 && off <= int64(len(body)) && !strings.HasPrefix(se.Error(), "unexpected end") {
				off--
			}
			return nil, InvalidRequest("", codeInvalidJSON, "request body is not valid JSON: %s (at byte offset %d)", se.Error(), off)
		case errors.As(err, &te):
			return nil, InvalidRequest("", codeInvalidJSON, "request body must be a JSON object, got %s", te.Value)
		default:
			return nil, InvalidRequest("", codeInvalidJSON, "request body is not valid JSON: %s", err.Error())
		}
	}
	if m == nil {
		return nil, InvalidRequest("", codeInvalidJSON, "request body must be a JSON object, got null")
	}
	if err := checkDepth(body); err != nil {
		return nil, err
	}
	return m, nil
}

// decodeField unmarshals one parameter, naming param (and the nested field,
// when the decoder knows it) in the error.
func decodeField(raw json.RawMessage, v any, param string) *Error {
	err := json.Unmarshal(raw, v)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		p := param
		if te.Field != "" {
			p += "." + te.Field
		}
		return InvalidRequest(p, codeInvalidType, "invalid type for '%s': expected %s, got %s", p, jsonKind(te.Type), te.Value)
	}
	return InvalidRequest(param, codeInvalidValue, "invalid value for '%s': %s", param, err.Error())
}

// jsonKind names the JSON type that a Go type decodes from.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "a different type"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice, reflect.Array:
		if t == reflect.TypeFor[json.RawMessage]() {
			return "a JSON value"
		}
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "a different type"
}

// isNullRaw reports whether raw is absent or the JSON literal null; clients use
// both to mean "not set".
func isNullRaw(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}

// rawKind names the JSON type of a raw value for error messages.
func rawKind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// decodeString decodes a JSON string literal taken from an already
// validated document. Literals without escapes, the common case, are copied
// without another validation pass.
func decodeString(r []byte) (string, error) {
	if len(r) >= 2 && r[0] == '"' && r[len(r)-1] == '"' && bytes.IndexByte(r, '\\') < 0 {
		return string(r[1 : len(r)-1]), nil
	}
	if s, ok := unquoteScanned(r); ok {
		return s, nil
	}
	var s string
	err := json.Unmarshal(r, &s)
	return s, err
}

// stringParam decodes an optional string parameter; null is "".
func stringParam(raw json.RawMessage, param string) (string, *Error) {
	if isNullRaw(raw) {
		return "", nil
	}
	if s, ok := unquoteJSON(bytes.TrimSpace(raw)); ok {
		return s, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", InvalidRequest(param, codeInvalidType, "invalid type for '%s': expected a string, got %s", param, rawKind(raw))
	}
	return s, nil
}

// boolParam decodes an optional boolean parameter; set is false for null.
func boolParam(raw json.RawMessage, param string) (v, set bool, e *Error) {
	if isNullRaw(raw) {
		return false, false, nil
	}
	switch string(bytes.TrimSpace(raw)) {
	case "true":
		return true, true, nil
	case "false":
		return false, true, nil
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return false, false, InvalidRequest(param, codeInvalidType, "invalid type for '%s': expected a boolean, got %s", param, rawKind(raw))
	}
	return v, true, nil
}

// rqReasoning is the upstream reasoning object.
type rqReasoning struct {
	Effort  string `json:"effort,omitempty"`
	Summary string `json:"summary,omitempty"`
}

// effortInput is one client-provided effort candidate, highest priority
// first; param names it in errors.
type effortInput struct {
	raw   json.RawMessage
	param string
}

// reasoningPlan is the decided reasoning configuration of a request.
type reasoningPlan struct {
	reasoning *rqReasoning // nil: send no reasoning object
	include   bool         // ask for encrypted reasoning content
	effort    string       // effective effort sent, "" for upstream default
	clamped   string       // the effort asked for when MaxEffort lowered it
}

// planReasoning picks the effort (client parameters in priority order, then
// the model-name suffix, then the model default), clamps it for known
// models and decides the summary. summaryRaw is the client's
// reasoning.summary, if any.
func planReasoning(cat *Catalog, res Resolved, efforts []effortInput, summaryRaw json.RawMessage, summaryParam string, opts RequestOptions) (reasoningPlan, *Error) {
	effort := ""
	for _, in := range efforts {
		s, err := stringParam(in.raw, in.param)
		if err != nil {
			return reasoningPlan{}, err
		}
		if s == "" {
			continue
		}
		e, ok := normalizeEffort(s)
		if !ok && !containsFold(res.Model.Efforts, s) {
			return reasoningPlan{}, InvalidRequest(in.param, codeInvalidValue,
				"invalid value for '%s': %q; supported values are none, minimal, low, medium, high and xhigh", in.param, s)
		}
		if !ok {
			e = s
		}
		if effort == "" {
			effort = e
		}
	}
	if effort == "" {
		effort = res.Effort
	}
	if effort == "" {
		effort = res.Model.DefaultEffort
	}
	if res.Known {
		effort = cat.ClampEffort(res.Model, effort)
	}
	clampedFrom := ""
	if capped := capEffort(res, effort, opts.MaxEffort); capped != effort {
		clampedFrom, effort = effort, capped
		if clampedFrom == "" {
			clampedFrom = "default"
		}
	}

	summary, err := stringParam(summaryRaw, summaryParam)
	if err != nil {
		return reasoningPlan{}, err
	}
	switch summary {
	case "auto", "concise", "detailed":
	case "":
		summary = opts.ReasoningSummary
		if summary == "" {
			summary = "auto"
		}
	case "none":
		// Accepted for symmetry with RequestOptions: no summaries.
	default:
		return reasoningPlan{}, InvalidRequest(summaryParam, codeInvalidValue,
			"invalid value for '%s': %q; supported values are auto, concise and detailed", summaryParam, summary)
	}
	if summary == "none" {
		summary = ""
	}

	if effort == "none" {
		// Reasoning off: nothing to summarise and nothing encrypted to replay.
		return reasoningPlan{reasoning: &rqReasoning{Effort: "none"}, effort: effort, clamped: clampedFrom}, nil
	}
	p := reasoningPlan{include: true, effort: effort, clamped: clampedFrom}
	if effort != "" || summary != "" {
		p.reasoning = &rqReasoning{Effort: effort, Summary: summary}
	}
	return p, nil
}

// containsFold reports whether list holds s, ignoring case.
func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// checkVerbosity validates a verbosity value.
func checkVerbosity(v, param string) *Error {
	switch v {
	case "low", "medium", "high":
		return nil
	}
	return InvalidRequest(param, codeInvalidValue, "invalid value for '%s': %q; supported values are low, medium and high", param, v)
}

// verbosityAllowed reports whether text.verbosity may be sent for the model.
// Unknown models get it: the upstream decides about models we don't know.
func verbosityAllowed(res Resolved) bool {
	return !res.Known || res.Model.Verbosity
}

// rqText is the upstream text object (output format and verbosity).
type rqText struct {
	Format    json.RawMessage `json:"format,omitempty"`
	Verbosity string          `json:"verbosity,omitempty"`
}

// rqFormat is the Responses text.format for structured outputs.
type rqFormat struct {
	Type        string          `json:"type"`
	Name        string          `json:"name,omitempty"`
	Schema      json.RawMessage `json:"schema,omitempty"`
	Strict      *bool           `json:"strict,omitempty"`
	Description string          `json:"description,omitempty"`
}

// convertResponseFormat maps chat response_format to a Responses
// text.format; nil means "plain text, send nothing".
func convertResponseFormat(raw json.RawMessage) (json.RawMessage, *Error) {
	if isNullRaw(raw) {
		return nil, nil
	}
	var rf struct {
		Type       string `json:"type"`
		JSONSchema *struct {
			Name        string          `json:"name"`
			Description string          `json:"description"`
			Schema      json.RawMessage `json:"schema"`
			Strict      *bool           `json:"strict"`
		} `json:"json_schema"`
	}
	if err := decodeField(raw, &rf, "response_format"); err != nil {
		return nil, err
	}
	var f rqFormat
	switch rf.Type {
	case "text":
		return nil, nil
	case "json_object":
		f.Type = "json_object"
	case "json_schema":
		js := rf.JSONSchema
		if js == nil {
			return nil, InvalidRequest("response_format.json_schema", codeMissingParam, "missing required parameter: 'response_format.json_schema'")
		}
		if js.Name == "" {
			return nil, InvalidRequest("response_format.json_schema.name", codeMissingParam, "missing required parameter: 'response_format.json_schema.name'")
		}
		if isNullRaw(js.Schema) {
			return nil, InvalidRequest("response_format.json_schema.schema", codeMissingParam, "missing required parameter: 'response_format.json_schema.schema'")
		}
		if s := bytes.TrimSpace(js.Schema); s[0] != '{' {
			return nil, InvalidRequest("response_format.json_schema.schema", codeInvalidType, "invalid type for 'response_format.json_schema.schema': expected an object, got %s", rawKind(s))
		}
		strict := js.Strict != nil && *js.Strict
		f = rqFormat{Type: "json_schema", Name: js.Name, Schema: js.Schema, Strict: &strict, Description: js.Description}
	case "":
		return nil, InvalidRequest("response_format.type", codeMissingParam, "missing required parameter: 'response_format.type'")
	default:
		return nil, InvalidRequest("response_format.type", codeInvalidValue, "invalid value for 'response_format.type': %q; supported values are text, json_object and json_schema", rf.Type)
	}
	b, err := marshalCompact(f)
	if err != nil {
		return nil, InvalidRequest("response_format", codeInvalidValue, "invalid 'response_format': %s", err.Error())
	}
	return b, nil
}

// derivePromptCacheKey builds a stable, UUID-formatted key for one
// conversation: the same salt, first system text and first user message give
// the same key on every turn, so the upstream prompt cache is reused, while
// another user (salt) or conversation gets another key.
func derivePromptCacheKey(salt, system, user string) string {
	h := sha256.New()
	for _, s := range [...]string{salt, system, user} {
		var n [8]byte
		l := uint64(len(s))
		for i := range n {
			n[i] = byte(l >> (8 * i))
		}
		h.Write(n[:]) // length prefix: ("ab","c") and ("a","bc") differ
		h.Write([]byte(s))
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	sum[6] = sum[6]&0x0f | 0x80 // version 8: custom, RFC 9562
	sum[8] = sum[8]&0x3f | 0x80 // RFC 4122 variant
	var buf [36]byte
	hex.Encode(buf[0:8], sum[0:4])
	buf[8] = '-'
	hex.Encode(buf[9:13], sum[4:6])
	buf[13] = '-'
	hex.Encode(buf[14:18], sum[6:8])
	buf[18] = '-'
	hex.Encode(buf[19:23], sum[8:10])
	buf[23] = '-'
	hex.Encode(buf[24:36], sum[10:16])
	return string(buf[:])
}

// contentFingerprint extracts the text (and image URLs) of a message
// content value, for prompt-cache-key derivation. It never fails: content it
// cannot read contributes nothing.
func contentFingerprint(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	if raw[0] == '"' {
		var s string
		_ = json.Unmarshal(raw, &s)
		return s
	}
	var parts []struct {
		Text     string          `json:"text"`
		ImageURL json.RawMessage `json:"image_url"`
	}
	if json.Unmarshal(raw, &parts) != nil {
		return ""
	}
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(p.Text)
		if r := bytes.TrimSpace(p.ImageURL); len(r) > 0 {
			// Only the URL: the JSON spelling around it may change between
			// turns without the conversation changing.
			var u struct {
				URL string `json:"url"`
			}
			if r[0] == '"' {
				_ = json.Unmarshal(r, &u.URL)
			} else {
				_ = json.Unmarshal(r, &u)
			}
			b.WriteString(u.URL)
		}
	}
	return b.String()
}

// marshalCompact encodes v as compact JSON without HTML escaping, so text
// such as "<b>" reaches the model byte for byte.
func marshalCompact(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// dropSet collects the names of parameters that were not sent upstream.
type dropSet map[string]struct{}

// add records a dropped parameter.
func (d *dropSet) add(name string) {
	if *d == nil {
		*d = make(dropSet)
	}
	(*d)[name] = struct{}{}
}

// sorted returns the names in order, nil when empty.
func (d dropSet) sorted() []string {
	if len(d) == 0 {
		return nil
	}
	out := make([]string, 0, len(d))
	for k := range d {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
