package translate

import (
	"bytes"
	"encoding/json"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// This file builds upstream request bodies by appending to a byte slice
// instead of going through encoding/json's reflection. Every function here
// produces exactly the bytes encoding/json would with SetEscapeHTML(false)
// (the golden files hold them to it), so the switch changed no body.

// appendJSONStr appends s as a JSON string literal, escaped as encoding/json
// does without HTML escaping: invalid UTF-8 becomes \ufffd and U+2028/U+2029
// are escaped.
func appendJSONStr(dst []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if plainStringByte[c] {
				i++
				i += plainPrefix(unsafe.Slice(unsafe.StringData(s[i:]), len(s)-i))
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendCompactJSON appends the JSON value raw without insignificant
// whitespace, as encoding/json writes a json.RawMessage. Values this
// package's scanner cannot walk go through json.Compact, which reports them.
func appendCompactJSON(dst, raw []byte) ([]byte, error) {
	v := skipSpace(raw, 0)
	if end, ok := skipValue(raw, v, 0); !ok || skipSpace(raw, end) != len(raw) {
		return compactSlow(dst, raw)
	}
	i := v
	for i < len(raw) {
		switch c := raw[i]; c {
		case ' ', '\t', '\n', '\r':
			i++
		case '"':
			end, _ := skipString(raw, i)
			dst = append(dst, raw[i:end]...)
			i = end
		default:
			j := i + 1
			for j < len(raw) && raw[j] != '"' && raw[j] != ' ' && raw[j] != '\n' && raw[j] != '\t' && raw[j] != '\r' {
				j++
			}
			dst = append(dst, raw[i:j]...)
			i = j
		}
	}
	return dst, nil
}

// appendCompactValid appends raw, which must be valid JSON (a value of a
// body the scanner or encoding/json accepted, or one this package wrote),
// without the whitespace between its tokens, as json.Compact would. Strings
// are skipped with skipStringTrusted and everything else is copied in runs,
// so a compact value costs one IndexByte pass per string.
func appendCompactValid(dst, raw []byte) []byte {
	start := 0
	for i := 0; i < len(raw); {
		switch raw[i] {
		case '"':
			i = skipStringTrusted(raw, i)
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

// compactSlow is json.Compact appending to dst.
func compactSlow(dst, raw []byte) ([]byte, error) {
	b := bytes.NewBuffer(dst)
	err := json.Compact(b, raw)
	return b.Bytes(), err
}

// unquoteJSON decodes a JSON string token as encoding/json does: escapes,
// UTF-16 surrogate pairs (a lone surrogate becomes U+FFFD) and invalid
// UTF-8 (U+FFFD). ok is false when raw is not a valid string token.
func unquoteJSON(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	s := raw[1 : len(raw)-1]
	i := plainPrefix(s)
	if i == len(s) {
		return string(s), true
	}
	if !isJSONString(raw) {
		// Invalid UTF-8 inside is still a string to encoding/json.
		var out string
		if json.Unmarshal(raw, &out) != nil {
			return "", false
		}
		return out, true
	}
	return unquoteValid(s, i), true
}

// unquoteScanned is unquoteJSON for a string token from valid JSON (an
// objectIter value): its escapes are not checked again. It refuses what is
// not a string token, and strings holding invalid UTF-8, which
// encoding/json would repair: callers then fall back to it.
func unquoteScanned(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	s := raw[1 : len(raw)-1]
	i := plainPrefix(s)
	if i == len(s) {
		return string(s), true
	}
	if !utf8.Valid(s[i:]) {
		return "", false
	}
	return unquoteValid(s, i), true
}

// unquoteValid decodes the inside s of a valid string token whose first i
// bytes are plain.
func unquoteValid(s []byte, i int) string {
	if bytes.IndexByte(s[i:], '\\') < 0 {
		return string(s) // non-ASCII, no escapes
	}
	b := appendUnescaped(make([]byte, 0, len(s)+utf8.UTFMax), s)
	return unsafe.String(unsafe.SliceData(b), len(b)) // b is not used again
}

// appendUnescaped appends the decoded inside s of a valid JSON string
// token to b, as encoding/json decodes it.
func appendUnescaped(b, s []byte) []byte {
	i := 0
	for i < len(s) {
		c := s[i]
		if c != '\\' {
			j := bytes.IndexByte(s[i:], '\\')
			if j < 0 {
				j = len(s) - i
			}
			b = append(b, s[i:i+j]...)
			i += j
			continue
		}
		if i+1 == len(s) || (s[i+1] == 'u' && i+6 > len(s)) {
			break // cut short: only invalid input gets here
		}
		switch e := s[i+1]; e {
		case '"', '\\', '/':
			b = append(b, e)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r := hex4(s[i+2 : i+6])
			i += 6
			if utf16.IsSurrogate(r) {
				if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
					if dec := utf16.DecodeRune(r, hex4(s[i+2:i+6])); dec != utf8.RuneError {
						i += 6
						b = utf8.AppendRune(b, dec)
						continue
					}
				}
				r = utf8.RuneError
			}
			b = utf8.AppendRune(b, r)
			continue
		}
		i += 2
	}
	return b
}

// hex4 reads four hex digits already checked by skipString.
func hex4(h []byte) rune {
	var r rune
	for _, c := range h {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		default:
			c = c - 'A' + 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// appendRequestBody appends the upstream body as marshalCompact(b) would.
func appendRequestBody(dst []byte, b *rqBody) ([]byte, error) {
	var err error
	dst = appendStrField(dst, `{"model":`, b.Model)
	dst = appendStrField(dst, `,"instructions":`, b.Instructions)
	dst = append(dst, `,"input":`...)
	if dst, err = appendValue(dst, b.Input); err != nil {
		return nil, err
	}
	if len(b.Tools) > 0 {
		dst = append(dst, `,"tools":[`...)
		for i, t := range b.Tools {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, err = appendCompactJSON(dst, t); err != nil {
				return nil, err
			}
		}
		dst = append(dst, ']')
	}
	if len(b.ToolChoice) > 0 {
		dst = append(dst, `,"tool_choice":`...)
		if dst, err = appendCompactJSON(dst, b.ToolChoice); err != nil {
			return nil, err
		}
	}
	if b.ParallelToolCalls != nil {
		dst = append(dst, `,"parallel_tool_calls":`...)
		dst = strconvAppendBool(dst, *b.ParallelToolCalls)
	}
	if b.Reasoning != nil {
		dst = append(dst, `,"reasoning":{`...)
		sep := false
		if b.Reasoning.Effort != "" {
			dst = appendStrField(dst, `"effort":`, b.Reasoning.Effort)
			sep = true
		}
		if b.Reasoning.Summary != "" {
			if sep {
				dst = append(dst, ',')
			}
			dst = appendStrField(dst, `"summary":`, b.Reasoning.Summary)
		}
		dst = append(dst, '}')
	}
	dst = append(dst, `,"store":`...)
	dst = strconvAppendBool(dst, b.Store)
	dst = append(dst, `,"stream":`...)
	dst = strconvAppendBool(dst, b.Stream)
	dst = append(dst, `,"include":`...)
	if b.Include == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '[')
		for i, s := range b.Include {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONStr(dst, s)
		}
		dst = append(dst, ']')
	}
	if b.PromptCacheKey != "" {
		dst = appendStrField(dst, `,"prompt_cache_key":`, b.PromptCacheKey)
	}
	if b.Text != nil {
		dst = append(dst, `,"text":{`...)
		sep := false
		if len(b.Text.Format) > 0 {
			dst = append(dst, `"format":`...)
			if dst, err = appendCompactJSON(dst, b.Text.Format); err != nil {
				return nil, err
			}
			sep = true
		}
		if b.Text.Verbosity != "" {
			if sep {
				dst = append(dst, ',')
			}
			dst = appendStrField(dst, `"verbosity":`, b.Text.Verbosity)
		}
		dst = append(dst, '}')
	}
	if b.ServiceTier != "" {
		dst = appendStrField(dst, `,"service_tier":`, b.ServiceTier)
	}
	return append(dst, '}'), nil
}

func strconvAppendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, "true"...)
	}
	return append(dst, "false"...)
}

// appendValue appends one input item, content part or output value. The
// types the chat mapping builds are written directly; anything else goes
// through encoding/json.
func appendValue(dst []byte, v any) ([]byte, error) {
	var err error
	switch x := v.(type) {
	case string:
		return appendJSONStr(dst, x), nil
	case []any:
		if x == nil {
			return append(dst, "null"...), nil
		}
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, err = appendValue(dst, e); err != nil {
				return nil, err
			}
		}
		return append(dst, ']'), nil
	case *rqMessageItem:
		dst = appendStrField(dst, `{"type":`, x.Type)
		dst = appendStrField(dst, `,"role":`, x.Role)
		dst = append(dst, `,"content":`...)
		if dst, err = appendValue(dst, x.Content); err != nil {
			return nil, err
		}
		return append(dst, '}'), nil
	case *rqTextPart:
		dst = appendStrField(dst, `{"type":`, x.Type)
		dst = appendStrField(dst, `,"text":`, x.Text)
		return append(dst, '}'), nil
	case *rqImagePart:
		dst = appendStrField(dst, `{"type":`, x.Type)
		dst = appendStrField(dst, `,"image_url":`, x.ImageURL)
		if x.Detail != "" {
			dst = appendStrField(dst, `,"detail":`, x.Detail)
		}
		return append(dst, '}'), nil
	case *rqFilePart:
		dst = appendStrField(dst, `{"type":`, x.Type)
		dst = appendStrField(dst, `,"file_data":`, x.FileData)
		if x.Filename != "" {
			dst = appendStrField(dst, `,"filename":`, x.Filename)
		}
		return append(dst, '}'), nil
	case *rqCallItem:
		dst = appendStrField(dst, `{"type":`, x.Type)
		dst = appendStrField(dst, `,"name":`, x.Name)
		dst = appendStrField(dst, `,"arguments":`, x.Arguments)
		dst = appendStrField(dst, `,"call_id":`, x.CallID)
		return append(dst, '}'), nil
	case *rqCustomCallItem:
		dst = appendStrField(dst, `{"type":`, x.Type)
		dst = appendStrField(dst, `,"call_id":`, x.CallID)
		dst = appendStrField(dst, `,"name":`, x.Name)
		dst = appendStrField(dst, `,"input":`, x.Input)
		return append(dst, '}'), nil
	case *rqOutputItem:
		dst = appendStrField(dst, `{"type":`, x.Type)
		dst = appendStrField(dst, `,"call_id":`, x.CallID)
		dst = append(dst, `,"output":`...)
		if dst, err = appendValue(dst, x.Output); err != nil {
			return nil, err
		}
		return append(dst, '}'), nil
	case json.RawMessage:
		if x == nil {
			return append(dst, "null"...), nil
		}
		return appendCompactJSON(dst, x)
	}
	b, err := marshalCompact(v)
	if err != nil {
		return nil, err
	}
	return append(dst, b...), nil
}

// appendFunctionTool appends a function tool as marshalCompact(t) would.
func appendFunctionTool(dst []byte, t *rqFunctionTool) ([]byte, error) {
	dst = appendStrField(dst, `{"type":`, t.Type)
	dst = appendStrField(dst, `,"name":`, t.Name)
	dst = appendStrField(dst, `,"description":`, t.Description)
	dst = append(dst, `,"parameters":`...)
	var err error
	if t.Parameters == nil {
		dst = append(dst, "null"...)
	} else if dst, err = appendCompactJSON(dst, t.Parameters); err != nil {
		return nil, err
	}
	dst = append(dst, `,"strict":`...)
	dst = strconvAppendBool(dst, t.Strict)
	return append(dst, '}'), nil
}

// appendStrField appends key (a JSON fragment such as `,"name":`) and v as
// a JSON string.
func appendStrField(dst []byte, key, v string) []byte {
	return appendJSONStr(append(dst, key...), v)
}
