package translate

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

type sseEvent struct{ name, data string }

func readAllEvents(t testing.TB, r io.Reader) ([]sseEvent, error) {
	rd := NewReader(r)
	var out []sseEvent
	for {
		ev, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, sseEvent{string(ev.Name), string(ev.Data)})
	}
}

func TestReaderFraming(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []sseEvent
	}{
		{"lf", "event: a\ndata: 1\n\n", []sseEvent{{"a", "1"}}},
		{"crlf", "event: a\r\ndata: 1\r\n\r\n", []sseEvent{{"a", "1"}}},
		{"cr only", "event: a\rdata: 1\r\r", []sseEvent{{"a", "1"}}},
		{"multi-line data", "data: a\ndata: b\ndata:\n\n", []sseEvent{{"", "a\nb\n"}}},
		{"no space after colon", "data:x\n\n", []sseEvent{{"", "x"}}},
		{"only one space stripped", "data:  x\n\n", []sseEvent{{"", " x"}}},
		{"comments ignored", ": keepalive\n\n: ping\ndata: 1\n\n", []sseEvent{{"", "1"}}},
		{"id and retry ignored", "id: 7\nretry: 10\ndata: 1\n\n", []sseEvent{{"", "1"}}},
		{"field without colon", "data\n\n", []sseEvent{{"", ""}}},
		{"event name reset between events", "event: a\ndata: 1\n\ndata: 2\n\n", []sseEvent{{"a", "1"}, {"", "2"}}},
		{"blank lines without data", "\n\n\nevent: x\n\ndata: 2\n\n", []sseEvent{{"", "2"}}},
		{"truncated event discarded", "data: 1\n\ndata: 2\n", []sseEvent{{"", "1"}}},
		{"truncated line discarded", "data: 1\n\ndata: 2", []sseEvent{{"", "1"}}},
		{"utf8 bom-free unicode", "data: é✓\n\n", []sseEvent{{"", "é✓"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, r := range []io.Reader{strings.NewReader(tt.in), iotest.OneByteReader(strings.NewReader(tt.in))} {
				got, err := readAllEvents(t, r)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(tt.want) {
					t.Fatalf("got %q, want %q", got, tt.want)
				}
				for i := range got {
					if got[i] != tt.want[i] {
						t.Fatalf("event %d = %q, want %q", i, got[i], tt.want[i])
					}
				}
			}
		})
	}
}

func TestReaderLongLinesAndLimit(t *testing.T) {
	long := strings.Repeat("a", 3<<20)
	got, err := readAllEvents(t, strings.NewReader("data: "+long+"\n\n"))
	if err != nil || len(got) != 1 || got[0].data != long {
		t.Fatalf("3 MiB line: err=%v events=%d", err, len(got))
	}
	rd := NewReaderSize(strings.NewReader("data: "+long+"\n\n"), 1<<20)
	if _, err := rd.Next(); !errors.Is(err, ErrEventTooLarge) {
		t.Fatalf("over the limit: err=%v", err)
	}
	rd = NewReaderSize(strings.NewReader(strings.Repeat("data: 0123456789\n", 200000)+"\n"), 1<<20)
	if _, err := rd.Next(); !errors.Is(err, ErrEventTooLarge) {
		t.Fatalf("many data lines over the limit: err=%v", err)
	}
}

func TestReaderPropagatesErrors(t *testing.T) {
	boom := errors.New("connection reset")
	rd := NewReader(io.MultiReader(strings.NewReader("data: 1\n\ndata: 2"), iotest.ErrReader(boom)))
	if ev, err := rd.Next(); err != nil || string(ev.Data) != "1" {
		t.Fatalf("first event: %q %v", ev.Data, err)
	}
	if _, err := rd.Next(); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want %v", err, boom)
	}
}

func TestAppendEventRoundTrip(t *testing.T) {
	for _, data := range []string{"{}", "a\nb", "", "x\n"} {
		out := AppendEvent(nil, []byte("n"), []byte(data))
		got, err := readAllEvents(t, bytes.NewReader(out))
		if err != nil || len(got) != 1 || got[0] != (sseEvent{"n", data}) {
			t.Fatalf("round trip of %q: %q %v", data, got, err)
		}
	}
}

func TestObjectIterMatchesEncodingJSON(t *testing.T) {
	for _, in := range []string{
		`{"a":1,"b":"x","c":{"d":[1,2,{"e":null}]},"f":true,"g":-1.5e3}`,
		` { "a" : "\u00e9\"" , "b" : [ ] } `,
		`{}`,
	} {
		var want map[string]json.RawMessage
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatal(err)
		}
		it := newObjectIter([]byte(in))
		n := 0
		for {
			k, v, ok := it.next()
			if !ok {
				break
			}
			n++
			if string(want[string(k)]) != string(v) {
				t.Fatalf("%s: key %s = %s, want %s", in, k, v, want[string(k)])
			}
		}
		if it.failed() || n != len(want) {
			t.Fatalf("%s: failed=%v n=%d", in, it.failed(), n)
		}
	}
	for _, bad := range []string{`{"a":}`, `{"a":1,}`, `{"a" 1}`, `[1]`, `{"a":"\x01"}`, `{"a":"\q"}`, `{"a":01}`, `{"a":1 "b":2}`, `{"a":"` + "\xff" + `"}`} {
		it := newObjectIter([]byte(bad))
		for {
			if _, _, ok := it.next(); !ok {
				break
			}
		}
		if !it.failed() {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestReaderReset: a reset Reader reads a new stream from the start, with
// no state (event name, pending bytes, errors) left over from the old one.
func TestReaderReset(t *testing.T) {
	rd := NewReader(strings.NewReader("event: a\ndata: 1\n\nevent: b\ndata: partial"))
	if ev, err := rd.Next(); err != nil || string(ev.Data) != "1" {
		t.Fatalf("first stream: %q %v", ev.Data, err)
	}
	if _, err := rd.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("first stream end: %v", err)
	}
	rd.Reset(strings.NewReader("data: 2\n\n"))
	ev, err := rd.Next()
	if err != nil || string(ev.Data) != "2" || len(ev.Name) != 0 {
		t.Fatalf("after reset: %q %q %v", ev.Name, ev.Data, err)
	}
	if _, err := rd.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("after reset end: %v", err)
	}
}
