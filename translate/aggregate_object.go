package translate

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
)

// appendResponseObject appends what responseObjectJSON returns for
// response and items, byte for byte, with the package's scanner: the
// response object and every item (the upstream's, validated by the event
// scanner, or rebuilt here) are copied with their whitespace dropped and
// <, >, & and U+2028/U+2029 in strings escaped, as encoding/json writes a
// json.RawMessage. ok is false for a response that is present but not a
// JSON object, or items that are not valid JSON, which the caller leaves
// to responseObjectJSON.
func appendResponseObject(dst, response []byte, items []json.RawMessage) ([]byte, bool) {
	n := 2
	for _, it := range items {
		if !validValue(it) {
			return nil, false
		}
		n += len(it) + 1
	}
	out := make([]byte, 0, n)
	out = append(out, '[')
	for i, it := range items {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, it...)
	}
	return appendSortedObject(dst, response, rawObject{{key: "output", val: append(out, ']')}})
}

// validValue reports whether v is one valid JSON value (spaces around it
// allowed).
func validValue(v []byte) bool {
	end, ok := skipValue(v, skipSpace(v, 0), 0)
	return ok && skipSpace(v, end) == len(v)
}

// WithMembers returns the JSON object obj with the members set (each
// value valid JSON) added or replaced, written as encoding/json writes
// the map[string]json.RawMessage that obj decodes to with them set: keys
// sorted, values compacted, <, > and & escaped. ok is false when obj is
// present but not a JSON object, or a value is not valid JSON; a missing
// obj is an empty one.
func WithMembers(obj []byte, names []string, values []json.RawMessage) ([]byte, bool) {
	set := make(rawObject, 0, len(names))
	for i, k := range names {
		if !validValue(values[i]) {
			return nil, false
		}
		set = append(set, rawField{key: k, val: values[i]})
	}
	return appendSortedObject(nil, obj, set)
}

// appendSortedObject appends obj with the members of set added or
// replaced, keys sorted, as encoding/json writes a map of it.
func appendSortedObject(dst, obj []byte, set rawObject) ([]byte, bool) {
	var members rawObject
	if r := bytes.TrimSpace(obj); len(r) > 0 {
		end, ok := skipValue(r, 0, 0)
		if !ok || end != len(r) || r[0] != '{' {
			return nil, false
		}
		o, err := parseRawObject(r)
		if err != nil {
			return nil, false
		}
		members = o
	}
	for _, f := range set {
		members.set(f.key, f.val)
	}
	slices.SortFunc(members, func(a, b rawField) int { return strings.Compare(a.key, b.key) })
	size := 2
	for _, m := range members {
		size += len(m.key) + len(m.val) + 4
	}
	if dst == nil {
		dst = make([]byte, 0, size+size/64)
	}
	dst = append(dst, '{')
	for i, m := range members {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONStrHTML(dst, m.key)
		dst = append(dst, ':')
		dst = appendCompactHTML(dst, m.val)
	}
	return append(dst, '}'), true
}

// appendJSONStrHTML is appendJSONStr with encoding/json's HTML escaping
// (<, > and & as \u003c, \u003e, \u0026), as it writes a map key.
func appendJSONStrHTML(dst []byte, s string) []byte {
	if !strings.ContainsAny(s, "<>&") {
		return appendJSONStr(dst, s)
	}
	start := len(dst)
	dst = appendJSONStr(dst, s)
	return append(dst[:start], escapeHTMLBytes(nil, dst[start:])...)
}

// appendCompactHTML appends raw, valid JSON, as encoding/json writes a
// json.RawMessage: without the whitespace between tokens, and with <, >, &
// and U+2028/U+2029 in strings escaped. Strings are found with
// skipStringTrusted and searched with IndexByte, so a string with none of
// them is copied as it is.
func appendCompactHTML(dst, raw []byte) []byte {
	start := 0
	for i := 0; i < len(raw); {
		switch raw[i] {
		case '"':
			end := skipStringTrusted(raw, i)
			if s := raw[i:end]; needsHTMLEscape(s) {
				dst = append(dst, raw[start:i]...)
				dst = escapeHTMLBytes(dst, s)
				start = end
			}
			i = end
		case ' ', '\t', '\n', '\r':
			dst = append(dst, raw[start:i]...)
			i = skipSpace(raw, i)
			start = i
		default:
			i++
		}
	}
	return append(dst, raw[start:]...)
}

// needsHTMLEscape reports whether a string token holds a byte
// escapeHTMLBytes changes.
func needsHTMLEscape(s []byte) bool {
	return bytes.IndexByte(s, '<') >= 0 || bytes.IndexByte(s, '>') >= 0 || bytes.IndexByte(s, '&') >= 0 ||
		bytes.IndexByte(s, 0xE2) >= 0
}

// escapeHTMLBytes appends s, a JSON string token, with <, >, & and
// U+2028/U+2029 escaped as encoding/json's compact does.
func escapeHTMLBytes(dst, s []byte) []byte {
	const hex = "0123456789abcdef"
	start := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '<' || c == '>' || c == '&':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			start = i + 1
		case c == 0xE2 && i+2 < len(s) && s[i+1] == 0x80 && s[i+2]&^1 == 0xA8:
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[s[i+2]&0xF])
			start = i + 3
			i += 2
		}
	}
	return append(dst, s[start:]...)
}
