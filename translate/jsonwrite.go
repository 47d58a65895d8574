package translate

import (
	"bytes"
	"encoding/json"
	"unicode/utf16"
	"unicode/utf8"
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
	i := 0
	for i < len(s) && plainStringByte[s[i]] {
		i++
	}
	if i == len(s) {
		return string(s), true
	}
	if bytes.IndexByte(s[i:], '\\') < 0 && isJSONString(raw) {
		return string(s), true // non-ASCII, no escapes
	}
	if !isJSONString(raw) {
		// Invalid UTF-8 inside is still a string to encoding/json.
		var out string
		if json.Unmarshal(raw, &out) != nil {
			return "", false
		}
		return out, true
	}
	b := make([]byte, 0, len(s)+utf8.UTFMax)
	b = append(b, s[:i]...)
	for i < len(s) {
		c := s[i]
		if c != '\\' {
			j := i + 1
			for j < len(s) && s[j] != '\\' {
				j++
			}
			b = append(b, s[i:j]...)
			i = j
			continue
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
	return string(b), true
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
