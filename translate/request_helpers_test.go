package translate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// rqCase is one request-translation table test.
type rqCase struct {
	name string
	body string
	opts RequestOptions

	// On success:
	want    map[string]string // path → expected JSON value
	absent  []string          // paths that must not exist
	dropped []string          // exact Mapped.Dropped (nil = expect none)
	check   func(t *testing.T, m *Mapped)

	// On failure (any of these set means an error is expected):
	errParam    string
	errContains string
	errCode     string
	wantErr     bool
}

// expectsError reports whether the case expects a 400.
func (c rqCase) expectsError() bool {
	return c.wantErr || c.errParam != "" || c.errContains != "" || c.errCode != ""
}

// rqTranslator is ChatToResponses or NormalizeResponses.
type rqTranslator func([]byte, RequestOptions) (*Mapped, error)

// runRequestCases runs a table against fn.
func runRequestCases(t *testing.T, fn rqTranslator, cases []rqCase) {
	t.Helper()
	seen := map[string]bool{}
	for _, c := range cases {
		if seen[c.name] {
			t.Fatalf("duplicate case name %q", c.name)
		}
		seen[c.name] = true
		t.Run(c.name, func(t *testing.T) { runRequestCase(t, fn, c) })
	}
}

// runRequestCase checks one case.
func runRequestCase(t *testing.T, fn rqTranslator, c rqCase) {
	t.Helper()
	m, err := fn([]byte(c.body), c.opts)
	if c.expectsError() {
		if err == nil {
			t.Fatalf("expected an error, got body %s", m.Body)
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("error is %T, want *Error", err)
		}
		if e.Status != 400 {
			t.Fatalf("status %d, want 400", e.Status)
		}
		if e.Param != c.errParam {
			t.Errorf("param = %q, want %q (message: %s)", e.Param, c.errParam, e.Message)
		}
		if c.errContains != "" && !strings.Contains(e.Message, c.errContains) {
			t.Errorf("message %q does not contain %q", e.Message, c.errContains)
		}
		if c.errCode != "" && e.Code != c.errCode {
			t.Errorf("code = %q, want %q", e.Code, c.errCode)
		}
		if !json.Valid(e.JSON()) {
			t.Errorf("invalid error JSON %s", e.JSON())
		}
		return
	}
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	if err := checkUpstreamBody(m.Body); err != nil {
		t.Fatalf("%v\nbody: %s", err, m.Body)
	}
	doc := rqDecode(t, m.Body)
	for path, want := range c.want {
		got, ok := rqGet(doc, path)
		if !ok {
			t.Errorf("%s: missing\nbody: %s", path, m.Body)
			continue
		}
		var w any
		if err := json.Unmarshal([]byte(want), &w); err != nil {
			t.Fatalf("bad expectation for %s: %v", path, err)
		}
		if !reflect.DeepEqual(got, w) {
			t.Errorf("%s = %s, want %s", path, rqCompact(got), want)
		}
	}
	for _, path := range c.absent {
		if v, ok := rqGet(doc, path); ok {
			t.Errorf("%s present (%s), want absent", path, rqCompact(v))
		}
	}
	if !slices.Equal(m.Dropped, c.dropped) {
		t.Errorf("Dropped = %q, want %q", m.Dropped, c.dropped)
	}
	for _, d := range m.Dropped {
		if d == "store" {
			continue // replaced by store:false, not removed
		}
		if _, ok := rqGet(doc, d); ok && !strings.Contains(d, ".") {
			t.Errorf("dropped parameter %q is still in the body", d)
		}
	}
	if c.check != nil {
		c.check(t, m)
	}
}

// checkUpstreamBody verifies the invariants every upstream body must hold
// (docs/protocol.md#store-stream, docs/protocol.md#instructions, docs/protocol.md#input).
func checkUpstreamBody(body []byte) error {
	if !json.Valid(body) {
		return errors.New("body is not valid JSON")
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, body); err != nil || !bytes.Equal(compact.Bytes(), body) {
		return errors.New("body is not compact JSON")
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return fmt.Errorf("body is not an object: %v", err)
	}
	if string(top["store"]) != "false" {
		return fmt.Errorf("store = %s, want false", top["store"])
	}
	if string(top["stream"]) != "true" {
		return fmt.Errorf("stream = %s, want true", top["stream"])
	}
	if r := top["instructions"]; len(r) == 0 || r[0] != '"' {
		return fmt.Errorf("instructions = %s, want a string", r)
	}
	if r := top["input"]; len(r) == 0 || r[0] != '[' {
		return fmt.Errorf("input = %s, want an array", r)
	}
	if r := top["model"]; len(r) == 0 || r[0] != '"' {
		return fmt.Errorf("model = %s, want a string", r)
	}
	return checkInputItems(top["input"])
}

// checkInputItems verifies the input list: no item ids, no item references,
// no system role, and every tool call paired with exactly one later output
// and vice versa (docs/protocol.md#tool-pairing).
func checkInputItems(raw json.RawMessage) error {
	var items []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return fmt.Errorf("input items: %v", err)
	}
	calls := map[string]int{} // call id → index
	answered := map[string]bool{}
	for i, it := range items {
		if _, ok := it["id"]; ok {
			return fmt.Errorf("input[%d] has an id", i)
		}
		var typ, role, callID string
		_ = json.Unmarshal(it["type"], &typ)
		_ = json.Unmarshal(it["role"], &role)
		_ = json.Unmarshal(it["call_id"], &callID)
		if typ == "item_reference" || (role == "system" && (typ == "message" || typ == "")) {
			return fmt.Errorf("input[%d] is %s/%s", i, typ, role)
		}
		switch typ {
		case "function_call", "custom_tool_call", "local_shell_call":
			if callID == "" && typ == "local_shell_call" {
				continue
			}
			if _, dup := calls[callID]; dup {
				return fmt.Errorf("input[%d]: duplicate call id %q", i, callID)
			}
			calls[callID] = i
		case "function_call_output", "custom_tool_call_output":
			if _, ok := calls[callID]; !ok {
				return fmt.Errorf("input[%d]: output for %q without an earlier call", i, callID)
			}
			if answered[callID] {
				return fmt.Errorf("input[%d]: second output for %q", i, callID)
			}
			answered[callID] = true
		}
	}
	for id := range calls {
		if !answered[id] {
			return fmt.Errorf("call %q has no output", id)
		}
	}
	return nil
}

// rqDecode parses a body for path lookups.
func rqDecode(t testing.TB, body []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return v
}

// rqGet follows a dotted path ("input.0.content.1.text") through decoded
// JSON.
func rqGet(v any, path string) (any, bool) {
	for _, seg := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[seg]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// rqCompact renders a decoded value for messages.
func rqCompact(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// rqErr runs fn and returns the *Error it must fail with.
func rqErr(t *testing.T, fn rqTranslator, body string, opts RequestOptions) *Error {
	t.Helper()
	m, err := fn([]byte(body), opts)
	if err == nil {
		t.Fatalf("expected an error, got %s", m.Body)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %T is not *Error", err)
	}
	return e
}

// rqMust runs fn and fails the test on error.
func rqMust(t testing.TB, fn rqTranslator, body string, opts RequestOptions) *Mapped {
	t.Helper()
	m, err := fn([]byte(body), opts)
	if err != nil {
		t.Fatalf("unexpected error: %v\nbody: %s", err, body)
	}
	return m
}
