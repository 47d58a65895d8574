package translate

import "encoding/json"

// jsonUnmarshalString decodes a raw JSON string with the standard decoder,
// for the escapes strconv.Unquote does not know.
func jsonUnmarshalString(raw []byte, out *string) bool {
	return json.Unmarshal(raw, out) == nil
}

// appendQuoted appends s as a JSON string.
func appendQuoted(dst []byte, s string) []byte {
	b, _ := json.Marshal(s)
	return append(dst, b...)
}
