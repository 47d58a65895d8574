package api

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/usemysub/caddy-codex-proxy/codex"
)

// The backend's WebSocket for client sockets (docs/architecture.md#upstream-socket).
// A client socket's turns go upstream over one WebSocket of the backend's
// own, dialed on the socket's first turn on the account that turn was
// routed to and closed with the client socket. Its gain is the upload: the
// backend keeps the connection's last response, so a turn that continues
// it sends only its new items with previous_response_id, instead of the
// whole rebuilt conversation every turn.
//
// Everything else stays as on HTTP: the turn is translated, admitted,
// routed (failing over before any output), relayed and recorded by the
// same code; only send's transport differs, and the upstream's events are
// handed to the relay as the SSE stream they would have been. Whenever the
// socket cannot carry a turn with certainty — the upgrade is refused (and
// then not asked again on that account for socketRefusalTTL), the socket
// dropped since the last turn, the turn was routed to another account, or
// the upstream does not know the response the turn continues — the turn
// goes over HTTP/SSE with its whole input, as it would without a socket
// (and a socket on another account is closed, so the next turn dials on
// the account it is routed to).
// A generation is sent again only when its first frame provably started
// nothing: an error event before any output.

// SocketUpstream is an Upstream that can also open the backend's
// /responses WebSocket; *codex.Client is one. A Config.Upstream that is not
// serves client sockets over HTTP.
type SocketUpstream interface {
	DialResponses(ctx context.Context, ts codex.TokenSource, h codex.RequestHeaders) (*codex.Socket, error)
}

// upstreamConn is what a link needs of an upstream socket (*codex.Socket).
type upstreamConn interface {
	Send(ctx context.Context, frame []byte) error
	Next(ctx context.Context) ([]byte, error)
	Ping(ctx context.Context) error
	Close() error
}

// socketRefusalTTL is how long an account whose upstream refused the
// upgrade is served over HTTP without asking again: a refusing upstream
// costs one failed dial per account and period, not one per turn.
const socketRefusalTTL = 10 * time.Minute

// socketDialTimeout bounds the upgrade; past it the turn goes over HTTP.
const socketDialTimeout = 10 * time.Second

// errUseHTTP says a turn must go over HTTP: nothing of it reached the
// upstream socket.
var errUseHTTP = errors.New("api: this turn goes upstream over HTTP")

// refusals remembers the accounts whose upstream refused the upgrade, by
// user and account, until when. The zero value is empty.
type refusals struct {
	mu    sync.Mutex
	until map[[2]string]time.Time
}

func (r *refusals) refused(user, acct string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	until, ok := r.until[[2]string{user, acct}]
	if ok && time.Now().After(until) {
		delete(r.until, [2]string{user, acct})
		return false
	}
	return ok
}

func (r *refusals) note(user, acct string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.until == nil {
		r.until = map[[2]string]time.Time{}
	}
	now := time.Now()
	for k, t := range r.until { // few entries: drop the expired ones as we go
		if now.After(t) {
			delete(r.until, k)
		}
	}
	r.until[[2]string{user, acct}] = now.Add(socketRefusalTTL)
}

// upstreamLink is a client socket's side of its upstream socket: none
// until a turn dials it, none again once it dropped. Turns use it one at a
// time (a client socket runs one turn at a time); close may come at any
// moment, from the client socket's end.
type upstreamLink struct {
	mu     sync.Mutex
	conn   *upSocket
	closed bool
}

// close closes the upstream socket for good: the client socket ended.
func (l *upstreamLink) close() {
	if l == nil {
		return
	}
	l.mu.Lock()
	c := l.conn
	l.conn, l.closed = nil, true
	l.mu.Unlock()
	if c != nil {
		c.close()
	}
}

// drop forgets c (it broke, or a turn on it ended unfinished) and closes it.
func (l *upstreamLink) drop(c *upSocket) {
	l.mu.Lock()
	if l.conn == c {
		l.conn = nil
	}
	l.mu.Unlock()
	c.close()
}

// newLink is a client socket's upstream link, nil when client sockets go
// upstream over HTTP (upstream_socket off, or an Upstream that cannot dial).
func (h *Handler) newLink() *upstreamLink {
	if _, ok := h.cfg.Upstream.(SocketUpstream); !ok || !h.cfg.upstreamSocket() {
		return nil
	}
	return &upstreamLink{}
}

// sendSocket is send for a client socket's turn: on its upstream socket
// when that can carry it, else over HTTP, on the user's accounts in
// route order as send does.
func (h *Handler) sendSocket(ctx context.Context, req *request, body []byte, hdr codex.RequestHeaders) (*codex.Stream, error) {
	return h.sendWith(ctx, req, hdr, func(ts codex.TokenSource) (*codex.Stream, error) {
		up, err := h.socketTurn(ctx, req, ts, body, hdr)
		if errors.Is(err, errUseHTTP) {
			return h.cfg.Upstream.Responses(ctx, ts, body, hdr)
		}
		return up, err
	})
}

// socketTurn sends one turn on the link's upstream socket for req.account,
// dialing it first if there is none. errUseHTTP means the turn must go
// over HTTP, nothing of it having been sent.
func (h *Handler) socketTurn(ctx context.Context, req *request, ts codex.TokenSource, body []byte, hdr codex.RequestHeaders) (*codex.Stream, error) {
	l := req.link
	l.mu.Lock()
	c, closed := l.conn, l.closed
	l.mu.Unlock()
	switch {
	case closed:
		return nil, errUseHTTP
	case c != nil && c.isDead():
		// Dropped since the last turn (the backend's age limit, a network
		// failure): this turn over HTTP, the next one on a new socket.
		h.log.Debug("upstream WebSocket dropped between turns; this turn goes over HTTP",
			zap.String("request_id", req.id), zap.Error(c.cause()))
		l.drop(c)
		return nil, errUseHTTP
	case c != nil && c.account != req.account:
		// Routed elsewhere (a failover, a pin changed): the socket's chain
		// is not there. This turn goes over HTTP; the next one dials on
		// the account it is routed to, so the socket follows the account.
		l.drop(c)
		return nil, errUseHTTP
	case c == nil:
		var err error
		if c, err = h.dialLink(ctx, req, ts, hdr); err != nil {
			return nil, err
		}
	}
	return c.turn(ctx, req, body)
}

// dialLink opens the link's upstream socket on req.account.
func (h *Handler) dialLink(ctx context.Context, req *request, ts codex.TokenSource, hdr codex.RequestHeaders) (*upSocket, error) {
	if h.socketRefusals.refused(req.user.ID, req.account) {
		return nil, errUseHTTP
	}
	dctx, cancel := context.WithTimeout(ctx, socketDialTimeout)
	defer cancel()
	s, err := h.cfg.Upstream.(SocketUpstream).DialResponses(dctx, ts, hdr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// A refused upgrade is remembered, but not a refused token: the
		// HTTP request refreshes it, and the next turn may dial again.
		var sr *codex.SocketRefusal
		if errors.Is(err, codex.ErrSocketRefused) && !(errors.As(err, &sr) && sr.Status == http.StatusUnauthorized) {
			h.socketRefusals.note(req.user.ID, req.account)
		}
		h.log.Debug("upstream WebSocket unavailable; the turn goes over HTTP", zap.String("request_id", req.id),
			zap.String("account", req.account), zap.Error(err))
		return nil, errUseHTTP
	}
	c := newUpSocket(s, req.account, h.socketIdle, h.socketKeepalive)
	l := req.link
	l.mu.Lock()
	closed := l.closed
	if !closed {
		l.conn = c
	}
	l.mu.Unlock()
	if closed { // the client socket ended during the dial
		c.close()
		return nil, context.Canceled
	}
	return c, nil
}
