package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"time"

	"github.com/coder/websocket"
)

// turn runs one response.create as a POST /v1/responses of its own,
// through the same stages as one that came over HTTP, and relays what it
// answers into frames.
func (s *socket) turn(ctx context.Context, body []byte) {
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, "/v1/responses", bytes.NewReader(body))
	if err != nil { // cannot happen: a constant method and URL
		return
	}
	r.Header = s.hdr.Clone()
	r.ContentLength = int64(len(body))
	r.RemoteAddr = s.upgrade.RemoteAddr
	r.Host = s.upgrade.Host
	r.TLS = s.upgrade.TLS
	r.Proto, r.ProtoMajor, r.ProtoMinor = s.upgrade.Proto, s.upgrade.ProtoMajor, s.upgrade.ProtoMinor

	ep, _ := match(http.MethodPost, "/v1/responses")
	req := &request{id: "req_" + rand.Text(), start: time.Now(), route: ep.route, link: s.up, chain: s.chain}
	fw := &frameWriter{ctx: ctx, c: s.c, header: http.Header{}, ending: s.turnEnding}
	s.h.serveEndpoint(fw, r, req, ep)
	fw.finish()
}

// frameWriter is the http.ResponseWriter of a WebSocket turn. A streamed
// answer's SSE events go out as they are written, each event's data as
// one text frame; an answer with any other status (an error before any
// output: a refusal, a bad request, an upstream failure) is collected and
// sent as one error event when the turn ends. Headers have nowhere to go
// after the upgrade and are dropped.
type frameWriter struct {
	ctx    context.Context
	c      *websocket.Conn
	header http.Header
	status int
	// pending is the start of an SSE event not yet complete; body the
	// answer of a non-stream status.
	pending []byte
	body    []byte
	err     error
	// ending runs before the turn's terminal event is sent.
	ending func()
}

// maxErrorBody bounds what an error answer may hold: its envelope is small.
const maxErrorBody = 64 << 10

func (f *frameWriter) Header() http.Header { return f.header }

func (f *frameWriter) WriteHeader(status int) {
	if f.status == 0 {
		f.status = status
	}
}

func (f *frameWriter) Write(b []byte) (int, error) {
	if f.status == 0 {
		f.status = http.StatusOK
	}
	if f.err != nil {
		return 0, f.err
	}
	if f.status != http.StatusOK {
		if len(f.body)+len(b) <= maxErrorBody {
			f.body = append(f.body, b...)
		}
		return len(b), nil
	}
	f.pending = append(f.pending, b...)
	rest := f.pending
	for {
		i := bytes.Index(rest, []byte("\n\n"))
		if i < 0 {
			break
		}
		if data := sseData(rest[:i]); len(data) > 0 {
			if endsTurn(data) {
				f.ending()
			}
			if err := f.c.Write(f.ctx, websocket.MessageText, data); err != nil {
				f.err = err
				return 0, err
			}
		}
		rest = rest[i+2:]
	}
	f.pending = append(f.pending[:0], rest...)
	return len(b), nil
}

// FlushError is a flush: every complete event was already sent by Write.
// It reports the socket's failure so the relay stops at once.
func (f *frameWriter) FlushError() error { return f.err }

// finish sends the error event of an answer that was not a stream.
func (f *frameWriter) finish() {
	if f.status == 0 || f.status == http.StatusOK || f.err != nil {
		return
	}
	f.ending()
	_ = f.c.Write(f.ctx, websocket.MessageText, errorEvent(f.status, f.body, f.header.Get("Retry-After")))
}

// sseData is the data of one SSE event as the translator writes it (event
// and data lines; comments, the keepalives, have none).
func sseData(event []byte) []byte {
	var data []byte
	for line := range bytes.SplitSeq(event, []byte("\n")) {
		v, ok := bytes.CutPrefix(line, []byte("data:"))
		if !ok {
			continue
		}
		v = bytes.TrimPrefix(v, []byte(" "))
		if data != nil {
			data = append(data, '\n')
		}
		data = append(data, v...)
	}
	if bytes.Equal(data, []byte("[DONE]")) {
		return nil
	}
	return data
}

// endsTurn reports whether an event ends its response: after it the
// client may send the next response.create.
func endsTurn(data []byte) bool {
	switch eventType(data) {
	case "response.completed", "response.failed", "response.incomplete", "error":
		return true
	}
	return false
}

// eventType is an event's type. Events put it first, so it is read from
// the head of the object; an event that does not is decoded whole.
func eventType(data []byte) string {
	head := data[:min(len(data), 64)]
	if rest, ok := bytes.CutPrefix(head, []byte(`{"type":"`)); ok {
		if i := bytes.IndexByte(rest, '"'); i >= 0 && bytes.IndexByte(rest[:i], '\\') < 0 {
			return string(rest[:i])
		}
	}
	var ev struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(data, &ev)
	return ev.Type
}
