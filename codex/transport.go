package codex

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"time"
)

// errRedirectRefused stops a redirect that would carry the bearer token
// (and the relay token) to another host.
var errRedirectRefused = errors.New("codex: upstream redirected to another host; refused")

// newTransport builds the keep-alive, HTTP/2 transport used for upstream
// calls. There is no overall timeout: streams last minutes; the idle reader
// bounds silence instead. The response header timeout is not set here:
// send enforces it itself (see attempt), so it can tell it apart.
func newTransport(cfg Config) *http.Transport {
	dial := durOr(cfg.DialTimeout, 10*time.Second)
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   dial,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   durOr(cfg.TLSHandshakeTimeout, 10*time.Second),
		ExpectContinueTimeout: time.Second,
	}
}

// sameHostRedirects follows at most a few redirects and only within the
// host (and scheme) requests were sent to. Go strips Authorization on
// cross-host redirects but not ChatGPT-Account-ID or X-Relay-Token, so the
// safe rule is to refuse any host change (docs/protocol.md#redirects).
func sameHostRedirects(base *url.URL) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return errors.New("codex: too many upstream redirects")
		}
		if req.URL.Host != base.Host || (base.Scheme == "https" && req.URL.Scheme != "https") {
			return errRedirectRefused
		}
		return nil
	}
}

// backoff returns the delay before retry n (0-based): base·2ⁿ·jitter.
func (c *Client) backoff(n int) time.Duration {
	d := c.retryBase << min(n, 10)
	return time.Duration(float64(d) * c.jitter())
}

// sleepCtx waits for d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func durOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
