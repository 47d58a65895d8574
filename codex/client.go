package codex

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Defaults used when the matching Config field is empty.
const (
	// DefaultUpstream is the Codex backend base URL for ChatGPT-token auth (docs/protocol.md#endpoints).
	DefaultUpstream = "https://chatgpt.com/backend-api/codex"
	// DefaultOriginator is the official CLI's originator header value (docs/protocol.md#headers).
	DefaultOriginator = "codex_cli_rs"
	// DefaultClientVersion is the Codex CLI version announced in the version
	// header, the User-Agent and the models query.
	DefaultClientVersion = "0.171.0"
	// DefaultIdleTimeout is the official client's idle limit between stream
	// events (docs/protocol.md#idle-timeout).
	DefaultIdleTimeout = 300 * time.Second
	// DefaultMaxRetries bounds the retries of connection errors and 5xx.
	DefaultMaxRetries = 2
	// DefaultRetryBase is the first back-off delay; it doubles per retry (docs/protocol.md#retries).
	DefaultRetryBase = 200 * time.Millisecond
	// DefaultHeaderTimeout bounds the wait for response headers once the
	// request is written. The backend answers a turn with its headers and
	// response.created at once, before any reasoning (docs/protocol.md#events: rate-limit and
	// model headers come at stream start), so headers take seconds even
	// for long answers; silence for a minute means the backend hung. A
	// minute still leaves room for a queued backend and for uploading a
	// large request with images, and it fails well before clients' and
	// load balancers' own timeouts would cut the request without an error.
	DefaultHeaderTimeout = 60 * time.Second
)

// RelayTokenHeader carries Config.RelayToken to the relay.
const RelayTokenHeader = "X-Relay-Token"

// Config configures a Client. The zero value talks to chatgpt.com directly.
type Config struct {
	// Upstream is the backend base URL; DefaultUpstream when empty.
	Upstream string
	// Originator is sent as the originator header and starts the
	// User-Agent; DefaultOriginator when empty.
	Originator string
	// ClientVersion is the Codex CLI version to announce;
	// DefaultClientVersion when empty.
	ClientVersion string
	// UserAgent overrides the Codex-style User-Agent built from Originator
	// and ClientVersion.
	UserAgent string
	// RelayURL, when set, receives all upstream traffic instead of Upstream:
	// a request for {Upstream}/responses goes to {RelayURL}/responses. It must
	// be https unless it points at a loopback host.
	RelayURL string
	// RelayToken is sent to the relay in the X-Relay-Token header; required
	// with RelayURL so the relay is never an open proxy for bearer tokens.
	RelayToken string
	// IdleTimeout cancels a stream when no byte arrives for this long;
	// DefaultIdleTimeout when zero.
	IdleTimeout time.Duration
	// MaxRetries bounds the retries of connection errors and 5xx answers;
	// DefaultMaxRetries when zero, no retries when negative. A generation
	// (POST /responses) is retried after a transport failure only when it
	// never left the machine (ErrUnreachable); a GET is retried after any.
	MaxRetries int
	// RetryBase is the first retry delay (±10% jitter, doubling);
	// DefaultRetryBase when zero.
	RetryBase time.Duration
	// DialTimeout and TLSHandshakeTimeout tune the default transport;
	// 10 s each when zero.
	DialTimeout         time.Duration
	TLSHandshakeTimeout time.Duration
	// ResponseHeaderTimeout bounds writing the request and then waiting for
	// the response headers, on any transport; DefaultHeaderTimeout when
	// zero or negative. A generation that hits it ends in a 504
	// upstream_timeout and is not re-sent (ErrHeaderTimeout).
	ResponseHeaderTimeout time.Duration
	// Transport replaces the tuned default transport (tests, custom TLS).
	// Redirect policy and idle timeout still apply.
	Transport http.RoundTripper
}

// Client calls the Codex backend. It is safe for concurrent use and holds
// no per-user state: tokens come from the TokenSource passed to each call.
type Client struct {
	base       *url.URL // where requests go: the relay or the upstream
	relay      bool
	relayToken string
	originator string
	version    string
	userAgent  string
	idle       time.Duration
	maxRetries int
	retryBase  time.Duration
	// headerTimeout: see Config.ResponseHeaderTimeout.
	headerTimeout time.Duration
	http          *http.Client
	// headers are the accounts' shared request headers (headers.go).
	headers headerCache
	// urls caches endpoint's answer for each path without a query.
	urls sync.Map

	// sleep waits between retries; tests replace it to stay fast.
	sleep func(ctx context.Context, d time.Duration) error
	// jitter returns a factor in [0.9, 1.1).
	jitter func() float64
}

// NewClient validates cfg and builds a Client.
func NewClient(cfg Config) (*Client, error) {
	upstream := cfg.Upstream
	if upstream == "" {
		upstream = DefaultUpstream
	}
	base, err := parseBaseURL("upstream", upstream)
	if err != nil {
		return nil, err
	}
	c := &Client{
		base:       base,
		originator: orDefault(cfg.Originator, DefaultOriginator),
		version:    orDefault(cfg.ClientVersion, DefaultClientVersion),
		idle:       cfg.IdleTimeout,
		maxRetries: cfg.MaxRetries,
		retryBase:  cfg.RetryBase,
		sleep:      sleepCtx,
		jitter:     func() float64 { return 0.9 + 0.2*rand.Float64() },
	}
	if cfg.RelayURL != "" {
		relay, err := parseBaseURL("relay", cfg.RelayURL)
		if err != nil {
			return nil, err
		}
		if cfg.RelayToken == "" {
			return nil, errors.New("codex: relay URL set without a relay token")
		}
		if !validHeaderValue(cfg.RelayToken) {
			return nil, errors.New("codex: relay token contains characters not allowed in a header")
		}
		c.base, c.relay, c.relayToken = relay, true, cfg.RelayToken
	}
	for name, v := range map[string]string{"originator": c.originator, "client version": c.version, "user agent": cfg.UserAgent} {
		if !validHeaderValue(v) {
			return nil, fmt.Errorf("codex: %s contains characters not allowed in a header", name)
		}
	}
	c.userAgent = cfg.UserAgent
	if c.userAgent == "" {
		c.userAgent = BuildUserAgent(c.originator, c.version)
	}
	if c.idle <= 0 {
		c.idle = DefaultIdleTimeout
	}
	switch {
	case c.maxRetries == 0:
		c.maxRetries = DefaultMaxRetries
	case c.maxRetries < 0:
		c.maxRetries = 0
	}
	if c.retryBase <= 0 {
		c.retryBase = DefaultRetryBase
	}
	c.headerTimeout = durOr(cfg.ResponseHeaderTimeout, DefaultHeaderTimeout)
	rt := cfg.Transport
	if rt == nil {
		rt = newTransport(cfg)
	}
	c.http = &http.Client{Transport: rt, CheckRedirect: sameHostRedirects(c.base)}
	return c, nil
}

// UserAgent returns the User-Agent sent upstream.
func (c *Client) UserAgent() string { return c.userAgent }

// BaseURL returns where requests are sent: the relay when one is
// configured, else the upstream.
func (c *Client) BaseURL() string { return c.base.String() }

// endpoint joins the base URL and a path such as "/responses".
func (c *Client) endpoint(path string, query url.Values) string {
	if len(query) == 0 {
		if u, ok := c.urls.Load(path); ok {
			return u.(string)
		}
		u := c.buildEndpoint(path, nil)
		c.urls.Store(path, u) // a handful of fixed paths
		return u
	}
	return c.buildEndpoint(path, query)
}

// buildEndpoint is endpoint without the cache.
func (c *Client) buildEndpoint(path string, query url.Values) string {
	u := *c.base
	u.Path = strings.TrimRight(u.Path, "/") + path
	u.RawPath = ""
	u.RawQuery = query.Encode()
	return u.String()
}

// parseBaseURL checks that raw is an absolute http(s) URL, https unless the
// host is loopback, without credentials, query or fragment.
func parseBaseURL(what, raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" || u.Opaque != "" {
		return nil, fmt.Errorf("codex: %s URL %q is not an absolute URL", what, raw)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return nil, fmt.Errorf("codex: %s URL must use https (plain http only for loopback hosts)", what)
		}
	default:
		return nil, fmt.Errorf("codex: %s URL must use https", what)
	}
	if u.User != nil {
		return nil, fmt.Errorf("codex: %s URL must not carry credentials", what)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("codex: %s URL must not have a query or fragment", what)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	return u, nil
}

// isLoopback reports whether host names this machine.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validHeaderValue rejects control characters, which would let a
// configured value inject extra header lines.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if b := v[i]; b < 0x20 || b == 0x7f {
			return false
		}
	}
	return true
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
