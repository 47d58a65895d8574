package translate

import (
	"bytes"
	"errors"
	"io"
)

// Event is one server-sent event. Name, Data and Raw alias the Reader's
// buffers and are valid only until the next call to Next.
type Event struct {
	// Name is the event field ("response.output_text.delta"); empty when the
	// stream sent none.
	Name []byte
	// Data is the event's data lines joined with "\n".
	Data []byte
	// Raw is the event exactly as it arrived: every line of it (comments and
	// other fields included) and the blank line that ended it, so a relay can
	// pass the event on with one copy. It is nil when the event did not come
	// from a Reader, or was too large to keep whole.
	Raw []byte
}

// DefaultMaxEventSize bounds one event. Base64 images and long reasoning
// blobs make single lines far larger than bufio.Scanner's 64 KiB default.
const DefaultMaxEventSize = 64 << 20

// ErrEventTooLarge is returned when an event exceeds the Reader's limit.
var ErrEventTooLarge = errors.New("sse: event exceeds the size limit")

// Reader reads server-sent events incrementally: it never holds more than the
// event being read, whatever the length of the stream. The event's bytes stay
// in the read buffer until the next call to Next, so an event with one data
// line (every Codex event) is returned without copying its data.
type Reader struct {
	r       io.Reader
	buf     []byte
	start   int // first unread byte in buf
	end     int // end of valid bytes in buf
	max     int
	skipLF  bool // the previous line ended in a lone '\r'; a following '\n' belongs to it
	err     error
	name    []byte
	data    []byte // the data lines joined, once there is more than one
	hasData bool
	inBuf   bool // the event's only data line is buf[dStart:dEnd]
	dStart  int
	dEnd    int
	evStart int  // first byte of the event being read; fill keeps it
	rawLost bool // the event outgrew the buffer and its raw bytes were dropped
	// deltaBytes is the length of the "delta" strings of the *.delta events
	// read so far: the output a stream carried, for an estimate when it
	// ends without its usage.
	deltaBytes int64
}

// DeltaBytes is how many bytes of generated output (the "delta" of every
// *.delta event: text, reasoning, tool-call arguments) the stream carried
// so far, as escaped in the JSON. Zero for events without names.
func (r *Reader) DeltaBytes() int64 { return r.deltaBytes }

var deltaSuffix = []byte(".delta")

// deltaKey opens the delta string of a *.delta event's data.
var deltaKey = []byte(`"delta":"`)

// deltaLen is the length of the "delta" string value in an event's data,
// up to its closing quote; 0 when there is none.
func deltaLen(data []byte) int {
	i := bytes.Index(data, deltaKey)
	if i < 0 {
		return 0
	}
	v := data[i+len(deltaKey):]
	for j := 0; j < len(v); j++ {
		switch v[j] {
		case '\\':
			j++
		case '"':
			return j
		}
	}
	return len(v)
}

// NewReader returns a Reader with the default event size limit.
func NewReader(r io.Reader) *Reader {
	return NewReaderSize(r, DefaultMaxEventSize)
}

// NewReaderSize returns a Reader that rejects events larger than max bytes.
func NewReaderSize(r io.Reader, max int) *Reader {
	return &Reader{r: r, buf: make([]byte, 32<<10), max: max}
}

// Reset makes r read a new stream from src, keeping its buffers, so a
// server can pool Readers instead of allocating 32 KiB per stream. Buffers
// grown by a huge event are dropped rather than kept in the pool.
func (r *Reader) Reset(src io.Reader) {
	buf := r.buf
	if cap(buf) > 1<<20 {
		buf = make([]byte, 32<<10)
	}
	*r = Reader{r: src, buf: buf[:cap(buf)], max: r.max, name: r.name[:0], data: r.data[:0]}
	if cap(r.data) > 1<<20 {
		r.data = nil
	}
}

// Next returns the next event. It returns io.EOF once the stream has ended;
// an event cut off by the end of the stream is discarded, as the SSE
// specification requires, so a truncated stream never yields half an event.
func (r *Reader) Next() (Event, error) {
	r.name = r.name[:0]
	r.data = r.data[:0]
	r.hasData, r.inBuf, r.rawLost = false, false, false
	r.evStart = r.start
	for {
		ls, le, err := r.line()
		if err != nil {
			return Event{}, err
		}
		if ls == le {
			if r.hasData {
				ev := Event{Name: r.name, Data: r.data}
				if r.inBuf {
					ev.Data = r.buf[r.dStart:r.dEnd]
				}
				if !r.rawLost {
					ev.Raw = r.buf[r.evStart:r.start]
				}
				if bytes.HasSuffix(ev.Name, deltaSuffix) {
					r.deltaBytes += int64(deltaLen(ev.Data))
				}
				return ev, nil
			}
			r.name = r.name[:0]
			r.evStart, r.rawLost = r.start, false
			continue
		}
		line := r.buf[ls:le]
		if line[0] == ':' {
			continue // comment (keepalive)
		}
		field, vs := line, le
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, vs = line[:i], ls+i+1
			if vs < le && r.buf[vs] == ' ' {
				vs++
			}
		}
		switch string(field) {
		case "data":
			if !r.hasData {
				if le-vs > r.max {
					return Event{}, ErrEventTooLarge
				}
				r.dStart, r.dEnd, r.inBuf, r.hasData = vs, le, true, true
				continue
			}
			if r.inBuf {
				r.data = append(r.data[:0], r.buf[r.dStart:r.dEnd]...)
				r.inBuf = false
			}
			r.data = append(r.data, '\n')
			if len(r.data)+le-vs > r.max {
				return Event{}, ErrEventTooLarge
			}
			r.data = append(r.data, r.buf[vs:le]...)
		case "event":
			r.name = append(r.name[:0], r.buf[vs:le]...)
		}
	}
}

// line returns the bounds in buf of the next line without its terminator
// (LF, CRLF or CR).
func (r *Reader) line() (int, int, error) {
	scanFrom := r.start
	for {
		if r.skipLF && r.start < r.end {
			if r.buf[r.start] == '\n' {
				if r.evStart == r.start {
					r.evStart++ // the '\n' ends the previous event's last line
				}
				r.start++
			}
			r.skipLF = false
			scanFrom = r.start
		}
		if i := indexEOL(r.buf[scanFrom:r.end]); i >= 0 {
			i += scanFrom
			ls := r.start
			end := i
			if r.buf[i] == '\r' {
				if i+1 < r.end {
					if r.buf[i+1] == '\n' {
						i++
					}
				} else {
					r.skipLF = true
				}
			}
			r.start = i + 1
			return ls, end, nil
		}
		scanFrom = r.end
		if r.err != nil {
			return 0, 0, r.err
		}
		shift, err := r.fill()
		scanFrom -= shift
		if err != nil {
			r.err = err
		}
	}
}

// fill moves the current event's bytes to the front of the buffer, grows it
// when they do not fit, and reads more. It returns how far the bytes moved.
// An event that would grow the buffer past the limit loses its raw bytes
// (only the line being read is kept) rather than failing.
func (r *Reader) fill() (int, error) {
	keep := r.evStart
	if keep < r.start && r.end-keep == len(r.buf) && len(r.buf) >= r.max+2 {
		if r.inBuf {
			r.data = append(r.data[:0], r.buf[r.dStart:r.dEnd]...)
			r.inBuf = false
		}
		r.rawLost = true
		keep = r.start
	}
	shift := keep
	if shift > 0 {
		copy(r.buf, r.buf[shift:r.end])
		r.end -= shift
		r.start -= shift
		r.evStart -= shift
		if r.evStart < 0 {
			r.evStart = 0
		}
		r.dStart -= shift
		r.dEnd -= shift
	}
	if r.end == len(r.buf) {
		if len(r.buf) >= r.max+2 {
			return shift, ErrEventTooLarge
		}
		size := 2 * len(r.buf)
		if size > r.max+2 {
			size = r.max + 2
		}
		grown := make([]byte, size)
		copy(grown, r.buf[:r.end])
		r.buf = grown
	}
	for tries := 0; tries < 100; tries++ {
		n, err := r.r.Read(r.buf[r.end:])
		r.end += n
		if err != nil {
			if errors.Is(err, io.EOF) {
				return shift, io.EOF
			}
			return shift, err
		}
		if n > 0 {
			return shift, nil
		}
	}
	return shift, io.ErrNoProgress
}

// Pending reports whether a whole event is already buffered, so the next
// call to Next will not wait for the network. Writers use it to flush once
// per burst of events instead of once per event.
func (r *Reader) Pending() bool {
	b := r.buf[r.start:r.end]
	if bytes.Contains(b, []byte("\n\n")) {
		return true
	}
	return bytes.IndexByte(b, '\r') >= 0 && (bytes.Contains(b, []byte("\r\r")) || bytes.Contains(b, []byte("\r\n\r\n")))
}

// indexEOL finds the first '\n' or '\r'. Both searches use the vectorised
// bytes.IndexByte; a '\r' is looked for only before the first '\n'.
func indexEOL(b []byte) int {
	n := bytes.IndexByte(b, '\n')
	head := b
	if n >= 0 {
		head = b[:n]
	}
	if c := bytes.IndexByte(head, '\r'); c >= 0 {
		return c
	}
	return n
}

// AppendEvent appends one event in SSE framing. Data containing newlines is
// split over several data lines so it survives the round trip.
func AppendEvent(dst, name, data []byte) []byte {
	if len(name) > 0 {
		dst = append(dst, "event: "...)
		dst = append(dst, name...)
		dst = append(dst, '\n')
	}
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		dst = append(dst, "data: "...)
		dst = append(dst, data[:i]...)
		dst = append(dst, '\n')
		data = data[i+1:]
	}
	dst = append(dst, "data: "...)
	dst = append(dst, data...)
	return append(dst, '\n', '\n')
}

// Keepalive is an SSE comment; clients ignore it, proxies see traffic.
var Keepalive = []byte(": keepalive\n\n")
