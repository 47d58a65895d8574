package translate

import (
	"encoding/json"
)

// Body is a request body split once, by the package's scanner, into its
// top-level members. The stages before translation that read a member or
// two (the /v1/responses chain: store, previous_response_id, input) read
// them here, and NormalizeResponsesBody translates it without parsing the
// body again. The zero value is not usable: make one with SplitBody.
type Body struct {
	raw []byte
	top map[string]json.RawMessage
	err *Error // why raw is not a JSON object a translator takes
}

// SplitBody splits raw, which it keeps (the caller must not change it).
// A body that is not a JSON object, or is nested too deeply, is kept with
// the error NormalizeResponsesBody will answer; its members are then
// absent.
func SplitBody(raw []byte) *Body {
	top, err := decodeObject(raw)
	return &Body{raw: raw, top: top, err: err}
}

// Raw is the body as it came.
func (b *Body) Raw() []byte { return b.raw }

// OK reports whether the body is a JSON object the translators take.
func (b *Body) OK() bool { return b.err == nil }

// Member is the raw value of a top-level member, nil when it is absent
// (or the body is not OK). It aliases the body.
func (b *Body) Member(name string) json.RawMessage { return b.top[name] }

// NormalizeResponsesBody is NormalizeResponses on a body already split.
func NormalizeResponsesBody(b *Body, opts RequestOptions) (*Mapped, error) {
	if b.err != nil {
		return nil, b.err
	}
	m, err := normalizeResponses(b.top, opts)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// SplitItems returns the elements of raw, a member of an OK Body, when it
// is a non-empty JSON array of objects; ok is false otherwise. The
// elements alias raw.
func SplitItems(raw json.RawMessage) (items []json.RawMessage, ok bool) {
	items = make([]json.RawMessage, 0, 16)
	if !forEachElement(raw, func(v []byte) bool {
		if v[0] != '{' {
			return false
		}
		items = append(items, v)
		return true
	}) || len(items) == 0 {
		return nil, false
	}
	return items, true
}

// ItemTypeID reads an input or output item's type ("message" when it has
// only a role) and id, as decoding it with encoding/json into
// {Type, ID string; Role json.RawMessage} would: keys match exactly on the
// scanner's path, and an item that spells one in another case, escapes
// it or gives it another type of value goes through encoding/json, which
// matches keys case-insensitively. item must be valid JSON (a value of an
// OK Body, or a stored item).
func ItemTypeID(item []byte) (typ, id string) {
	var role bool
	it := newTrustedIter(item)
	for {
		k, v, more := it.next()
		if !more {
			break
		}
		var good bool
		switch string(k) {
		case "type":
			typ, good = unquoteScanned(v)
		case "id":
			id, good = unquoteScanned(v)
		case "role":
			role, good = true, v[0] != 'n'
		default:
			good = !unknownKey(k, "type", "id", "role")
		}
		if !good {
			return itemTypeIDJSON(item)
		}
	}
	if it.failed() {
		return itemTypeIDJSON(item)
	}
	if typ == "" && role {
		typ = "message"
	}
	return typ, id
}

// itemTypeIDJSON is ItemTypeID by encoding/json.
func itemTypeIDJSON(item []byte) (typ, id string) {
	var f struct {
		Type string          `json:"type"`
		ID   string          `json:"id"`
		Role json.RawMessage `json:"role"`
	}
	_ = json.Unmarshal(item, &f)
	if f.Type == "" && len(f.Role) > 0 {
		f.Type = "message"
	}
	return f.Type, f.ID
}
