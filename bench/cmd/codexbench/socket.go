package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/coder/websocket"
)

// Target w: WebSocket turns on /v1/responses. Each worker keeps one
// connection open, as the Codex CLI does, and runs turns on it back to
// back: a response.create frame, then the event frames until
// response.completed. A turn is what a request is for the other targets,
// so turns/s compares with c's requests/s.

// maxSocketFrame bounds one event frame.
const maxSocketFrame = 16 << 20

// turn runs one WebSocket turn on the worker's connection, dialling it
// first when there is none (a failed turn drops it).
func (w *worker) turn(ctx context.Context, c *http.Client, s *spec, timeout time.Duration) (ttfb, ttlb time.Duration, n int64, err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if w.sock == nil {
		conn, resp, err := websocket.Dial(ctx, s.url, &websocket.DialOptions{HTTPClient: c, HTTPHeader: s.header})
		if err != nil {
			if resp != nil {
				return 0, 0, 0, fmt.Errorf("WebSocket upgrade: HTTP %d: %w", resp.StatusCode, err)
			}
			return 0, 0, 0, fmt.Errorf("WebSocket dial: %w", err)
		}
		conn.SetReadLimit(maxSocketFrame)
		w.sock = conn
	}
	defer func() {
		if err != nil {
			w.close()
		}
	}()
	start := time.Now()
	if err := w.sock.Write(ctx, websocket.MessageText, s.body); err != nil {
		return 0, 0, 0, fmt.Errorf("sending the turn: %w", err)
	}
	var first time.Time
	events := 0
	for {
		_, data, err := w.sock.Read(ctx)
		if err != nil {
			return 0, 0, n, fmt.Errorf("reading event %d after %d bytes: %w", events+1, n, err)
		}
		if first.IsZero() {
			first = time.Now()
		}
		n += int64(len(data))
		events++
		switch typ := frameType(data); typ {
		case "response.completed":
			if events < s.minEvents {
				return 0, 0, n, fmt.Errorf("only %d events, want at least %d", events, s.minEvents)
			}
			end := time.Now()
			return first.Sub(start), end.Sub(start), n, nil
		case "error", "response.failed", "response.incomplete":
			return 0, 0, n, fmt.Errorf("%s event: %.200s", typ, data)
		}
	}
}

// close closes the worker's WebSocket, if any.
func (w *worker) close() {
	if w.sock != nil {
		_ = w.sock.CloseNow()
		w.sock = nil
	}
}

// frameType is the "type" of an event frame: read from the frame's start
// when it comes first, as the backend writes it, decoded otherwise.
func frameType(data []byte) string {
	const pre = `{"type":"`
	if rest, ok := bytes.CutPrefix(data, []byte(pre)); ok {
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

// errSocketWrk refuses w in the wrk cross-check, which speaks HTTP only.
var errSocketWrk = errors.New("-wrk: target w (WebSocket turns) needs the Go load generator")
