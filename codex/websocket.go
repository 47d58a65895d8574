package codex

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// WebSocketBeta is the OpenAI-Beta value the official Codex client sends
// when it upgrades {upstream}/responses to a WebSocket
// (docs/protocol.md#websocket).
const WebSocketBeta = "responses_websockets=2026-02-06"

// ErrSocketRefused reports that the upstream did not upgrade /responses to
// a WebSocket (or that this client cannot, e.g. through a relay). Nothing
// was generated: the caller falls back to HTTP/SSE with the full input.
var ErrSocketRefused = errors.New("codex: upstream refused the WebSocket upgrade")

// SocketRefusal is the ErrSocketRefused of an upgrade the upstream
// answered with another status than 101.
type SocketRefusal struct {
	// Status is the upstream's answer: 405 from an upstream that speaks
	// only HTTP, 401 for a token it did not take.
	Status int
}

func (e *SocketRefusal) Error() string {
	return fmt.Sprintf("%s (status %d)", ErrSocketRefused, e.Status)
}

// Is makes a SocketRefusal an ErrSocketRefused for errors.Is.
func (e *SocketRefusal) Is(target error) bool { return target == ErrSocketRefused }

// maxSocketFrame bounds one upstream event; real deltas stay far below it,
// and an encrypted reasoning item can reach MiBs.
const maxSocketFrame = 64 << 20

// Socket is one WebSocket to the backend's /responses for one account. It
// carries one response at a time; the backend chains previous_response_id
// only to the last response completed on the same Socket. Send and Next
// must not be called concurrently with themselves; Close may be called at
// any time and ends a running response upstream.
type Socket struct {
	c *websocket.Conn
	// AccountID is the account the socket was opened for.
	AccountID string
	// Header holds the upgrade response's headers.
	Header http.Header
}

// DialResponses opens the backend's /responses WebSocket with the
// account's token and the official client's headers. A refused upgrade
// (any non-101 answer, or a relay in between) is ErrSocketRefused; other
// failures are returned wrapped.
func (c *Client) DialResponses(ctx context.Context, ts TokenSource, h RequestHeaders) (*Socket, error) {
	if c.relay {
		// The relay forwards HTTP requests only.
		return nil, ErrSocketRefused
	}
	if ts == nil {
		return nil, newErr(http.StatusInternalServerError, CodeTokenUnavailable, "No ChatGPT account is linked for this request.")
	}
	token, accountID, err := ts.AccessToken(ctx, false)
	if err != nil {
		return nil, tokenSourceError(ctx, err)
	}
	req, err := c.newRequest(ctx, call{method: http.MethodGet, path: "/responses", accept: ""}, token, accountID)
	if err != nil {
		return nil, err
	}
	hd := req.Header.Clone()
	hd.Del("Accept")
	hd.Set("OpenAI-Beta", WebSocketBeta)
	if h.PromptCacheKey != "" && validHeaderValue(h.PromptCacheKey) {
		hd["session_id"] = []string{h.PromptCacheKey}
		hd["Session-Id"] = []string{h.PromptCacheKey}
	}
	reqID := h.RequestID
	if reqID == "" {
		reqID = rand.Text()
	}
	if validHeaderValue(reqID) {
		hd.Set("x-client-request-id", reqID)
	}
	u := "ws" + strings.TrimPrefix(req.URL.String(), "http")
	conn, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: c.http, HTTPHeader: hd})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, &SocketRefusal{Status: resp.StatusCode}
		}
		return nil, fmt.Errorf("codex: upstream socket: %w", contextError(err))
	}
	conn.SetReadLimit(maxSocketFrame)
	return &Socket{c: conn, AccountID: accountID, Header: resp.Header}, nil
}

// Send writes one frame (a response.create). After an error the frame may
// or may not have reached the upstream: a caller must not resend the
// generation elsewhere unless it knows nothing was written.
func (s *Socket) Send(ctx context.Context, frame []byte) error {
	if err := s.c.Write(ctx, websocket.MessageText, frame); err != nil {
		return fmt.Errorf("%w: %w", ErrConnectionLost, err)
	}
	return nil
}

// Next reads the next event (one JSON object per text frame).
func (s *Socket) Next(ctx context.Context) ([]byte, error) {
	_, b, err := s.c.Read(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConnectionLost, err)
	}
	return b, nil
}

// Ping pings the upstream and waits for its pong, which a concurrent Next
// reads; a socket whose peer is gone (a NAT that dropped it) fails it.
func (s *Socket) Ping(ctx context.Context) error {
	if err := s.c.Ping(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrConnectionLost, err)
	}
	return nil
}

// Close closes the socket; a running response ends upstream with it.
func (s *Socket) Close() error { return s.c.CloseNow() }

// IdleTimeout is how long a stream may stay silent (Config.IdleTimeout
// with its default); a Socket's user applies it between events.
func (c *Client) IdleTimeout() time.Duration { return c.idle }
