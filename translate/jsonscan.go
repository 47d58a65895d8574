package translate

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"strconv"
	"unicode/utf8"
)

// This file holds a small JSON scanner for the stream hot path. Upstream
// events are read field by field without decoding: a text delta arrives
// already JSON-escaped and is copied into the client chunk as it is, which is
// what keeps translation at a fraction of a microsecond per event.

// objectIter walks the top-level members of one JSON object.
type objectIter struct {
	b       []byte
	i       int
	members int
	err     bool
	done    bool
	trusted bool // b is known to be valid JSON: skip values without checking them
}

// newTrustedIter iterates obj, which must be valid JSON (a value taken from
// a document the scanner or encoding/json has validated): values are
// skipped by looking for their ends only, several times faster. Invalid
// input gives wrong members, never a panic.
func newTrustedIter(obj []byte) objectIter {
	it := newObjectIter(obj)
	it.trusted = true
	return it
}

// newObjectIter starts iterating obj; it reports failure through next when
// obj is not an object.
func newObjectIter(obj []byte) objectIter {
	it := objectIter{b: obj}
	it.i = skipSpace(obj, 0)
	if it.i >= len(obj) || obj[it.i] != '{' {
		it.err = true
		return it
	}
	it.i++
	return it
}

// next returns the raw key (without quotes, escapes left as they are) and the
// raw value of the next member. ok is false at the end of the object or on
// malformed input; failed tells the two apart.
func (it *objectIter) next() (key, val []byte, ok bool) {
	if it.err || it.done {
		return nil, nil, false
	}
	b := it.b
	i := skipSpace(b, it.i)
	if i < len(b) && b[i] == '}' {
		it.done = true
		return nil, nil, false
	}
	if it.members > 0 {
		if i >= len(b) || b[i] != ',' {
			it.err = true
			return nil, nil, false
		}
		i = skipSpace(b, i+1)
	}
	if i >= len(b) || b[i] != '"' {
		it.err = true
		return nil, nil, false
	}
	var end, vend int
	good := true
	if it.trusted {
		end = skipStringTrusted(b, i)
	} else {
		end, good = skipString(b, i)
	}
	if !good || end < i+2 {
		it.err = true
		return nil, nil, false
	}
	key = b[i+1 : end-1]
	i = skipSpace(b, end)
	if i >= len(b) || b[i] != ':' {
		it.err = true
		return nil, nil, false
	}
	i = skipSpace(b, i+1)
	if it.trusted {
		vend = skipTrusted(b, i)
		good = vend > i
	} else {
		vend, good = skipValue(b, i, 0)
	}
	if !good {
		it.err = true
		return nil, nil, false
	}
	it.i = vend
	it.members++
	return key, b[i:vend], true
}

// failed reports whether iteration stopped on malformed input.
func (it *objectIter) failed() bool { return it.err }

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// maxDepth bounds nesting so hostile input cannot exhaust the stack.
const maxDepth = 512

// skipValue returns the index just past the JSON value starting at b[i].
func skipValue(b []byte, i, depth int) (int, bool) {
	if i >= len(b) || depth > maxDepth {
		return i, false
	}
	switch c := b[i]; {
	case c == '"':
		return skipString(b, i)
	case c == '{':
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == '}' {
			return i + 1, true
		}
		for {
			if i >= len(b) || b[i] != '"' {
				return i, false
			}
			end, ok := skipString(b, i)
			if !ok {
				return i, false
			}
			i = skipSpace(b, end)
			if i >= len(b) || b[i] != ':' {
				return i, false
			}
			i = skipSpace(b, i+1)
			if i, ok = skipValue(b, i, depth+1); !ok {
				return i, false
			}
			i = skipSpace(b, i)
			if i >= len(b) {
				return i, false
			}
			if b[i] == '}' {
				return i + 1, true
			}
			if b[i] != ',' {
				return i, false
			}
			i = skipSpace(b, i+1)
		}
	case c == '[':
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == ']' {
			return i + 1, true
		}
		for {
			var ok bool
			if i, ok = skipValue(b, i, depth+1); !ok {
				return i, false
			}
			i = skipSpace(b, i)
			if i >= len(b) {
				return i, false
			}
			if b[i] == ']' {
				return i + 1, true
			}
			if b[i] != ',' {
				return i, false
			}
			i = skipSpace(b, i+1)
		}
	case c == 't':
		return skipLiteral(b, i, "true")
	case c == 'f':
		return skipLiteral(b, i, "false")
	case c == 'n':
		return skipLiteral(b, i, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		return skipNumber(b, i)
	}
	return i, false
}

func skipLiteral(b []byte, i int, lit string) (int, bool) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, false
	}
	return i + len(lit), true
}

// skipNumber accepts the JSON number grammar exactly.
func skipNumber(b []byte, i int) (int, bool) {
	if b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return i, false
	}
	if b[i] == '0' {
		i++
	} else if b[i] >= '1' && b[i] <= '9' {
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	} else {
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == start {
			return i, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == start {
			return i, false
		}
	}
	return i, true
}

// skipString returns the index just past the string starting at b[i] == '"'.
// It validates escapes, rejects control characters and invalid UTF-8, so a
// string it accepts can be copied verbatim into any JSON document.
func skipString(b []byte, i int) (int, bool) {
	i++
	ascii := true
	start := i
	for i < len(b) {
		// Plain characters are the bulk of every string: skip them eight
		// at a time (see plainPrefix) before looking at anything special.
		if i+8 <= len(b) {
			x := binary.LittleEndian.Uint64(b[i:])
			special := ((x - swarOnes*0x20) | (x ^ swarOnes*'"' - swarOnes) | (x ^ swarOnes*'\\' - swarOnes) | x) & swarHighs
			if special == 0 {
				i += 8
				continue
			}
			i += bits.TrailingZeros64(special) >> 3
		} else if plainStringByte[b[i]] {
			i++
			continue
		}
		c := b[i]
		switch {
		case c == '"':
			if !ascii && !utf8.Valid(b[start:i]) {
				return i, false
			}
			return i + 1, true
		case c == '\\':
			if i+1 >= len(b) {
				return i, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex4(b[i+2:i+6]) {
					return i, false
				}
				i += 6
			default:
				return i, false
			}
		case c < 0x20:
			return i, false
		default: // non-ASCII: validated once the string ends
			ascii = false
			i++
		}
	}
	return i, false
}

// plainStringByte marks the bytes a JSON string holds without escaping or
// UTF-8 checks: printable ASCII other than '"' and '\\'.
var plainStringByte = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// skipTrusted returns the index just past the value starting at b[i], for
// valid JSON: it finds the end without checking what it skips. It returns i
// when there is no value there.
func skipTrusted(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return skipStringTrusted(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipStringTrusted(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	case ',', ':', '}', ']', ' ', '\t', '\n', '\r':
		return i
	}
	for i < len(b) {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return i
}

// skipStringTrusted returns the index just past the string starting at
// b[i] == '"' in valid JSON: the first quote not escaped by an odd run of
// backslashes, found with the vectorised bytes.IndexByte.
func skipStringTrusted(b []byte, i int) int {
	j := i + 1
	for j < len(b) {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			break
		}
		j += k
		n := 0
		for p := j - 1; p > i && b[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			return j + 1
		}
		j++
	}
	return len(b)
}

// Constants of the eight-bytes-at-a-time string scans.
const (
	swarOnes  = 0x0101010101010101
	swarHighs = 0x8080808080808080
)

// plainPrefix returns how many leading bytes of b are plain string bytes.
// It tests eight bytes at a time: a word is plain when none of its bytes is
// below 0x20, '"', '\\' or at least 0x80.
func plainPrefix(b []byte) int {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		special := ((x - swarOnes*0x20) | (x ^ swarOnes*'"' - swarOnes) | (x ^ swarOnes*'\\' - swarOnes) | x) & swarHighs
		if special != 0 {
			// Borrows only run upwards from a special byte, so the lowest
			// flagged byte is the first special one.
			return i + bits.TrailingZeros64(special)>>3
		}
	}
	for i < len(b) && plainStringByte[b[i]] {
		i++
	}
	return i
}

func isHex4(h []byte) bool {
	for _, c := range h {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// isJSONString reports whether raw is exactly one valid JSON string token.
func isJSONString(raw []byte) bool {
	if len(raw) < 2 || raw[0] != '"' {
		return false
	}
	end, ok := skipString(raw, 0)
	return ok && end == len(raw)
}

// unquote decodes a raw JSON string token; it allocates, so the hot path only
// uses it for rare fields such as tool names.
func unquote(raw []byte) (string, bool) {
	if !isJSONString(raw) {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	simple := true
	for _, c := range inner {
		if c == '\\' {
			simple = false
			break
		}
	}
	if simple {
		return string(inner), true
	}
	s, err := strconv.Unquote(string(raw))
	if err == nil {
		return s, true
	}
	// strconv does not know \/ and JSON's UTF-16 surrogate pairs; fall back to
	// the standard decoder for those.
	var out string
	if jsonUnmarshalString(raw, &out) {
		return out, true
	}
	return "", false
}

// parseInt reads a raw JSON integer; anything else yields 0.
func parseInt(raw []byte) int64 {
	var n int64
	neg := false
	for i, c := range raw {
		if i == 0 && c == '-' {
			neg = true
			continue
		}
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int64(c-'0')
		if n > 1<<53 {
			return 0
		}
	}
	if neg {
		return -n
	}
	return n
}
