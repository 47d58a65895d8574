package api

import (
	"crypto/rand"
	"net"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/usemysub/caddy-codex-proxy/apierror"
	"github.com/usemysub/caddy-codex-proxy/codex"
	"github.com/usemysub/caddy-codex-proxy/ratelimit"
	"github.com/usemysub/caddy-codex-proxy/translate"
	"github.com/usemysub/caddy-codex-proxy/translate/anthropic"
)

// Config is what a Handler is made of: its collaborators and its settings.
// Keys, Accounts, Upstream and Recorder are required; the rest have
// working zero values.
type Config struct {
	Keys     Keys
	Accounts Accounts
	Upstream Upstream
	Recorder Recorder
	// Models is the live catalog of a user's plan; nil lists the static
	// catalog only.
	Models Models
	// Responses keeps stored responses; nil keeps none (/v1/responses is
	// then stateless: previous_response_id and item_reference are refused
	// and GET /v1/responses/{id} finds nothing).
	Responses Responses
	// Quotas takes the rate limits upstream answers report; nil keeps none.
	Quotas QuotaSink
	// Observer counts requests for metrics; nil counts nothing.
	Observer Observer
	// Logger logs failures and, at INFO, one line per request; nil logs
	// nothing.
	Logger *zap.Logger

	// Catalog resolves client model names; nil is translate.DefaultCatalog.
	Catalog *translate.Catalog
	// SystemMode and ReasoningSummary shape the upstream request (see
	// translate.RequestOptions); zero values are the translator's defaults.
	SystemMode       translate.SystemMode
	ReasoningSummary string
	// MaxBodySize bounds request bodies after decoding. Zero: 32 MiB.
	MaxBodySize int64
	// Keepalive is how often a stream gets an SSE comment while the
	// upstream is silent. Zero: none.
	Keepalive time.Duration
	// CORSOrigins may call the API from a browser ("*": any). Empty: none.
	CORSOrigins []string
	// ClaudeModels maps the Claude model names of /v1/messages to Codex
	// models; nil maps with anthropic.DefaultRules.
	ClaudeModels *anthropic.ModelMap
	// Options are the operator's plain settings (zero: the defaults).
	Options
	// SocketMaxAge is how long a WebSocket on /v1/responses may live; it
	// closes (going away) once idle after that, and clients reconnect.
	// Zero: DefaultSocketMaxAge, the backend's own limit.
	SocketMaxAge time.Duration
	// SocketPing is how often an open WebSocket is pinged, so idle
	// sockets stay open through middleboxes and dead peers are found.
	// Zero: DefaultSocketPing; negative: never.
	SocketPing time.Duration

	// Images configures /v1/images/*; the zero value has working defaults.
	Images ImagesConfig

	// FailedAuth counts failed API key attempts per client address; nil
	// counts none (and never answers 429 for them).
	FailedAuth *ratelimit.Table
	// ClientIP is the client's address as the server in front resolved it
	// (trusted proxies honoured); nil uses the connection's address.
	ClientIP func(*http.Request) string
}

// DefaultMaxBodySize is the body limit of a zero Config.MaxBodySize: room
// for images.
const DefaultMaxBodySize = 32 << 20

// Handler serves /v1/. Make one with New; it is safe for concurrent use.
type Handler struct {
	cfg Config
	obs Observer
	log *zap.Logger
	// sockets are the open WebSocket connections, for Shutdown.
	sockets socketSet
	// store is cfg.Responses with its writes in flight (nil without a
	// store); cfg.Responses is set to it, so every read waits for them.
	store *pendingStore
	// socketRefusals are the accounts whose upstream refused a WebSocket;
	// socketIdle bounds an upstream socket's silence during a turn, and
	// socketKeepalive is how often one is pinged between turns (the
	// client sockets' SocketPing).
	socketRefusals  refusals
	socketIdle      time.Duration
	socketKeepalive time.Duration
}

// New returns a Handler for cfg.
func New(cfg Config) *Handler {
	if cfg.Catalog == nil {
		cfg.Catalog = translate.DefaultCatalog()
	}
	if cfg.MaxBodySize <= 0 {
		cfg.MaxBodySize = DefaultMaxBodySize
	}
	if cfg.SocketMaxAge <= 0 {
		cfg.SocketMaxAge = DefaultSocketMaxAge
	}
	if cfg.SocketPing == 0 {
		cfg.SocketPing = DefaultSocketPing
	}
	if cfg.ClientIP == nil {
		cfg.ClientIP = RemoteIP
	}
	h := &Handler{cfg: cfg, obs: cfg.Observer, log: cfg.Logger, socketIdle: codex.DefaultIdleTimeout}
	if cfg.Responses != nil {
		h.store = newPendingStore(cfg.Responses)
		h.cfg.Responses = h.store
	}
	h.socketKeepalive = cfg.SocketPing
	if up, ok := cfg.Upstream.(interface{ IdleTimeout() time.Duration }); ok && up.IdleTimeout() > 0 {
		h.socketIdle = up.IdleTimeout() // upstream_idle_timeout, as on HTTP
	}
	if h.obs == nil {
		h.obs = nopObserver{}
	}
	if h.log == nil {
		h.log = zap.NewNop()
	}
	return h
}

// endpoint is one route of the API: its name in logs and metrics, the
// method it takes, and what serves it once the key is known.
type endpoint struct {
	route  string
	method string
	// allow lists the methods of the path for a 405's Allow header when it
	// takes more than method ("" : method alone).
	allow     string
	admission admission
	serve     func(h *Handler, w http.ResponseWriter, r *http.Request, req *request) outcome
}

// admission is what an endpoint's requests take from the key's limits.
type admission int

const (
	// admitExpiry checks only that the key has not expired (the model list:
	// clients fetch it at start, and it costs the subscription nothing).
	admitExpiry admission = iota
	// admitRate also counts the request against the key's rpm.
	admitRate
	// admitGeneration also takes a concurrency slot and needs budget left.
	admitGeneration
)

// routeResponses is the route of POST /v1/responses, and of its WebSocket
// mode (websocket.go), whose turns are recorded as requests of it.
const routeResponses = "responses"

// served names the endpoints in a 404's message.
const served = "/v1/models, /v1/chat/completions, /v1/responses (and /v1/responses/{id}), /v1/messages, /v1/images/generations, /v1/images/edits and /v1/usage"

// match finds the endpoint of a request's method and path (a trailing
// slash is ignored). A path with several methods gives the endpoint of
// method when it has one.
func match(method, path string) (endpoint, bool) {
	path = strings.TrimSuffix(path, "/")
	if path == "/v1/responses/compact" {
		return endpoint{"responses_compact", http.MethodPost, "", admitGeneration, (*Handler).serveCompact}, true
	}
	if id, ok := strings.CutPrefix(path, "/v1/responses/"); ok && id != "" {
		id, items := strings.CutSuffix(id, "/input_items")
		switch {
		case id == "" || strings.Contains(id, "/"):
		case items:
			return endpoint{"response_input_items", http.MethodGet, "", admitRate, (*Handler).serveInputItems}, true
		case method == http.MethodDelete:
			return endpoint{"response_delete", http.MethodDelete, "", admitRate, (*Handler).serveDeleteResponse}, true
		default:
			return endpoint{"response_get", http.MethodGet, "GET, DELETE", admitRate, (*Handler).serveGetResponse}, true
		}
	}
	switch {
	case path == "/v1/models" || strings.HasPrefix(path, "/v1/models/"):
		return endpoint{"models", http.MethodGet, "", admitExpiry, (*Handler).serveModels}, true
	case path == "/v1/chat/completions":
		return endpoint{"chat_completions", http.MethodPost, "", admitGeneration, generate(chatDialect{})}, true
	case path == "/v1/responses":
		return endpoint{routeResponses, http.MethodPost, "", admitGeneration, generate(responsesDialect{})}, true
	case path == "/v1/images/generations":
		return endpoint{routeImageGenerations, http.MethodPost, "", admitGeneration, serveImages(false)}, true
	case path == "/v1/images/edits":
		return endpoint{routeImageEdits, http.MethodPost, "", admitGeneration, serveImages(true)}, true
	case path == "/v1/usage":
		return endpoint{"usage", http.MethodGet, "", admitRate, (*Handler).serveUsage}, true
	case path == "/v1/messages":
		return endpoint{routeMessages, http.MethodPost, "", admitGeneration, (*Handler).serveMessages}, true
	case path == "/v1/messages/count_tokens":
		return endpoint{routeCountTokens, http.MethodPost, "", admitRate, (*Handler).serveCountTokens}, true
	}
	return endpoint{route: "unknown"}, false
}

// ServeHTTP serves one request under /v1/, in the order it lives:
// authenticate, admit (everything that depends on the key only, before the
// body is read), then the endpoint (translate, route, relay), and finally
// record.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req := &request{id: "req_" + rand.Text(), start: time.Now()}
	w.Header().Set("X-Request-Id", req.id)
	h.setCORS(w, r)
	if r.Method == http.MethodOptions {
		h.preflight(w)
		return
	}
	ep, ok := match(r.Method, r.URL.Path)
	req.route = ep.route
	w = dialectWriter(w, r, ep.route)
	if !ok {
		h.obs.Request(req.route, h.reject(w, apierror.UnknownURL(r.Method, r.URL.Path, served), 0).status, "")
		return
	}
	if ep.route == routeResponses && isWebSocketUpgrade(r) {
		h.serveSocket(w, r, req)
		return
	}
	if r.Method != ep.method {
		allow := ep.allow
		if allow == "" {
			allow = ep.method
		}
		w.Header().Set("Allow", allow+", OPTIONS")
		h.obs.Request(req.route, h.reject(w, apierror.MethodNotAllowed(r.Method, r.URL.Path, strings.ReplaceAll(allow, ", ", " or ")), 0).status, "")
		return
	}
	h.serveEndpoint(w, r, req, ep)
}

// serveEndpoint is one request past routing: authenticate, admit, serve
// and record. A WebSocket turn goes through it too, as its own request.
func (h *Handler) serveEndpoint(w http.ResponseWriter, r *http.Request, req *request, ep endpoint) {
	if out, ok := h.authenticate(w, r, req); !ok {
		// Not recorded: no key, no user to record it for.
		h.obs.Request(req.route, out.status, "")
		return
	}
	release, out, ok := h.admit(w, r, req, ep)
	if !ok {
		h.record(req, out)
		return
	}
	out = ep.serve(h, w, r, req)
	h.record(req, out) // settles a generation's hold: tokens in, reservation out
	release()          // for the others (and harmless after a settle)
}

// RemoteIP is the connection's peer address without its port: the client
// address when no proxy in front resolved another.
func RemoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
