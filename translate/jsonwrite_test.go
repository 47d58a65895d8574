package translate

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzAppendJSONStr: strings are escaped byte for byte as encoding/json
// escapes them without HTML escaping.
func FuzzAppendJSONStr(f *testing.F) {
	for _, s := range []string{"", "plain", "<b>&</b>", "a\"b\\c\n\r\t\b\f\x00\x1f\x7f", "é✓\u2028\u2029", "\xff\xfe bad", "\U0001F600"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := marshalCompact(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONStr(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("%q: got %s, want %s", s, got, want)
		}
	})
}

// FuzzUnquoteJSON: string tokens decode as encoding/json decodes them, and
// what encoding/json rejects is rejected.
func FuzzUnquoteJSON(f *testing.F) {
	for _, s := range []string{`""`, `"plain"`, `"a\"b\\c\/\n\r\t\b\f"`, `"\u00e9\u2028"`, `"\ud83d\ude00"`, `"\ud83d"`, `"\ud83dx"`, `"\ude00\ud83d\ude00"`,
		`"\ud83d\u0041"`, "\"\xff\"", `"\q"`, `"unterminated`, "\"tab\there\"", `"\u12"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var want string
		werr := json.Unmarshal(raw, &want)
		if werr == nil && (len(raw) == 0 || raw[0] != '"' || raw[len(raw)-1] != '"') {
			return // surrounding whitespace: not a bare token
		}
		got, ok := unquoteJSON(raw)
		if ok != (werr == nil) || got != want {
			t.Fatalf("%q: got %q %v, want %q %v", raw, got, ok, want, werr)
		}
	})
}

// FuzzAppendCompactJSON: raw values are compacted as encoding/json writes
// a json.RawMessage, and invalid ones are rejected.
func FuzzAppendCompactJSON(f *testing.F) {
	for _, s := range []string{`{}`, ` { "a" : [ 1 , 2.5e3 , "x y" ] , "b" : null } `, `"s p"`, `[true,false]`, `1 2`, `{"a":}`, "\"\xff\"", `{"<":"&"}`, "\"\u2028\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		want, werr := marshalCompact(json.RawMessage(raw))
		got, err := appendCompactJSON([]byte("prefix"), raw)
		if (err == nil) != (werr == nil) {
			t.Fatalf("%q: err %v, want %v", raw, err, werr)
		}
		if err == nil && string(got) != "prefix"+string(want) {
			t.Fatalf("%q: got %s, want %s", raw, got, want)
		}
	})
}
