package translate

import (
	"bytes"
	"encoding/json"
)

// Fast decoders for the request mapping. Each walks JSON already validated
// (by the request body scan, or by encoding/json when that fell back), so
// values are skipped without checking them again, with the package's scanner, into the same
// structs encoding/json fills, and gives up (ok false) on anything it does
// not mirror exactly: a key spelled with escapes or in another case (which
// encoding/json matches case-insensitively), a value of the wrong type. The
// callers then run encoding/json, which also words the error, so accepted
// requests map as before and rejected ones get the same message.

// scanTopObject splits a request body into its top-level members; it
// validates the whole body first.
func scanTopObject(body []byte) (map[string]json.RawMessage, bool) {
	i := skipSpace(body, 0)
	end, ok := skipValue(body, i, 0)
	if !ok || body[i] != '{' || skipSpace(body, end) != len(body) {
		return nil, false
	}
	m := make(map[string]json.RawMessage, 16)
	it := newTrustedIter(body[i:end]) // skipValue has just validated it
	for {
		k, v, ok := it.next()
		if !ok {
			break
		}
		if bytes.IndexByte(k, '\\') >= 0 {
			return nil, false
		}
		m[string(k)] = v
	}
	return m, !it.failed()
}

// scanString stores a JSON string in dst; null leaves dst as it is, as
// encoding/json does.
func scanString(v []byte, dst *string) bool {
	if len(v) > 0 && v[0] == 'n' {
		return string(v) == "null"
	}
	s, ok := unquoteScanned(v)
	if ok {
		*dst = s
	}
	return ok
}

// scanStringPtr stores a JSON string in *dst; null sets it to nil.
func scanStringPtr(v []byte, dst **string) bool {
	if len(v) > 0 && v[0] == 'n' {
		*dst = nil
		return string(v) == "null"
	}
	s, ok := unquoteScanned(v)
	if ok {
		*dst = &s
	}
	return ok
}

// unknownKey reports whether a key that matched no field exactly would
// match one case-insensitively in encoding/json, or is escaped: then the
// fast decoder must not guess.
func unknownKey(k []byte, fields ...string) bool {
	if bytes.IndexByte(k, '\\') >= 0 {
		return true
	}
	for _, f := range fields {
		if bytes.EqualFold(k, []byte(f)) {
			return true
		}
	}
	return false
}

// forEachElement calls fn with every element of the JSON array raw, which
// must be valid JSON (see newTrustedIter); it reports false when raw is not
// an array or fn returns false.
func forEachElement(raw []byte, fn func(v []byte) bool) bool {
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '[' {
		return false
	}
	i = skipSpace(raw, i+1)
	if i < len(raw) && raw[i] == ']' {
		return skipSpace(raw, i+1) == len(raw)
	}
	for i < len(raw) {
		end := skipTrusted(raw, i)
		if end == i || !fn(raw[i:end]) {
			return false
		}
		i = skipSpace(raw, end)
		if i < len(raw) && raw[i] == ']' {
			return skipSpace(raw, i+1) == len(raw)
		}
		if i >= len(raw) || raw[i] != ',' {
			return false
		}
		i = skipSpace(raw, i+1)
	}
	return false
}

var messageFields = []string{"role", "content", "name", "tool_calls", "tool_call_id", "function_call", "refusal"}

// scanMessages decodes the messages array as json.Unmarshal into
// []rqChatMessage would.
func scanMessages(raw []byte) ([]rqChatMessage, bool) {
	msgs := make([]rqChatMessage, 0, 16)
	ok := forEachElement(raw, func(v []byte) bool {
		var m rqChatMessage
		it := newTrustedIter(v)
		for {
			k, val, more := it.next()
			if !more {
				break
			}
			var good bool
			switch string(k) {
			case "role":
				good = scanString(val, &m.Role)
			case "content":
				m.Content, good = val, true
			case "name":
				good = scanString(val, &m.Name)
			case "tool_calls":
				good = scanToolCalls(val, &m.ToolCalls)
			case "tool_call_id":
				good = scanString(val, &m.ToolCallID)
			case "function_call":
				m.FunctionCall, good = val, true
			case "refusal":
				good = scanString(val, &m.Refusal)
			default:
				good = !unknownKey(k, messageFields...)
			}
			if !good {
				return false
			}
		}
		if it.failed() {
			return false
		}
		msgs = append(msgs, m)
		return true
	})
	return msgs, ok
}

var (
	toolCallFields = []string{"id", "type", "function", "custom"}
	functionFields = []string{"name", "arguments"}
	customFields   = []string{"name", "input"}
)

// scanToolCalls decodes tool_calls; null leaves them unset.
func scanToolCalls(raw []byte, dst *[]rqChatToolCall) bool {
	if raw[0] == 'n' {
		*dst = nil
		return true
	}
	calls := []rqChatToolCall{}
	ok := forEachElement(raw, func(v []byte) bool {
		var tc rqChatToolCall
		it := newTrustedIter(v)
		for {
			k, val, more := it.next()
			if !more {
				break
			}
			var good bool
			switch string(k) {
			case "id":
				good = scanString(val, &tc.ID)
			case "type":
				good = scanString(val, &tc.Type)
			case "function":
				good = scanMembers(val, functionFields, func(k, v []byte) bool {
					if string(k) == "name" {
						return scanString(v, &tc.Function.Name)
					}
					tc.Function.Arguments = v
					return true
				})
			case "custom":
				good = scanMembers(val, customFields, func(k, v []byte) bool {
					if string(k) == "name" {
						return scanString(v, &tc.Custom.Name)
					}
					return scanString(v, &tc.Custom.Input)
				})
			default:
				good = !unknownKey(k, toolCallFields...)
			}
			if !good {
				return false
			}
		}
		if it.failed() {
			return false
		}
		calls = append(calls, tc)
		return true
	})
	if ok {
		*dst = calls
	}
	return ok
}

// scanMembers calls fn for the members of the object raw whose key is one
// of fields; null is an empty object, as for a struct field.
func scanMembers(raw []byte, fields []string, fn func(k, v []byte) bool) bool {
	if raw[0] == 'n' {
		return string(raw) == "null"
	}
	it := newTrustedIter(raw)
	for {
		k, v, more := it.next()
		if !more {
			return !it.failed()
		}
		known := false
		for _, f := range fields {
			if string(k) == f {
				known = true
				break
			}
		}
		if known {
			if !fn(k, v) {
				return false
			}
		} else if unknownKey(k, fields...) {
			return false
		}
	}
}

var partFields = []string{"type", "text", "refusal", "image_url", "detail", "file", "file_data", "file_id", "filename"}

// scanParts decodes an array of content parts as json.Unmarshal into
// []rqChatPart would.
func scanParts(raw []byte) ([]rqChatPart, bool) {
	parts := []rqChatPart{}
	ok := forEachElement(raw, func(v []byte) bool {
		var p rqChatPart
		it := newTrustedIter(v)
		for {
			k, val, more := it.next()
			if !more {
				break
			}
			var good bool
			switch string(k) {
			case "type":
				good = scanString(val, &p.Type)
			case "text":
				good = scanStringPtr(val, &p.Text)
			case "refusal":
				good = scanStringPtr(val, &p.Refusal)
			case "image_url":
				p.ImageURL, good = val, true
			case "detail":
				good = scanString(val, &p.Detail)
			case "file_data":
				good = scanString(val, &p.FileData)
			case "file_id":
				good = scanString(val, &p.FileID)
			case "filename":
				good = scanString(val, &p.Filename)
			case "file":
				good = false // a nested object, and rare: encoding/json decodes it
			default:
				good = !unknownKey(k, partFields...)
			}
			if !good {
				return false
			}
		}
		if it.failed() {
			return false
		}
		parts = append(parts, p)
		return true
	})
	return parts, ok
}

var (
	chatToolFields = []string{"type", "function", "custom", "name", "description", "parameters", "strict"}
	funcDefFields  = []string{"name", "description", "parameters", "strict"}
)

// scanChatTool decodes one chat tool as json.Unmarshal into rqChatTool
// would. Custom tools (a nested object of another shape) are left to
// encoding/json.
func scanChatTool(raw []byte, ct *rqChatTool) bool {
	it := newTrustedIter(raw)
	for {
		k, v, more := it.next()
		if !more {
			return !it.failed()
		}
		var good bool
		switch string(k) {
		case "type":
			good = scanString(v, &ct.Type)
		case "function":
			if v[0] == 'n' {
				ct.Function, good = nil, string(v) == "null"
				break
			}
			fd := &rqFuncDef{}
			if ct.Function != nil {
				fd = ct.Function
			}
			good = v[0] == '{' && scanMembers(v, funcDefFields, func(k, v []byte) bool { return scanFuncDefField(fd, k, v) })
			ct.Function = fd
		case "name", "description", "parameters", "strict":
			good = scanFuncDefField(&ct.rqFuncDef, k, v)
		case "custom":
			good = false
		default:
			good = !unknownKey(k, chatToolFields...)
		}
		if !good {
			return false
		}
	}
}

// scanFuncDefField stores one member of a function declaration.
func scanFuncDefField(fd *rqFuncDef, k, v []byte) bool {
	switch string(k) {
	case "name":
		return scanString(v, &fd.Name)
	case "description":
		return scanString(v, &fd.Description)
	case "parameters":
		fd.Parameters = v
	case "strict":
		fd.Strict = v
	}
	return true
}
