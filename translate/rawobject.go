package translate

import (
	"bytes"
	"encoding/json"
	"errors"
	"unicode/utf8"
)

// rawField is one member of a JSON object whose value is kept verbatim.
type rawField struct {
	key string
	val json.RawMessage
}

// rawObject is a JSON object that keeps its member order, so that items
// passed through to the upstream change only where we change them.
type rawObject []rawField

// errNotObject reports a JSON value that is not an object.
var errNotObject = errors.New("not a JSON object")

// parseRawObject splits a JSON object into its members. A repeated key keeps
// its first position and its last value, as encoding/json would read it.
func parseRawObject(raw json.RawMessage) (rawObject, error) {
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

// get returns the value of key.
func (o rawObject) get(key string) (json.RawMessage, bool) {
	for _, f := range o {
		if f.key == key {
			return f.val, true
		}
	}
	return nil, false
}

// set replaces the value of key in place, or appends it.
func (o *rawObject) set(key string, val json.RawMessage) {
	for i := range *o {
		if (*o)[i].key == key {
			(*o)[i].val = val
			return
		}
	}
	*o = append(*o, rawField{key, val})
}

// del removes key and reports whether it was present.
func (o *rawObject) del(key string) bool {
	for i := range *o {
		if (*o)[i].key == key {
			*o = append((*o)[:i], (*o)[i+1:]...)
			return true
		}
	}
	return false
}

// appendJSON appends o as compact JSON.
func (o rawObject) appendJSON(dst *bytes.Buffer) error {
	dst.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			dst.WriteByte(',')
		}
		appendJSONString(dst, f.key)
		dst.WriteByte(':')
		if err := json.Compact(dst, f.val); err != nil {
			return err
		}
	}
	dst.WriteByte('}')
	return nil
}

// marshal returns o as compact JSON.
func (o rawObject) marshal() (json.RawMessage, error) {
	var b bytes.Buffer
	if err := o.appendJSON(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// appendJSONString appends s as a JSON string literal like encoding/json
// does (invalid UTF-8 becomes U+FFFD, U+2028/U+2029 are escaped) but without
// HTML escaping.
func appendJSONString(dst *bytes.Buffer, s string) {
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

// quoteJSON returns s as a JSON string literal.
func quoteJSON(s string) json.RawMessage {
	var b bytes.Buffer
	b.Grow(len(s) + 2)
	appendJSONString(&b, s)
	return b.Bytes()
}
