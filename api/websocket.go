package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/usemysub/caddy-codex-proxy/apierror"
	"github.com/usemysub/caddy-codex-proxy/keypolicy"
)

// WebSocket mode of /v1/responses, as the openai SDK's ResponsesWS and the
// Codex CLI (supports_websockets = true) speak it: one socket, a
// response.create frame per turn carrying the fields of a POST
// /v1/responses body, and the same events as the SSE stream, one JSON text
// frame each.
//
// The key is checked at the upgrade, so a bad key is refused with a 401
// before any socket exists. Each turn is then an ordinary request of the
// responses endpoint (websocket_turn.go): it goes through serveEndpoint
// like a POST — authentication again (a key revoked mid-socket stops
// working), admission with its hold, translation, routing with failover,
// relay, record — so whatever POST /v1/responses supports, a socket gets.
// Only the transport differs: frames instead of SSE, and an error answered
// before any output becomes an error event, after which the socket stays
// usable.
//
// Built on github.com/coder/websocket: maintained, context-aware (a
// cancelled context closes the socket, which is what a turn's cancellation
// needs), safe for concurrent writers, and free of dependencies.

// Defaults of Config.SocketMaxAge and Config.SocketPing.
const (
	// DefaultSocketMaxAge is the backend's own limit on a Codex socket.
	DefaultSocketMaxAge = 60 * time.Minute
	DefaultSocketPing   = 30 * time.Second
)

// Close reasons (at most 123 bytes each, the protocol's limit).
const (
	reasonMaxAge   = "this WebSocket reached its maximum age"
	reasonShutdown = "the proxy is restarting"
)

// isWebSocketUpgrade reports whether r asks to switch to WebSocket.
func isWebSocketUpgrade(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.EqualFold(r.Header.Get("Upgrade"), "websocket") &&
		headerHasToken(r.Header, "Connection", "upgrade")
}

// headerHasToken reports whether a comma-separated header has token.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// serveSocket answers a WebSocket upgrade on /v1/responses: the key and its
// expiry are checked first (a refusal is an ordinary HTTP answer, the
// OpenAI error body with its status), then the socket serves turns until
// either side closes it.
func (h *Handler) serveSocket(w http.ResponseWriter, r *http.Request, req *request) {
	// Each turn authenticates with the upgrade's headers; authenticate
	// masks some of them, so keep a copy first.
	hdr := turnHeader(r.Header)
	if out, ok := h.authenticate(w, r, req); !ok {
		h.obs.Request(req.route, out.status, "")
		return
	}
	if refused := keypolicy.CheckExpiry(req.key.Policy, time.Now()); refused != nil {
		h.record(req, h.refuse(w, refused))
		return
	}
	s := &socket{h: h, upgrade: r, hdr: hdr, up: h.newLink(), chain: newSocketChain()}
	defer s.up.close() // the upstream socket lives as long as the client's
	defer h.endChain(req.user.ID, s.chain)
	if !h.sockets.add(s) {
		apierror.SetRetryAfter(w.Header(), 2*time.Second)
		h.obs.Request(req.route, h.reject(w, apierror.ShuttingDown(), 0).status, "")
		return
	}
	defer h.sockets.remove(s)
	// Browsers cannot put a key on a WebSocket upgrade, and the key is all
	// that authorises one, so the Origin check guards nothing here; it
	// would only refuse non-browser clients that send one.
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		// Accept answered the client itself (a malformed handshake).
		h.log.Debug("WebSocket upgrade failed", zap.String("request_id", req.id), zap.Error(err))
		return
	}
	c.SetReadLimit(h.cfg.MaxBodySize)
	if ce := h.log.Check(zap.InfoLevel, "Responses WebSocket opened"); ce != nil {
		ce.Write(zap.String("request_id", req.id), zap.String("user_id", req.user.ID), zap.String("key_id", req.key.ID))
	}
	opened := time.Now()
	defer func() {
		if ce := h.log.Check(zap.InfoLevel, "Responses WebSocket closed"); ce != nil {
			ce.Write(zap.String("request_id", req.id), zap.Duration("open_for", time.Since(opened)))
		}
	}()
	s.mu.Lock()
	s.c = c
	closing := s.closing // Shutdown came during the handshake
	s.mu.Unlock()
	if closing != "" {
		closeConn(c, closing)
	}
	s.serve(r.Context())
}

// turnHeader is the upgrade's headers without the handshake's own, as the
// headers of each turn's request.
func turnHeader(h http.Header) http.Header {
	t := h.Clone()
	for name := range t {
		if strings.HasPrefix(http.CanonicalHeaderKey(name), "Sec-Websocket-") {
			delete(t, name)
		}
	}
	for _, name := range []string{"Upgrade", "Connection", "Content-Length", "Content-Encoding"} {
		t.Del(name)
	}
	t.Set("Content-Type", "application/json")
	return t
}

// socket is one client WebSocket: at most one turn at a time, and a close
// once idle when it is too old or the proxy stops.
type socket struct {
	h       *Handler
	c       *websocket.Conn
	upgrade *http.Request // its context and address serve every turn
	hdr     http.Header
	up      *upstreamLink // its upstream socket (websocket_upstream.go); nil: HTTP
	chain   *socketChain  // its last response (socket_chain.go)

	mu   sync.Mutex
	busy bool // a turn runs
	// ended is set once the running turn sent its terminal event: the
	// client may send the next response.create at once, which then waits
	// for done, the turn's end (its record, its slot released).
	ended   bool
	done    chan struct{}
	closing string // why the socket closes once idle; "" while it may serve
}

// turnEnding is called right before a turn's terminal event goes out.
func (s *socket) turnEnding() {
	s.mu.Lock()
	s.ended = true
	s.mu.Unlock()
}

// serve reads client events until the socket closes. A turn runs beside
// the reader, so a second response.create, a ping's pong or the client's
// close are seen while it streams; a closed socket cancels the turn's
// context, which cancels its upstream request.
func (s *socket) serve(ctx context.Context) {
	var turns sync.WaitGroup
	defer turns.Wait() // the turn records itself before the handler returns
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if s.h.cfg.SocketPing > 0 {
		defer s.ping(ctx, s.h.cfg.SocketPing)()
	}
	age := time.AfterFunc(s.h.cfg.SocketMaxAge, func() { s.closeWhenIdle(reasonMaxAge) })
	defer age.Stop()
	for {
		typ, data, err := s.c.Read(ctx)
		if err != nil {
			return // the client closed, the connection broke, or we closed it
		}
		s.event(ctx, &turns, typ, data)
	}
}

// event handles one client frame.
func (s *socket) event(ctx context.Context, turns *sync.WaitGroup, typ websocket.MessageType, data []byte) {
	if typ != websocket.MessageText {
		s.sendError(ctx, apierror.InvalidEvent("binary frames are not accepted; send each event as a JSON text frame"), 0)
		return
	}
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		s.sendError(ctx, apierror.InvalidEvent("the frame is not a JSON object with a type: %v", err), 0)
		return
	}
	switch head.Type {
	case "response.create":
	case "response.processed":
		return // the Codex CLI's acknowledgement of a completed response
	default:
		s.sendError(ctx, apierror.InvalidEvent("unsupported event type %q; this endpoint takes response.create", head.Type), 0)
		return
	}
	body, bad := turnBody(data)
	if bad != nil {
		s.sendError(ctx, bad, 0)
		return
	}
	s.mu.Lock()
	for s.busy && s.ended {
		done := s.done
		s.mu.Unlock()
		<-done
		s.mu.Lock()
	}
	closing, busy := s.closing, s.busy
	if closing == "" && !busy {
		s.busy, s.done = true, make(chan struct{})
	}
	s.mu.Unlock()
	switch {
	case closing != "":
		s.sendError(ctx, apierror.SocketLimitReached(closing), 0)
		return
	case busy:
		s.sendError(ctx, apierror.ResponseInProgress(), 0)
		return
	}
	turns.Add(1)
	go func() {
		defer turns.Done()
		s.turn(ctx, body)
		s.mu.Lock()
		s.busy, s.ended = false, false
		close(s.done)
		closing := s.closing
		s.mu.Unlock()
		if closing != "" {
			closeConn(s.c, closing)
		}
	}()
}

// turnBody is a response.create frame as a POST /v1/responses body: the
// same fields without the event's type and the socket-only stream_id,
// always streamed (the events are the answer).
func turnBody(frame []byte) ([]byte, *apierror.Error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(frame, &fields); err != nil {
		return nil, apierror.InvalidEvent("response.create must be a JSON object: %v", err)
	}
	if bg, ok := fields["background"]; ok && string(bg) == "true" {
		return nil, apierror.InvalidValue("background", "background responses are not supported over WebSocket")
	}
	delete(fields, "type")
	delete(fields, "stream_id")
	fields["stream"] = json.RawMessage("true")
	body, err := json.Marshal(fields)
	if err != nil {
		return nil, apierror.InvalidEvent("response.create could not be read: %v", err)
	}
	return body, nil
}

// closeWhenIdle closes the socket with a going-away code now if no turn
// runs, else once the running one has finished.
func (s *socket) closeWhenIdle(reason string) {
	s.mu.Lock()
	if s.closing == "" {
		s.closing = reason
	}
	c, busy := s.c, s.busy
	s.mu.Unlock()
	if c != nil && !busy {
		closeConn(c, reason)
	}
}

// closeConn closes a socket cleanly; 1001 (going away) tells clients (the
// openai SDK's reconnect, the Codex CLI) to open a new one. It does not
// wait for the client's close frame: the socket's reader sees it.
func closeConn(c *websocket.Conn, reason string) {
	go func() { _ = c.Close(websocket.StatusGoingAway, reason) }()
}

// sendError sends e as an error event: the official SDK surfaces it as an
// error and keeps the socket; the Codex CLI reads status and headers.
func (s *socket) sendError(ctx context.Context, e *apierror.Error, retry time.Duration) {
	h := http.Header{}
	apierror.SetRetryAfter(h, retry)
	_ = s.c.Write(ctx, websocket.MessageText, errorEvent(e.Status, e.JSON(), h.Get("Retry-After")))
}

// errorEvent is the WebSocket error event of an error answered before any
// output, made of the HTTP answer it would have been (status, the OpenAI
// envelope {"error":{…}} and its Retry-After): {"type":"error",
// "status":…,"error":{…},"headers":{"retry-after":…}}, as the backend
// sends it.
func errorEvent(status int, envelope []byte, retryAfter string) []byte {
	obj, ok := unwrapError(envelope)
	if !ok { // not the proxy's own shape: say what the client can act on
		obj, _ = unwrapError(apierror.UpstreamFailed().JSON())
	}
	ev := struct {
		Type    string            `json:"type"`
		Status  int               `json:"status"`
		Error   json.RawMessage   `json:"error"`
		Headers map[string]string `json:"headers,omitempty"`
	}{Type: "error", Status: status, Error: obj}
	if retryAfter != "" {
		ev.Headers = map[string]string{"retry-after": retryAfter}
	}
	b, _ := json.Marshal(ev)
	return b
}

// unwrapError is the error object inside an OpenAI error envelope.
func unwrapError(envelope []byte) (json.RawMessage, bool) {
	var env struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(envelope, &env) != nil || len(env.Error) == 0 || env.Error[0] != '{' {
		return nil, false
	}
	return env.Error, true
}
