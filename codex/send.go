package codex

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"

	"github.com/usemysub/caddy-codex-proxy/translate"
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
// forced token refresh on 401, and up to maxRetries times (with jittered
// back-off) on connection errors and 5xx; never on 429 or other 4xx (§8.3).
// Nothing has reached the caller before send returns, so retrying is safe.
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
		reqCtx, cancel := context.WithCancelCause(ctx)
		req, err := c.newRequest(reqCtx, cl, token, accountID)
		if err != nil {
			cancel(err)
			return nil, &UpstreamError{Err: &translate.Error{Status: http.StatusInternalServerError, Message: "Could not build the upstream request."}, Cause: err}
		}
		resp, err := c.http.Do(req)
		if err != nil {
			cancel(err)
			if ctx.Err() != nil {
				return nil, contextError(ctx.Err())
			}
			if errors.Is(err, errRedirectRefused) {
				return nil, &UpstreamError{Err: &translate.Error{Status: http.StatusBadGateway, Code: CodeUpstreamError,
					Message: "The Codex upstream redirected to another host; the proxy refused to follow it."}, Cause: errRedirectRefused}
			}
			if retries < c.maxRetries {
				if err := c.sleep(ctx, c.backoff(retries)); err != nil {
					return nil, contextError(err)
				}
				retries++
				continue
			}
			return nil, &UpstreamError{Err: &translate.Error{Status: http.StatusBadGateway, Code: CodeUpstreamUnreachable,
				Message: "Could not reach the Codex upstream; try again later."}, Cause: err}
		}
		if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
			return &sent{resp: resp, cancel: cancel, accountID: accountID}, nil
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		resp.Body.Close()
		cancel(context.Canceled)

		switch {
		case resp.StatusCode == http.StatusUnauthorized && !refreshed:
			refreshed = true
			token, accountID, err = ts.AccessToken(ctx, true)
			if err != nil {
				return nil, tokenSourceError(ctx, err)
			}
			continue
		case resp.StatusCode >= 500 && retries < c.maxRetries:
			if err := c.sleep(ctx, c.backoff(retries)); err != nil {
				return nil, contextError(err)
			}
			retries++
			continue
		}
		return nil, ParseUpstreamError(resp.StatusCode, resp.Header, body)
	}
}

// newRequest builds the request with the Codex headers (§3.1). The
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
	if !validHeaderValue(token) || !validHeaderValue(accountID) {
		// Never echo the token: just say it is unusable.
		return nil, errors.New("codex: token or account id contains characters not allowed in a header")
	}
	h := req.Header
	h.Set("Authorization", "Bearer "+token)
	if accountID != "" {
		h.Set("ChatGPT-Account-ID", accountID)
	}
	h.Set("originator", c.originator)
	h.Set("User-Agent", c.userAgent)
	h.Set("version", c.version)
	h.Set("Accept", cl.accept)
	if cl.body != nil {
		h.Set("Content-Type", "application/json")
	}
	if c.relay {
		h.Set(RelayTokenHeader, c.relayToken)
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
	var te *translate.Error
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
	return &UpstreamError{Err: &translate.Error{Status: http.StatusBadGateway, Code: CodeTokenUnavailable,
		Message: "Could not obtain a ChatGPT access token for this account; try again shortly."}, Cause: err}
}

// contextError reports the caller's cancellation or deadline.
func contextError(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return &UpstreamError{Err: &translate.Error{Status: http.StatusGatewayTimeout, Code: CodeUpstreamError,
			Message: "Timed out waiting for the Codex upstream."}, Cause: err}
	}
	// 499: the client went away; nobody reads this status, but logs do.
	return &UpstreamError{Err: &translate.Error{Status: 499, Message: "The request was cancelled."}, Cause: err}
}
