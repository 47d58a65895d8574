package translate

import "encoding/json"

// doneItemType is the type json.Unmarshal of item into an outItem gives,
// "" when that fails: without decoding the item's text. item must be
// valid JSON (an event value the scanner read). Keys are matched exactly;
// an item with a key that only encoding/json would match (another case,
// escapes), or a value of a kind the scanner does not check here, is
// decoded by encoding/json after all.
func doneItemType(item []byte) string {
	typ, ok := scanItemType(item)
	if ok {
		return typ
	}
	var it outItem
	if json.Unmarshal(item, &it) != nil {
		return ""
	}
	return it.Type
}

var (
	outItemFields = []string{"type", "id", "role", "status", "call_id", "name", "arguments", "input", "content", "summary"}
	outPartFields = []string{"type", "text", "refusal"}
)

// scanItemType is doneItemType's scanner path; ok is false when it cannot
// tell.
func scanItemType(item []byte) (typ string, ok bool) {
	if len(item) == 0 || item[0] != '{' {
		return "", false
	}
	it := newTrustedIter(item)
	for {
		k, v, more := it.next()
		if !more {
			return typ, !it.failed()
		}
		switch string(k) {
		case "type":
			if v[0] == 'n' {
				continue // null leaves it as it was
			}
			s, good := unquoteScanned(v)
			if !good {
				return "", false
			}
			typ = s
		case "id", "role", "status", "call_id", "name", "arguments", "input":
			if v[0] != '"' && v[0] != 'n' {
				return "", false
			}
		case "content", "summary":
			if v[0] != 'n' && !partsDecode(v) {
				return "", false
			}
		default:
			if unknownKey(k, outItemFields...) {
				return "", false
			}
		}
	}
}

// partsDecode reports whether raw is an array whose elements decode into
// outItem's content (or summary) parts: objects or null, their type, text
// and refusal strings or null.
func partsDecode(raw []byte) bool {
	return raw[0] == '[' && forEachElement(raw, func(v []byte) bool {
		if v[0] == 'n' {
			return true
		}
		if v[0] != '{' {
			return false
		}
		it := newTrustedIter(v)
		for {
			k, val, more := it.next()
			if !more {
				return !it.failed()
			}
			switch string(k) {
			case "type", "text", "refusal":
				if val[0] != '"' && val[0] != 'n' {
					return false
				}
			default:
				if unknownKey(k, outPartFields...) {
					return false
				}
			}
		}
	})
}
