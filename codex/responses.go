package codex

import (
	"context"
	"crypto/rand"
	"io"
	"net/http"
)

// RequestHeaders are the per-request values the caller chooses.
type RequestHeaders struct {
	// PromptCacheKey is the body's prompt_cache_key; it is also sent as the
	// session-id, thread-id and session_id headers so the backend can route
	// the turn to a warm cache (docs/protocol.md#prompt-cache). Empty omits
	// the headers.
	PromptCacheKey string
	// RequestID is sent as x-client-request-id; a random id when empty.
	RequestID string
}

// Stream is a successful Responses call: the SSE body plus what the
// upstream said in its headers. Close must be called.
type Stream struct {
	// Body is the SSE body. Reads fail with ErrIdleTimeout when the
	// upstream stays silent for the idle timeout.
	Body io.ReadCloser
	// Header holds the upstream response headers.
	Header http.Header
	// RateLimits is the usage snapshot from the headers; nil when absent.
	RateLimits *RateLimits
	// AccountID is the account the request was finally sent for.
	AccountID string
	// RequestID is the upstream's request id (x-request-id or cf-ray).
	RequestID string
}

// Read reads the SSE body.
func (s *Stream) Read(p []byte) (int, error) { return s.Body.Read(p) }

// Close closes the body and cancels the upstream request.
func (s *Stream) Close() error { return s.Body.Close() }

// Responses sends body (a Codex Responses request, already translated) to
// POST {upstream}/responses and returns the event stream. Errors are
// *UpstreamError values; the body is sent unchanged.
func (c *Client) Responses(ctx context.Context, ts TokenSource, body []byte, h RequestHeaders) (*Stream, error) {
	return c.post(ctx, ts, "/responses", "text/event-stream", body, h)
}

// Compact sends body (a compaction request: model, input, instructions,
// tools … as the Codex CLI sends them) to POST {upstream}/responses/compact
// and returns its answer, one JSON body (not a stream), for the caller to
// read and close. Errors are *UpstreamError values, as for Responses.
func (c *Client) Compact(ctx context.Context, ts TokenSource, body []byte, h RequestHeaders) (*Stream, error) {
	return c.post(ctx, ts, "/responses/compact", "application/json", body, h)
}

// post sends a generation's body to path with the turn's headers and
// returns the answer's body with its headers and rate limits.
func (c *Client) post(ctx context.Context, ts TokenSource, path, accept string, body []byte, h RequestHeaders) (*Stream, error) {
	reqID := h.RequestID
	if reqID == "" {
		reqID = rand.Text()
	}
	s, err := c.send(ctx, ts, call{
		method: http.MethodPost,
		path:   path,
		body:   body,
		accept: accept,
		header: func(hd http.Header) {
			if h.PromptCacheKey != "" && validHeaderValue(h.PromptCacheKey) {
				// As the official client sends them: session-id and
				// thread-id (the backend's cache affinity follows
				// session-id), plus the older session_id
				// (docs/protocol.md#prompt-cache). Set would canonicalize
				// the names, so assign.
				hd["session_id"] = []string{h.PromptCacheKey}
				hd["session-id"] = []string{h.PromptCacheKey}
				hd["thread-id"] = []string{h.PromptCacheKey}
			}
			if validHeaderValue(reqID) {
				hd.Set("x-client-request-id", reqID)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	st := &Stream{
		Body:      newIdleReader(s.resp.Body, c.idle, s.cancel),
		Header:    s.resp.Header,
		AccountID: s.accountID,
		RequestID: firstNonEmpty(s.resp.Header.Get("x-request-id"), s.resp.Header.Get("x-oai-request-id"), s.resp.Header.Get("cf-ray")),
	}
	if rl, ok := ParseRateLimits(s.resp.Header); ok {
		st.RateLimits = &rl
	}
	return st, nil
}
