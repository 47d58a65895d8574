package codex

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/usemysub/caddy-codex-proxy/apierror"
)

// maxErrorBody bounds how much of a failed answer is read for mapping.
const maxErrorBody = 1 << 20

// call describes one upstream request.
type call struct {
	method string
	path   string
	query  url.Values
	body   []byte
	accept string
	// header adds call-specific headers.
	header func(http.Header)
}

// sent is a successful (2xx) upstream answer.
type sent struct {
	resp      *http.Response
	cancel    context.CancelCauseFunc
	accountID string
}

// send performs c with the auth headers from ts. It retries once after a
// forced token refresh on 401, and up to maxRetries times with jittered
// back-off (docs/protocol.md#retries): on a 5xx answer, which the official client retries too,
// and on transport failures, but for a generation (POST) only when the
// request provably never left the machine (ErrUnreachable). A header
// timeout or a connection lost after the request was written is final for
// a POST: the backend may have started the turn, and every start can count
// against the user's ChatGPT quota. Never on 429 or other 4xx. Nothing has
// reached the caller before send returns.
func (c *Client) send(ctx context.Context, ts TokenSource, cl call) (*sent, error) {
	if ts == nil {
		return nil, newErr(http.StatusInternalServerError, CodeTokenUnavailable, "No ChatGPT account is linked for this request.")
	}
	token, accountID, err := ts.AccessToken(ctx, false)
	if err != nil {
		return nil, tokenSourceError(ctx, err)
	}
	refreshed := false
	retries := 0
	for {
		if err := ctx.Err(); err != nil {
			return nil, contextError(err)
		}
		at, reqCtx := startAttempt(ctx, c.headerTimeout)
		req, err := c.newRequest(reqCtx, cl, token, accountID)
		if err != nil {
			at.stop()
			at.cancel(err)
			return nil, &UpstreamError{Err: &apierror.Error{Status: http.StatusInternalServerError, Message: "Could not build the upstream request."}, Cause: err}
		}
		resp, err := c.http.Do(req)
		if at.stop() && err == nil {
			// The deadline passed as the headers arrived: the body is
			// cancelled already, so this is a timeout all the same.
			resp.Body.Close()
			err = ErrHeaderTimeout
		}
		if err != nil {
			at.cancel(err)
			if ctx.Err() != nil {
				return nil, contextError(ctx.Err())
			}
			if errors.Is(err, errRedirectRefused) {
				return nil, &UpstreamError{Err: &apierror.Error{Status: http.StatusBadGateway, Code: CodeUpstreamError,
					Message: "The Codex upstream redirected to another host; the proxy refused to follow it."}, Cause: errRedirectRefused}
			}
			kind := ErrConnectionLost
			switch {
			case errors.Is(context.Cause(reqCtx), ErrHeaderTimeout) || errors.Is(err, ErrHeaderTimeout):
				kind = ErrHeaderTimeout
			case !at.mayHaveSent():
				kind = ErrUnreachable
			}
			if retries < c.maxRetries && (kind == ErrUnreachable || idempotent(cl.method)) {
				if err := c.sleep(ctx, c.backoff(retries)); err != nil {
					return nil, contextError(err)
				}
				retries++
				continue
			}
			return nil, transportError(kind, err, c.headerTimeout)
		}
		if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
			return &sent{resp: resp, cancel: at.cancel, accountID: accountID}, nil
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		resp.Body.Close()
		at.cancel(context.Canceled)

		switch {
		case resp.StatusCode == http.StatusUnauthorized && !refreshed:
			// The upstream refused the token: nothing was started.
			refreshed = true
			token, accountID, err = ts.AccessToken(ctx, true)
			if err != nil {
				return nil, tokenSourceError(ctx, err)
			}
			continue
		case resp.StatusCode >= 500 && retries < c.maxRetries:
			// An HTTP answer before any event: the official client
			// retries these too (docs/protocol.md#retries).
			if err := c.sleep(ctx, c.backoff(retries)); err != nil {
				return nil, contextError(err)
			}
			retries++
			continue
		}
		return nil, ParseUpstreamError(resp.StatusCode, resp.Header, body)
	}
}

// idempotent reports whether a request may be sent again after it may
// have reached the upstream.
func idempotent(method string) bool {
	return method == http.MethodGet || method == http.MethodHead
}

// transportError is the client-facing error for a round trip that got no
// HTTP answer; kind is one of the transport sentinels, kept with err in
// Cause for errors.Is and logs.
func transportError(kind, err error, headerTimeout time.Duration) *UpstreamError {
	cause := err
	if !errors.Is(err, kind) {
		cause = fmt.Errorf("%w: %w", kind, err)
	}
	var te *apierror.Error
	switch kind {
	case ErrHeaderTimeout:
		te = &apierror.Error{Status: http.StatusGatewayTimeout, Type: "server_error", Code: CodeUpstreamTimeout,
			Message: fmt.Sprintf("The Codex upstream did not answer in time (no response within %s). "+
				"The request was not re-sent, so that it cannot run twice; retry it later.", headerTimeout)}
	case ErrUnreachable:
		te = &apierror.Error{Status: http.StatusBadGateway, Code: CodeUpstreamUnreachable,
			Message: "Could not reach the Codex upstream; try again later."}
	default:
		te = &apierror.Error{Status: http.StatusBadGateway, Code: CodeUpstreamError,
			Message: "The connection to the Codex upstream failed after the request was sent. " +
				"It was not re-sent, so that it cannot run twice; retry it later."}
	}
	return &UpstreamError{Err: te, Cause: cause}
}

// newRequest builds the request with the Codex headers (docs/protocol.md#headers). The
// downstream client's headers never get here: only what the caller passes.
func (c *Client) newRequest(ctx context.Context, cl call, token, accountID string) (*http.Request, error) {
	var body io.Reader
	if cl.body != nil {
		body = bytes.NewReader(cl.body)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, c.endpoint(cl.path, cl.query), body)
	if err != nil {
		return nil, err
	}
	shared, err := c.accountHeaders(token, accountID)
	if err != nil {
		return nil, err // never echoes the token: just says it is unusable
	}
	h := newHeader(shared, 6)
	req.Header = h
	h["Accept"] = []string{cl.accept}
	if cl.body != nil {
		h["Content-Type"] = []string{"application/json"}
	}
	if cl.header != nil {
		cl.header(h)
	}
	return req, nil
}

// tokenSourceError maps a TokenSource failure. A permanent failure (dead
// refresh token) tells the user to re-link; others are transient.
func tokenSourceError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return contextError(ctx.Err())
	}
	var ue *UpstreamError
	if errors.As(err, &ue) {
		return ue
	}
	var te *apierror.Error
	if errors.As(err, &te) {
		return &UpstreamError{Err: te, Cause: err}
	}
	var p interface{ Permanent() bool }
	if errors.As(err, &p) && p.Permanent() {
		e := unauthorizedError("")
		e.Err.Message = "The ChatGPT sign-in linked to this API key has expired or was revoked. " + relinkMessage
		e.Cause = err
		return e
	}
	return &UpstreamError{Err: &apierror.Error{Status: http.StatusBadGateway, Code: CodeTokenUnavailable,
		Message: "Could not obtain a ChatGPT access token for this account; try again shortly."}, Cause: err}
}

// contextError reports the caller's cancellation or deadline.
func contextError(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return &UpstreamError{Err: &apierror.Error{Status: http.StatusGatewayTimeout, Code: CodeUpstreamError,
			Message: "Timed out waiting for the Codex upstream."}, Cause: err}
	}
	return &UpstreamError{Err: &apierror.Error{Status: apierror.StatusClientGone, Message: "The request was cancelled."}, Cause: err}
}
