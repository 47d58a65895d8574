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

// rawEvents reads every event of in with a Reader of the given limit over a
// reader of the given chunking, keeping each event's Raw bytes.
func rawEvents(t testing.TB, r io.Reader, max int) (events []sseEvent, raws []string) {
	rd := NewReaderSize(r, max)
	for {
		ev, err := rd.Next()
		if err != nil {
			return events, raws
		}
		events = append(events, sseEvent{string(ev.Name), string(ev.Data)})
		raws = append(raws, string(ev.Raw))
	}
}

// TestReaderRaw: Raw is the event as it arrived, so a relay that copies it
// hands the client exactly what the upstream sent, in any framing, however
// the bytes were split across reads.
func TestReaderRaw(t *testing.T) {
	tests := []struct {
		name string
		in   string
		raws []string
	}{
		{"lf", "event: a\ndata: 1\n\nevent: b\ndata: 2\n\n", []string{"event: a\ndata: 1\n\n", "event: b\ndata: 2\n\n"}},
		{"crlf", "event: a\r\ndata: 1\r\n\r\n", []string{"event: a\r\ndata: 1\r\n\r\n"}},
		{"cr only", "event: a\rdata: 1\r\rdata: 2\r\r", []string{"event: a\rdata: 1\r\r", "data: 2\r\r"}},
		{"comment block not part of the next event", ": keepalive\n\ndata: 1\n\n", []string{"data: 1\n\n"}},
		{"comment inside the event kept", ": ping\ndata: 1\n\n", []string{": ping\ndata: 1\n\n"}},
		{"name-only block dropped", "event: x\n\ndata: 2\n\n", []string{"data: 2\n\n"}},
		{"multi-line data", "data: a\ndata: b\n\n", []string{"data: a\ndata: b\n\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, r := range []io.Reader{strings.NewReader(tt.in), iotest.OneByteReader(strings.NewReader(tt.in))} {
				_, raws := rawEvents(t, r, DefaultMaxEventSize)
				if k == 1 && strings.HasSuffix(tt.in, "\r\n") {
					// A read that ends between '\r' and '\n' ends the event at
					// the '\r': the same framing, one byte shorter.
					raws[len(raws)-1] += "\n"
				}
				if strings.Join(raws, "|") != strings.Join(tt.raws, "|") {
					t.Fatalf("raw = %q, want %q", raws, tt.raws)
				}
			}
		})
	}
}

// TestReaderRawDroppedPastLimit: an event whose lines together outgrow the
// buffer limit (long comments here) is still read, since each line and the
// data fit, but comes without Raw; the next event has its Raw again.
func TestReaderRawDroppedPastLimit(t *testing.T) {
	comment := ": " + strings.Repeat("x", 20<<10) + "\n"
	in := "event: big\n" + comment + comment + comment + "data: 1\n\ndata: small\n\n"
	evs, raws := rawEvents(t, iotest.HalfReader(strings.NewReader(in)), 32<<10)
	if len(evs) != 2 || evs[0] != (sseEvent{"big", "1"}) || raws[0] != "" || raws[1] != "data: small\n\n" {
		t.Fatalf("events %q, raw %q", evs, raws)
	}
}

// FuzzReaderRaw: whatever the framing and the read sizes, reading an
// event's Raw bytes again yields the same event.
func FuzzReaderRaw(f *testing.F) {
	f.Add([]byte("event: a\ndata: 1\n\n"), uint8(3))
	f.Add([]byte("event: a\r\ndata: 1\r\n\r\n: c\n\ndata: x\rdata: y\r\r"), uint8(1))
	f.Add([]byte("\r\n\ndata:\ndata\n\n"), uint8(2))
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		var r io.Reader = bytes.NewReader(in)
		if chunk%3 == 1 {
			r = iotest.OneByteReader(r)
		} else if chunk%3 == 2 {
			r = iotest.HalfReader(r)
		}
		evs, raws := rawEvents(t, r, 1<<16)
		for i, raw := range raws {
			if raw == "" {
				continue
			}
			again, _ := rawEvents(t, strings.NewReader(raw), 1<<16)
			if len(again) != 1 || again[0] != evs[i] {
				t.Fatalf("event %q: raw %q reads as %q", evs[i], raw, again)
			}
		}
	})
}
