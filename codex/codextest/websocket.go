package codextest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"

	"github.com/coder/websocket"
)

// WebSocketBeta is the OpenAI-Beta value the official Codex client sends on
// the backend's WebSocket upgrade; the fake requires the
// "responses_websockets=" prefix and accepts any date after it.
const WebSocketBeta = "responses_websockets=2026-02-06"

// TransportHeader is set to "websocket" on the recorded Request of a turn
// that arrived over the socket; HTTP turns do not carry it.
const TransportHeader = "X-Codextest-Transport"

// FrameInputHeader and PreviousResponseHeader are set on the recorded
// Request of a socket turn: how many input items its frame carried and the
// previous_response_id it continued (absent when none), since the
// recorded body is the whole input the chain rebuilt.
const (
	FrameInputHeader       = "X-Codextest-Frame-Input"
	PreviousResponseHeader = "X-Codextest-Previous-Response"
)

// SetForgetChains makes every socket turn's previous_response_id unknown
// (true), as a backend that lost the connection's response would answer,
// or chains again (false).
func (s *Server) SetForgetChains(forget bool) { s.forgetWS.Store(forget) }

// OpenWebSockets counts the upstream sockets open now.
func (s *Server) OpenWebSockets() int64 { return s.wsOpen.Load() }

// DropWebSockets closes every open socket at once, as a network failure
// or the backend's age limit would.
func (s *Server) DropWebSockets() {
	s.wsLive.Range(func(k, _ any) bool {
		k.(*websocket.Conn).CloseNow()
		return true
	})
}

// SetRefuseWebSocket makes GET /responses answer 405 like an upstream that
// only speaks HTTP/SSE (true) or accept upgrades again (false).
func (s *Server) SetRefuseWebSocket(refuse bool) { s.refuseWS.Store(refuse) }

// WebSocketConns counts the upgrades the fake accepted.
func (s *Server) WebSocketConns() int64 { return s.wsConns.Load() }

// handleResponsesWS serves the WebSocket mode of /responses: one
// response.create frame per turn, the SSE stream's events as text frames,
// one response at a time per connection, and previous_response_id valid
// only for the last response completed on the same connection (the
// backend stores nothing with store:false; the chain lives in the socket).
func (s *Server) handleResponsesWS(w http.ResponseWriter, r *http.Request) {
	if s.refuseWS.Load() || !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		s.recordRequest(r, nil)
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"detail": "Method Not Allowed"})
		return
	}
	if !strings.HasPrefix(r.Header.Get("OpenAI-Beta"), "responses_websockets=") {
		s.recordRequest(r, nil)
		detail(http.StatusBadRequest, "OpenAI-Beta responses_websockets header is required").write(w)
		return
	}
	if _, ok := s.authenticate(w, r); !ok {
		s.recordRequest(r, nil)
		return
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	s.wsConns.Add(1)
	s.wsOpen.Add(1)
	s.wsLive.Store(c, true)
	defer func() {
		s.wsLive.Delete(c)
		s.wsOpen.Add(-1)
	}()
	c.SetReadLimit(maxBody)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-s.closed:
			c.CloseNow()
		case <-ctx.Done():
		}
	}()
	conn := &wsConn{s: s, c: c, hdr: r.Header.Clone(), url: r.URL.String()}
	frames := make(chan []byte)
	go func() {
		defer close(frames)
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				cancel()
				return
			}
			select {
			case frames <- b:
			case <-ctx.Done():
				return
			}
		}
	}()
	busy := make(chan struct{}, 1)
	for b := range frames {
		select {
		case busy <- struct{}{}:
		default:
			conn.sendError(ctx, http.StatusBadRequest, "conversation_in_progress",
				"Another response is already in progress on this connection.")
			continue
		}
		go func(b []byte) {
			// The connection is free again once the terminal event is
			// out: a client may send its next frame the moment it reads it.
			var once sync.Once
			release := func() { once.Do(func() { <-busy }) }
			defer release()
			conn.turn(ctx, b, release)
		}(b)
	}
	c.Close(websocket.StatusNormalClosure, "")
}

// wsConn is one accepted upstream socket.
type wsConn struct {
	s   *Server
	c   *websocket.Conn
	hdr http.Header
	url string

	mu sync.Mutex
	// lastID, lastItems: the last completed response on this connection and
	// its full input plus output, the only chain previous_response_id may
	// continue.
	lastID    string
	lastItems []any
}

// turn runs one response.create frame through the HTTP handler and relays
// its events.
func (wc *wsConn) turn(ctx context.Context, b []byte, release func()) {
	var req map[string]any
	if err := json.Unmarshal(b, &req); err != nil || req == nil {
		wc.sendError(ctx, http.StatusBadRequest, "invalid_json", "Invalid JSON frame")
		return
	}
	if req["type"] != "response.create" {
		wc.sendError(ctx, http.StatusBadRequest, "invalid_request_error", "Unsupported frame type")
		return
	}
	delete(req, "type")
	if _, ok := req["stream"]; !ok {
		req["stream"] = true
	}
	input, _ := req["input"].([]any)
	frameInput := strconv.Itoa(len(input))
	prevID, _ := req["previous_response_id"].(string)
	if prev, ok := req["previous_response_id"]; ok {
		id, _ := prev.(string)
		wc.mu.Lock()
		match := id != "" && id == wc.lastID && !wc.s.forgetWS.Load()
		chain := wc.lastItems
		wc.mu.Unlock()
		if !match {
			wc.sendError(ctx, http.StatusBadRequest, "previous_response_not_found",
				"Previous response with id '"+id+"' not found.")
			return
		}
		delete(req, "previous_response_id")
		input = append(append([]any{}, chain...), input...)
		req["input"] = input
	}
	body, _ := json.Marshal(req)
	hr := httptest.NewRequest(http.MethodPost, wc.url, bytes.NewReader(body)).WithContext(ctx)
	hr.Header = wc.hdr.Clone()
	hr.Header.Set("Content-Type", "application/json")
	// Recorded with the turn so tests can tell the transports apart.
	hr.Header.Set(TransportHeader, "websocket")
	hr.Header.Set(FrameInputHeader, frameInput)
	if prevID != "" {
		hr.Header.Set(PreviousResponseHeader, prevID)
	}
	for _, h := range []string{"Upgrade", "Connection", "Sec-Websocket-Key", "Sec-Websocket-Version", "Sec-Websocket-Extensions"} {
		hr.Header.Del(h)
	}
	rw := &wsWriter{ctx: ctx, c: wc.c, h: http.Header{}}
	// Right before the terminal event goes out: the chain is the response
	// just completed, and the connection takes the next frame.
	rw.ending = func() {
		if rw.completedID != "" {
			wc.mu.Lock()
			wc.lastID = rw.completedID
			wc.lastItems = append(append([]any{}, input...), rw.output...)
			wc.mu.Unlock()
		}
		release()
	}
	aborted := func() (aborted bool) {
		defer func() {
			if v := recover(); v != nil {
				if v != http.ErrAbortHandler {
					panic(v)
				}
				aborted = true
			}
		}()
		wc.s.handleResponses(rw, hr)
		return false
	}()
	if aborted {
		// A cut stream: the backend drops the socket.
		wc.c.CloseNow()
		return
	}
	if rw.status != http.StatusOK {
		var v any
		_ = json.Unmarshal(rw.errBody.Bytes(), &v)
		release()
		wc.send(ctx, map[string]any{"type": "error", "status": rw.status, "error": v, "headers": flatHeaders(rw.h)})
	}
}

// sendError writes the backend's socket error event.
func (wc *wsConn) sendError(ctx context.Context, status int, code, msg string) {
	wc.send(ctx, map[string]any{"type": "error", "status": status,
		"error": map[string]any{"type": "invalid_request_error", "code": code, "message": msg}})
}

func (wc *wsConn) send(ctx context.Context, v any) {
	b, _ := json.Marshal(v)
	wc.c.Write(ctx, websocket.MessageText, b)
}

// flatHeaders keeps the x-codex headers of a refused turn, lower-cased.
func flatHeaders(h http.Header) map[string]string {
	out := map[string]string{}
	for k := range h {
		if lk := strings.ToLower(k); strings.HasPrefix(lk, "x-codex-") || lk == "retry-after" {
			out[lk] = h.Get(k)
		}
	}
	return out
}

// wsWriter turns the HTTP handler's SSE stream into text frames: each
// event's data line becomes one frame. The rate-limit headers become a
// codex.rate_limits event first, as the backend sends on the socket.
type wsWriter struct {
	ctx     context.Context
	c       *websocket.Conn
	h       http.Header
	status  int
	errBody bytes.Buffer
	pending []byte

	output      []any
	completedID string
	// ending runs before a terminal event is written.
	ending func()
}

func (w *wsWriter) Header() http.Header { return w.h }

func (w *wsWriter) WriteHeader(code int) {
	if w.status != 0 {
		return
	}
	w.status = code
	if code == http.StatusOK {
		w.c.Write(w.ctx, websocket.MessageText, rateLimitsEvent(w.h))
	}
}

func (w *wsWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.status != http.StatusOK {
		return w.errBody.Write(b)
	}
	w.pending = append(w.pending, b...)
	for {
		i := bytes.Index(w.pending, []byte("\n\n"))
		if i < 0 {
			return len(b), nil
		}
		ev := w.pending[:i]
		w.pending = w.pending[i+2:]
		sc := bufio.NewScanner(bytes.NewReader(ev))
		sc.Buffer(nil, maxBody)
		for sc.Scan() {
			data, ok := bytes.CutPrefix(sc.Bytes(), []byte("data: "))
			if !ok {
				continue
			}
			if w.note(data) && w.ending != nil {
				w.ending()
			}
			if err := w.c.Write(w.ctx, websocket.MessageText, data); err != nil {
				return 0, err
			}
		}
	}
}

// FlushError satisfies http.ResponseController; frames go out as written.
func (w *wsWriter) FlushError() error { return nil }

// note remembers output items and the completed response's id; it
// reports whether the event ends the response.
func (w *wsWriter) note(data []byte) bool {
	var ev struct {
		Type     string          `json:"type"`
		Item     json.RawMessage `json:"item"`
		Response struct {
			ID string `json:"id"`
		} `json:"response"`
	}
	if json.Unmarshal(data, &ev) != nil {
		return false
	}
	switch ev.Type {
	case "response.failed", "response.incomplete", "error":
		return true
	case "response.output_item.done":
		var item map[string]any
		if json.Unmarshal(ev.Item, &item) == nil {
			// The backend keeps the item itself; as input it carries no
			// status (which the input rules refuse).
			delete(item, "status")
			w.output = append(w.output, item)
		}
	case "response.completed":
		w.completedID = ev.Response.ID
		return true
	}
	return false
}

// rateLimitsEvent renders the x-codex headers as the socket's
// codex.rate_limits event (OC codex-api rate_limits.rs).
func rateLimitsEvent(h http.Header) []byte {
	win := func(p string) map[string]any {
		used, _ := strconv.ParseFloat(h.Get("X-Codex-"+p+"-Used-Percent"), 64)
		mins, _ := strconv.Atoi(h.Get("X-Codex-" + p + "-Window-Minutes"))
		at, _ := strconv.ParseInt(h.Get("X-Codex-"+p+"-Reset-At"), 10, 64)
		return map[string]any{"used_percent": used, "window_minutes": mins, "reset_at": at}
	}
	b, _ := json.Marshal(map[string]any{
		"type": "codex.rate_limits", "plan_type": h.Get("X-Codex-Plan-Type"),
		"rate_limits": map[string]any{"primary": win("Primary"), "secondary": win("Secondary")},
	})
	return b
}
