package translate

import (
	"bytes"
	"encoding/json"
	"errors"
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
// raw must be valid JSON (a value of a request body decodeObject accepted):
// it is walked with the trusted scanner, values kept as they came, aliasing
// raw. A value that is not an object is errNotObject.
func parseRawObject(raw json.RawMessage) (rawObject, error) {
	return parseRawObjectInto(make(rawObject, 0, 8), raw)
}

// parseRawObjectInto is parseRawObject appending the members to o, a
// scratch slice the caller reuses.
func parseRawObjectInto(o rawObject, raw json.RawMessage) (rawObject, error) {
	it := newTrustedIter(raw)
	for {
		k, v, ok := it.next()
		if !ok {
			break
		}
		key, kok := rawKey(k)
		if !kok {
			return parseRawObjectJSON(raw)
		}
		o.set(key, v)
	}
	if it.failed() {
		if r := bytes.TrimSpace(raw); len(r) == 0 || r[0] != '{' {
			return nil, errNotObject
		}
		return parseRawObjectJSON(raw) // words what is wrong
	}
	return o, nil
}

// rawKey is the decoded key of an objectIter member (the raw inside of its
// string token). The keys items carry are interned, so splitting an input
// item allocates nothing for them; a key with escapes or non-ASCII bytes is
// decoded as encoding/json decodes it.
func rawKey(k []byte) (string, bool) {
	switch string(k) {
	case "type":
		return "type", true
	case "role":
		return "role", true
	case "content":
		return "content", true
	case "id":
		return "id", true
	case "call_id":
		return "call_id", true
	case "name":
		return "name", true
	case "arguments":
		return "arguments", true
	case "output":
		return "output", true
	case "status":
		return "status", true
	case "text":
		return "text", true
	case "summary":
		return "summary", true
	case "encrypted_content":
		return "encrypted_content", true
	case "description":
		return "description", true
	case "parameters":
		return "parameters", true
	case "strict":
		return "strict", true
	}
	if plainPrefix(k) == len(k) {
		return string(k), true
	}
	tok := make([]byte, 0, len(k)+2)
	tok = append(append(append(tok, '"'), k...), '"')
	return unquoteJSON(tok)
}

// parseRawObjectJSON is parseRawObject by encoding/json's tokenizer, for
// what the scanner does not read (it words the error).
func parseRawObjectJSON(raw json.RawMessage) (rawObject, error) {
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

// appendJSON appends o as compact JSON. Its values must be valid JSON, as
// parseRawObject and the package's writers leave them.
func (o rawObject) appendJSON(dst []byte) []byte {
	dst = append(dst, '{')
	for i, f := range o {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONStr(dst, f.key)
		dst = append(dst, ':')
		dst = appendCompactValid(dst, f.val)
	}
	return append(dst, '}')
}

// marshal returns o as compact JSON.
func (o rawObject) marshal() json.RawMessage {
	n := 2
	for _, f := range o {
		n += len(f.key) + len(f.val) + 4
	}
	return o.appendJSON(make([]byte, 0, n))
}

// quoteJSON returns s as a JSON string literal, escaped as encoding/json
// does without HTML escaping.
func quoteJSON(s string) json.RawMessage {
	return appendJSONStr(make([]byte, 0, len(s)+2), s)
}
