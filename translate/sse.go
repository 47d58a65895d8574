package translate

import (
	"bytes"
	"errors"
	"io"
)

// Event is one server-sent event. Name and Data alias the Reader's buffers and
// are valid only until the next call to Next.
type Event struct {
	// Name is the event field ("response.output_text.delta"); empty when the
	// stream sent none.
	Name []byte
	// Data is the event's data lines joined with "\n".
	Data []byte
}

// DefaultMaxEventSize bounds one event. Base64 images and long reasoning
// blobs make single lines far larger than bufio.Scanner's 64 KiB default.
const DefaultMaxEventSize = 64 << 20

// ErrEventTooLarge is returned when an event exceeds the Reader's limit.
var ErrEventTooLarge = errors.New("sse: event exceeds the size limit")

// Reader reads server-sent events incrementally: it never holds more than the
// event being read, whatever the length of the stream.
type Reader struct {
	r       io.Reader
	buf     []byte
	start   int // first unread byte in buf
	end     int // end of valid bytes in buf
	max     int
	skipLF  bool // the previous line ended in a lone '\r'; a following '\n' belongs to it
	err     error
	name    []byte
	data    []byte
	hasData bool
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
	r.hasData = false
	for {
		line, err := r.line()
		if err != nil {
			return Event{}, err
		}
		if len(line) == 0 {
			if r.hasData {
				return Event{Name: r.name, Data: r.data}, nil
			}
			r.name = r.name[:0]
			continue
		}
		if line[0] == ':' {
			continue // comment (keepalive)
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) {
		case "data":
			if r.hasData {
				r.data = append(r.data, '\n')
			}
			if len(r.data)+len(value) > r.max {
				return Event{}, ErrEventTooLarge
			}
			r.data = append(r.data, value...)
			r.hasData = true
		case "event":
			r.name = append(r.name[:0], value...)
		}
	}
}

// line returns the next line without its terminator (LF, CRLF or CR).
func (r *Reader) line() ([]byte, error) {
	scanFrom := r.start
	for {
		if r.skipLF && r.start < r.end {
			if r.buf[r.start] == '\n' {
				r.start++
			}
			r.skipLF = false
			scanFrom = r.start
		}
		if i := indexEOL(r.buf[scanFrom:r.end]); i >= 0 {
			i += scanFrom
			line := r.buf[r.start:i]
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
			return line, nil
		}
		scanFrom = r.end
		if r.err != nil {
			return nil, r.err
		}
		shift, err := r.fill()
		scanFrom -= shift
		if err != nil {
			r.err = err
		}
	}
}

// fill moves the unread bytes to the front of the buffer, grows it when a
// line does not fit, and reads more. It returns how far the bytes moved.
func (r *Reader) fill() (int, error) {
	shift := r.start
	if shift > 0 {
		copy(r.buf, r.buf[r.start:r.end])
		r.end -= shift
		r.start = 0
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
