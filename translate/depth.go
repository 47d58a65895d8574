package translate

import (
	"bytes"
)

// MaxRequestDepth is the deepest nesting of arrays and objects a request
// body may have. The backend echoes parts of the request (tools with their
// parameter schemas, text.format) inside the response object of its events,
// one or two levels deeper than they were sent, and the stream scanner
// refuses events nested deeper than it can walk (maxDepth). A request is
// therefore refused at the door when its echo could not be read back:
// accepting it would turn a finished answer into stream_incomplete.
const MaxRequestDepth = maxEventDepth - echoDepthMargin

// echoDepthMargin is how much deeper than the request the echo of any of
// its parts may sit in an event: the event object and its "response"
// member wrap the echoed fields (2 levels); the rest is headroom.
const echoDepthMargin = 16

// maxEventDepth is the deepest nesting, counted like jsonDepth, of an event
// the stream scanner reads: skipValue starts at depth 0 for the members of
// the event object (nesting 2 for an object member) and fails on any value,
// scalars included, beyond maxDepth.
const maxEventDepth = maxDepth + 1

// codeTooDeep is the error code of a request nested beyond MaxRequestDepth.
const codeTooDeep = "nesting_too_deep"

// jsonDepth returns the deepest nesting of arrays and objects in b, which
// must be valid JSON: {} is 1, {"a":[]} is 2. It stops counting once limit
// is exceeded and returns limit+1. Strings are skipped with IndexByte, so
// large base64 payloads cost little.
func jsonDepth(b []byte, limit int) int {
	depth, deepest := 0, 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '{', '[':
			depth++
			if depth > deepest {
				deepest = depth
				if deepest > limit {
					return limit + 1
				}
			}
		case '}', ']':
			depth--
		case '"':
			// Find the closing quote: one preceded by an even number of
			// backslashes.
			for {
				j := bytes.IndexByte(b[i+1:], '"')
				if j < 0 {
					return deepest
				}
				i += j + 1
				k := i - 1
				for k >= 0 && b[k] == '\\' {
					k--
				}
				if (i-1-k)%2 == 0 {
					break
				}
			}
		}
	}
	return deepest
}

// checkDepth refuses a body nested deeper than MaxRequestDepth.
func checkDepth(body []byte) *Error {
	if jsonDepth(body, MaxRequestDepth) > MaxRequestDepth {
		return InvalidRequest("", codeTooDeep,
			"request body is nested too deeply: arrays and objects may be nested at most %d levels (a tool's parameters schema counts from the top of the body)", MaxRequestDepth)
	}
	return nil
}
