package codextest

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// DefaultClientID is the OAuth client id the fake accepts by default: the
// official Codex CLI registration.
const DefaultClientID = "app_EMoamEEZ73f0CkXaXp7hrann"

// BackendPath is where the fake mounts the Codex backend.
const BackendPath = "/backend-api/codex"

// Options configures a Server. Zero values pick the defaults noted.
type Options struct {
	// Addr is the listen address, e.g. "127.0.0.1:8089"; a random
	// loopback port when empty.
	Addr string
	// TLS serves HTTPS with HTTP/2 (use Server.Client for a trusting client).
	TLS bool
	// Default is the scenario when neither Script nor a marker picks one;
	// ScenarioText when empty.
	Default Scenario
	// Script picks a scenario per request; returning "" falls through to
	// the marker and then Default.
	Script Script
	// Models is the catalog; DefaultModels when nil.
	Models []Model
	// ClientID is the accepted OAuth client id; DefaultClientID when empty.
	ClientID string
	// AccessTTL is the lifetime of minted access tokens; 1 h when zero.
	AccessTTL time.Duration
	// SlowDelay is the gap between events of ScenarioSlow; 50 ms when zero.
	SlowDelay time.Duration
	// EventDelay is a gap between events of every streamed scenario; none
	// when zero.
	EventDelay time.Duration
	// LongLineBytes is the size of ScenarioLongLine's big delta; 1 MiB when
	// zero.
	LongLineBytes int
	// ServerErrorStatus is the status of ScenarioServerError; 500 when zero.
	ServerErrorStatus int
	// DeviceInterval is the polling interval (seconds, as the string the
	// real issuer sends) announced by device-code login; "5" when empty.
	DeviceInterval string
	// Prerendered, when > 0, makes /responses skip body parsing and
	// validation and serve a pre-rendered stream of this many text deltas
	// (after the bearer check) — the load-test fast path.
	Prerendered int
	// PrerenderedDelay is the gap between pre-rendered events.
	PrerenderedDelay time.Duration
	// NoRecord disables the request log (long-running fakes).
	NoRecord bool
}

// Option adjusts Options for New.
type Option func(*Options)

// WithScenario sets the default scenario.
func WithScenario(sc Scenario) Option { return func(o *Options) { o.Default = sc } }

// WithScript sets the per-request scenario hook.
func WithScript(s Script) Option { return func(o *Options) { o.Script = s } }

// WithModels replaces the catalog.
func WithModels(ms ...Model) Option { return func(o *Options) { o.Models = ms } }

// WithSlowDelay sets the gap between events of ScenarioSlow.
func WithSlowDelay(d time.Duration) Option { return func(o *Options) { o.SlowDelay = d } }

// WithAccessTTL sets the lifetime of minted access tokens.
func WithAccessTTL(d time.Duration) Option { return func(o *Options) { o.AccessTTL = d } }

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	// URL is the backend base, "<root>/backend-api/codex".
	URL string
	// IssuerURL is the OAuth issuer base (the server root).
	IssuerURL string

	srv  *httptest.Server
	opts Options
	// closed ends hung handlers when the fake shuts down.
	closed    chan struct{}
	closeOnce sync.Once
	// generations counts POST /responses requests, recorded or not.
	generations atomic.Int64
	// refuseWS makes the WebSocket upgrade fail; wsConns counts accepted ones.
	refuseWS atomic.Bool
	wsConns  atomic.Int64
	// forgetWS refuses every previous_response_id; wsOpen counts the open
	// sockets, wsLive holds them (*websocket.Conn) for DropWebSockets.
	forgetWS atomic.Bool
	wsOpen   atomic.Int64
	wsLive   sync.Map

	mu        sync.Mutex
	script    Script
	def       Scenario
	accounts  map[string]*account
	access    map[string]*accessRec
	refresh   map[string]*refreshRec
	families  map[string]string // revoked family → error code
	codes     map[string]*authCode
	devices   map[string]*deviceAuth
	requests  []Request
	refreshes int
	// reuses counts refresh grants that presented a used refresh token.
	reuses int
	// refreshDelays holds the delay of each upcoming refresh grant.
	refreshDelays []time.Duration
	cacheKeys     map[string]bool
	prerender     []byte
	// prerenderFrames are the events of prerender, for paced serving.
	prerenderFrames [][]byte
}

// New starts a fake for a test and closes it when the test ends.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	var o Options
	for _, opt := range opts {
		opt(&o)
	}
	s, err := NewServer(o)
	if err != nil {
		t.Fatalf("codextest: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// NewServer starts a fake without a testing.T (standalone binaries).
// Call Close when done.
func NewServer(o Options) (*Server, error) {
	if o.ClientID == "" {
		o.ClientID = DefaultClientID
	}
	if o.AccessTTL <= 0 {
		o.AccessTTL = time.Hour
	}
	if o.SlowDelay <= 0 {
		o.SlowDelay = 50 * time.Millisecond
	}
	if o.LongLineBytes <= 0 {
		o.LongLineBytes = 1 << 20
	}
	if o.ServerErrorStatus == 0 {
		o.ServerErrorStatus = http.StatusInternalServerError
	}
	if o.DeviceInterval == "" {
		o.DeviceInterval = "5"
	}
	if o.Models == nil {
		o.Models = DefaultModels()
	}
	s := &Server{
		opts:      o,
		closed:    make(chan struct{}),
		script:    o.Script,
		def:       o.Default,
		accounts:  map[string]*account{},
		access:    map[string]*accessRec{},
		refresh:   map[string]*refreshRec{},
		families:  map[string]string{},
		codes:     map[string]*authCode{},
		devices:   map[string]*deviceAuth{},
		cacheKeys: map[string]bool{},
	}
	if o.Prerendered > 0 {
		s.prerenderFrames = prerenderedFrames(o.Prerendered)
		s.prerender = bytes.Join(s.prerenderFrames, nil)
	}
	s.srv = httptest.NewUnstartedServer(s.routes())
	if o.Addr != "" {
		l, err := net.Listen("tcp", o.Addr)
		if err != nil {
			return nil, err
		}
		s.srv.Listener.Close()
		s.srv.Listener = l
	}
	if o.TLS {
		s.srv.EnableHTTP2 = true
		s.srv.StartTLS()
	} else {
		s.srv.Start()
	}
	s.IssuerURL = s.srv.URL
	s.URL = s.srv.URL + BackendPath
	return s, nil
}

// Close shuts the server down, interrupting open streams.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closed) })
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// Client returns an HTTP client that trusts the fake's TLS certificate.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// SetScenario changes the default scenario.
func (s *Server) SetScenario(sc Scenario) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.def = sc
}

// SetScript changes the per-request scenario hook (nil removes it).
func (s *Server) SetScript(fn Script) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = fn
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+BackendPath+"/responses", s.handleResponses)
	mux.HandleFunc("GET "+BackendPath+"/responses", s.handleResponsesWS)
	mux.HandleFunc("POST "+BackendPath+"/responses/compact", s.handleCompact)
	mux.HandleFunc("GET "+BackendPath+"/models", s.handleModels)
	mux.HandleFunc("GET /oauth/authorize", s.handleAuthorize)
	mux.HandleFunc("POST /oauth/token", s.handleToken)
	mux.HandleFunc("POST /api/accounts/deviceauth/usercode", s.handleDeviceStart)
	mux.HandleFunc("POST /api/accounts/deviceauth/token", s.handleDeviceToken)
	mux.HandleFunc("GET /codex/device", s.handleDevicePage)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.recordRequest(r, nil)
		writeJSON(w, http.StatusNotFound, map[string]any{"detail": "Not Found"})
	})
	return mux
}

// writeJSON writes v as the JSON body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}
