// Package dashboard is the proxy's web dashboard: sign-in by magic link,
// onboarding (link ChatGPT, create a first API key), the overview, API
// keys, recent requests and the ChatGPT link status.
//
// It is Caddy-free: NewDashboard returns an http.Handler over a *vault.Vault. Pages
// are rendered on the server from templates embedded in the binary; no CDN,
// no inline script (the Content-Security-Policy forbids it), and every flow
// works without JavaScript. One small script adds copy buttons.
package dashboard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/usemysub/caddy-codex-proxy/codex"
	"github.com/usemysub/caddy-codex-proxy/ratelimit"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// Defaults for the zero values of Config.
const (
	DefaultSessionTTL = 7 * 24 * time.Hour
	DefaultLoginTTL   = 15 * time.Minute
	DefaultOAuthTTL   = 10 * time.Minute
	DefaultModel      = "gpt-5.5"
	DefaultSiteName   = "UseMySub"
)

// Login rate limits: how many magic links one address (client IP) and one
// email may ask for within LoginWindow.
const (
	DefaultLoginPerEmail = 3
	DefaultLoginPerIP    = 10
	DefaultLoginWindow   = 15 * time.Minute
)

// SignupMode says who may create an account by signing in (vault.SignupMode).
type SignupMode = vault.SignupMode

// Sign-up modes (see vault's).
const (
	SignupClosed  = vault.SignupClosed
	SignupOpen    = vault.SignupOpen
	SignupDomains = vault.SignupDomains
)

// SignupPolicy decides whether an unknown email may become a user
// (vault.SignupPolicy, whose Validate the admin pages, the CLI and the
// admin API share).
type SignupPolicy = vault.SignupPolicy

// Config configures the dashboard. Vault is required.
type Config struct {
	// Vault holds users, keys, sessions and logs.
	Vault *vault.Vault
	// OAuth runs the ChatGPT sign-in (paste flow); the official client
	// registration against the default issuer when nil.
	OAuth *codex.OAuth
	// Mailer sends magic links; a LogMailer on Logger when nil.
	Mailer Mailer
	// PublicOrigin (https://ai.example.com) builds links in mail and the
	// base URL in setup snippets; the request's scheme and Host when empty.
	PublicOrigin string
	// Signup decides who may create an account (default closed); it
	// applies to email links and single sign-on alike. An admin may
	// override it from the admin pages; the override is kept in the vault
	// (see signupPolicy).
	Signup SignupPolicy
	// OIDC adds single sign-on with an OpenID provider (and may turn email
	// links off); nil: email links only.
	OIDC *OIDCConfig
	// OIDCClient makes the requests to the OpenID provider; a client with
	// a 10 s timeout when nil.
	OIDCClient *http.Client
	// Admins are the emails of the users who may open the admin pages
	// (any case); none by default. See isAdmin.
	Admins []string
	// DevReturnLink also shows the magic link in the page: development only.
	DevReturnLink bool
	// Prefix is where the dashboard is mounted ("/" or "/dashboard").
	Prefix string
	// Logger gets operational messages with key/value pairs: ERROR when
	// the vault or the mailer failed, WARN when ChatGPT refused a sign-in,
	// INFO for sign-ins, links and keys (default: discard).
	Logger *slog.Logger

	// SiteName is shown in the header and in mail (default UseMySub).
	SiteName string
	// Model is the model name used in setup snippets (default gpt-5.5).
	Model string
	// ClientIP returns the client address for rate limiting; the host of
	// RemoteAddr when nil.
	ClientIP func(*http.Request) string
	// Limiter counts sign-in link requests per address and per email. Pass
	// one that outlives the dashboard (caddymodule shares one across config
	// reloads) so a reload does not reset the counts; a private table on
	// Now when nil.
	Limiter *ratelimit.Table
	// Now is the clock (default time.Now).
	Now func() time.Time
	// SessionTTL, LoginTTL and OAuthTTL are the lifetimes of dashboard
	// sessions, magic links and pending ChatGPT sign-ins.
	SessionTTL, LoginTTL, OAuthTTL time.Duration
	// LoginPerEmail and LoginPerIP bound magic-link requests per LoginWindow.
	LoginPerEmail, LoginPerIP int
	LoginWindow               time.Duration
	// MailTimeout bounds one delivery (default 30 s).
	MailTimeout time.Duration
	// HSTSOnLoopback also sends Strict-Transport-Security to HTTPS
	// requests for localhost and loopback addresses (off by default: a
	// max-age on localhost outlives the development site and breaks every
	// plain-HTTP localhost server for a year).
	HSTSOnLoopback bool

	// Quotas holds each user's latest rate-limit snapshot, shown on the
	// overview; "no data yet" for everyone when nil.
	Quotas *QuotaStore
	// Prices override DefaultPrices (model → USD per 1M tokens) for the
	// overview's API-equivalent value; FallbackPriceModel ("*") prices
	// unknown models.
	Prices map[string]Price
}

// Dashboard is the dashboard handler.
type Dashboard struct {
	cfg     Config
	log     *slog.Logger // cfg.Logger
	prefix  string       // "" or "/path", no trailing slash
	mux     *http.ServeMux
	match   Matcher // the paths it serves
	views   *views
	limiter *ratelimit.Table
	devices devices
	forms   formTokens
	flashes flashStore
	prices  PriceTable
	oidc    *oidcClient // nil without single sign-on
	// valueMax and valuePage bound the request log read for the
	// API-equivalent value (tests lower them).
	valueMax, valuePage int
	// usageMax bounds the records the admin usage page reads (tests
	// lower it).
	usageMax int
	// devicePoll bounds one device-code check (tests shorten it).
	devicePoll time.Duration
	admins     map[string]bool // Config.Admins, normalised
	mailWG     sync.WaitGroup
	mailMu     sync.Mutex
	closed     bool // Close was called: mail is no longer tracked
	baseCtx    context.Context
	stopMail   context.CancelFunc
}

// NewDashboard builds the dashboard; its Match tells which requests it
// serves.
func NewDashboard(cfg Config) (*Dashboard, error) {
	if cfg.Vault == nil {
		return nil, errors.New("dashboard: Config.Vault is required")
	}
	return build(cfg)
}

// NewMatcher checks cfg as NewDashboard does, but needs no vault, and
// returns the Matcher of the dashboard NewDashboard would build from it: a
// server can check a dashboard's config and route requests to it before
// the vault it will serve from is open.
func NewMatcher(cfg Config) (Matcher, error) {
	d, err := build(cfg)
	if err != nil {
		return Matcher{}, err
	}
	d.stopMail() // this one never serves or mails
	return d.match, nil
}

// build builds a dashboard from cfg, whose Vault may be nil (NewMatcher).
func build(cfg Config) (*Dashboard, error) {
	prefix, err := normalizePrefix(cfg.Prefix)
	if err != nil {
		return nil, err
	}
	if cfg.Signup.Mode == "" {
		cfg.Signup.Mode = SignupClosed
	}
	if err := cfg.Signup.Validate(); err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	cfg.Signup = cfg.Signup.Normalized()
	if cfg.PublicOrigin != "" {
		o, err := normalizeOrigin(cfg.PublicOrigin)
		if err != nil {
			return nil, err
		}
		cfg.PublicOrigin = o
	}
	if cfg.OAuth == nil {
		cfg.OAuth = &codex.OAuth{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Mailer == nil {
		// Warn level, so the link is seen with the default log settings.
		cfg.Mailer = LogMailer{Log: cfg.Logger.Warn}
	}
	if cfg.SiteName == "" {
		cfg.SiteName = DefaultSiteName
	}
	if cfg.Model == "" {
		cfg.Model = DefaultModel
	}
	if cfg.ClientIP == nil {
		cfg.ClientIP = remoteHost
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Limiter == nil {
		cfg.Limiter = ratelimit.New(ratelimit.Config{Capacity: 1 << 14, Now: cfg.Now})
	}
	cfg.SessionTTL = orDuration(cfg.SessionTTL, DefaultSessionTTL)
	cfg.LoginTTL = orDuration(cfg.LoginTTL, DefaultLoginTTL)
	cfg.OAuthTTL = orDuration(cfg.OAuthTTL, DefaultOAuthTTL)
	cfg.LoginWindow = orDuration(cfg.LoginWindow, DefaultLoginWindow)
	cfg.MailTimeout = orDuration(cfg.MailTimeout, 30*time.Second)
	if cfg.LoginPerEmail <= 0 {
		cfg.LoginPerEmail = DefaultLoginPerEmail
	}
	if cfg.LoginPerIP <= 0 {
		cfg.LoginPerIP = DefaultLoginPerIP
	}
	if err := ValidatePrices(cfg.Prices); err != nil {
		return nil, err
	}
	if cfg.OIDC != nil {
		if err := cfg.OIDC.Validate(); err != nil {
			return nil, err
		}
		cfg.OIDC, _ = cfg.OIDC.Resolve(func(s string) string { return s }) // a copy the caller cannot change
	}
	admins, err := adminSet(cfg.Admins)
	if err != nil {
		return nil, err
	}
	v, err := loadViews(prefix)
	if err != nil {
		return nil, err
	}
	d := &Dashboard{
		prices:    NewPriceTable(cfg.Prices),
		valueMax:  maxValueRecords,
		usageMax:  maxUsageRecords,
		valuePage: valuePage,
		cfg:       cfg,
		log:       cfg.Logger,
		prefix:    prefix,
		views:     v,
		limiter:   cfg.Limiter,
		admins:    admins,
		match:     Matcher{prefix: prefix, paths: map[string]bool{}},

		devicePoll: devicePollLimit,
	}
	if cfg.OIDC != nil {
		d.oidc = newOIDCClient(cfg.OIDC, cfg.OIDCClient)
	}
	d.baseCtx, d.stopMail = context.WithCancel(context.Background())
	d.routes()
	return d, nil
}

// Close waits for mail still being sent (at most MailTimeout) and cancels
// what remains after ctx ends.
func (d *Dashboard) Close(ctx context.Context) error {
	d.mailMu.Lock()
	d.closed = true
	d.mailMu.Unlock()
	done := make(chan struct{})
	go func() { d.mailWG.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		d.stopMail()
		<-done
		return ctx.Err()
	}
}

// routes registers every page.
func (d *Dashboard) routes() {
	d.mux = http.NewServeMux()
	handle := func(method, path string, h http.HandlerFunc) {
		full := d.prefix + path
		d.match.paths[full] = true
		d.mux.HandleFunc(method+" "+full, h)
	}
	// The landing page. {$} matches the prefix root exactly.
	d.match.paths[d.prefix+"/"] = true
	d.mux.HandleFunc("GET "+d.prefix+"/{$}", d.landing)
	if d.prefix != "" {
		d.match.paths[d.prefix] = true
		d.mux.HandleFunc("GET "+d.prefix, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, d.prefix+"/", http.StatusMovedPermanently)
		})
	}
	d.mux.Handle("GET "+d.prefix+"/static/", http.StripPrefix(d.prefix+"/static/", d.views.static()))

	handle("GET", "/login", d.loginPage)
	if d.emailLinks() {
		handle("POST", "/login", d.csrf(d.loginSubmit))
		handle("GET", "/login/confirm", d.confirmPage)
		handle("POST", "/login/confirm", d.csrf(d.confirmSubmit))
	}
	if d.oidc != nil {
		// A link, not a form: the page's CSP allows forms to post (and
		// redirect) only to this site, and starting a sign-in changes
		// nothing a forged request could abuse (it is bound to the
		// browser that asks, and rate limited).
		handle("GET", "/login/oidc", d.oidcStart)
		handle("GET", "/login/oidc/callback", d.oidcCallback)
	}
	handle("POST", "/logout", d.csrf(d.logout))
	handle("POST", "/logout/everywhere", d.csrf(d.auth(d.logoutEverywhere)))

	handle("GET", "/onboarding", d.auth(d.onboarding))
	handle("GET", "/overview", d.auth(d.overview))
	handle("GET", "/keys", d.auth(d.keysPage))
	handle("POST", "/keys", d.csrf(d.auth(d.keysCreate)))
	handle("GET", "/keys/revoke", d.auth(d.revokePage))
	handle("POST", "/keys/revoke", d.csrf(d.auth(d.revokeSubmit)))
	handle("GET", "/keys/detail", d.auth(d.keyPage))
	handle("POST", "/keys/policy", d.csrf(d.auth(d.keyPolicySubmit)))
	handle("POST", "/keys/reset", d.csrf(d.auth(d.keyResetSubmit)))
	handle("GET", "/requests", d.auth(d.requestsPage))
	handle("GET", "/requests.csv", d.auth(d.requestsCSV))
	handle("GET", "/chatgpt", d.auth(d.chatgptPage))
	handle("GET", "/chatgpt/link", d.auth(d.linkPage))
	handle("POST", "/chatgpt/link", d.csrf(d.auth(d.linkStart)))
	handle("POST", "/chatgpt/callback", d.csrf(d.auth(d.linkCallback)))
	handle("POST", "/chatgpt/authjson", d.csrf(d.auth(d.linkAuthJSON)))
	handle("GET", "/chatgpt/device", d.auth(d.devicePage))
	handle("POST", "/chatgpt/device", d.csrf(d.auth(d.deviceStart)))
	handle("POST", "/chatgpt/device/check", d.csrf(d.auth(d.deviceCheck)))
	handle("GET", "/chatgpt/unlink", d.auth(d.unlinkPage))
	handle("POST", "/chatgpt/unlink", d.csrf(d.auth(d.unlinkSubmit)))
	handle("POST", "/chatgpt/accounts/move", d.csrf(d.auth(d.accountMove)))
	handle("POST", "/chatgpt/accounts/remove", d.csrf(d.auth(d.accountRemove)))
	handle("POST", "/chatgpt/accounts/policy", d.csrf(d.auth(d.accountPolicy)))

	handle("GET", "/admin", d.admin(d.adminUsers))
	handle("GET", "/admin/user", d.admin(d.adminUser))
	handle("GET", "/admin/audit", d.admin(d.adminAudit))
	handle("GET", "/admin/audit.csv", d.admin(d.adminAuditCSV))
	handle("GET", "/activity", d.auth(d.activityPage))
	handle("POST", "/admin/user/disable", d.csrf(d.admin(d.adminSetEnabled(false))))
	handle("POST", "/admin/user/enable", d.csrf(d.admin(d.adminSetEnabled(true))))
	handle("POST", "/admin/key/revoke", d.csrf(d.admin(d.adminRevokeKey)))
	handle("POST", "/admin/key/policy", d.csrf(d.admin(d.adminKeyPolicy)))
	handle("POST", "/admin/invite", d.csrf(d.admin(d.adminInvite)))
	handle("GET", "/admin/signup", d.admin(d.adminSignup))
	handle("POST", "/admin/signup", d.csrf(d.admin(d.adminSignupSubmit)))
	handle("GET", "/admin/usage", d.admin(d.adminUsage))
	handle("GET", "/admin/usage.csv", d.admin(d.adminUsageCSV))
	// Everything else under the prefix is a designed 404 page.
	d.mux.HandleFunc(d.prefix+"/", d.NotFound)
}

// emailLinks reports whether sign-in by email link is on: always, unless
// single sign-on turned it off.
func (d *Dashboard) emailLinks() bool { return d.cfg.OIDC == nil || !d.cfg.OIDC.EmailLinksOff }

// Match reports whether the dashboard serves r's path; a server mounting
// the dashboard beside other handlers sends everything else elsewhere.
// Under a prefix every path below it is the dashboard's (unknown ones get
// its 404 page); at the root only its own pages are, so the site can serve
// other things (see NotFound for the paths nothing serves).
func (d *Dashboard) Match(r *http.Request) bool { return d.match.Match(r) }

// Matcher tells which requests a dashboard serves (see Dashboard.Match).
// Get one from NewMatcher, or a dashboard's Match; the zero value matches
// nothing.
type Matcher struct {
	prefix string          // "" or "/path", no trailing slash
	paths  map[string]bool // the exact paths of its pages
}

// Match reports whether the dashboard serves r's path, as Dashboard.Match.
func (m Matcher) Match(r *http.Request) bool {
	p := r.URL.Path
	if m.paths == nil {
		return false
	}
	if m.prefix != "" && strings.HasPrefix(p, m.prefix+"/") {
		return true
	}
	return m.paths[p] || strings.HasPrefix(p, m.prefix+"/static/")
}

// ServeHTTP serves the dashboard with its security headers.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.securityHeaders(w, r)
	d.mux.ServeHTTP(w, r)
}

// securityHeaders sets what every dashboard answer carries.
func (d *Dashboard) securityHeaders(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
	if d.hsts(r) {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	if !strings.HasPrefix(r.URL.Path, d.prefix+"/static/") {
		// Pages can show a key once, session state and user data.
		h.Set("Cache-Control", "no-store")
	}
}

// url is the path of a dashboard page.
func (d *Dashboard) url(page string) string {
	if page == "" {
		return d.prefix + "/"
	}
	return d.prefix + "/" + strings.TrimPrefix(page, "/")
}

// origin is the scheme://host links are built from.
func (d *Dashboard) origin(r *http.Request) string {
	if d.cfg.PublicOrigin != "" {
		return d.cfg.PublicOrigin
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// secure reports whether cookies get the Secure flag (and the __Host-
// prefix, which browsers only accept with it).
func (d *Dashboard) secure(r *http.Request) bool {
	return r.TLS != nil || strings.HasPrefix(d.cfg.PublicOrigin, "https://")
}

// hsts reports whether the answer to r carries Strict-Transport-Security:
// over HTTPS, except for localhost and loopback addresses unless
// HSTSOnLoopback.
func (d *Dashboard) hsts(r *http.Request) bool {
	if r.TLS == nil {
		return false
	}
	return d.cfg.HSTSOnLoopback || !loopbackHost(r.Host)
}

// loopbackHost reports whether host (with or without a port) is localhost,
// a name under .localhost or a loopback address.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// normalizePrefix turns "/", "" and "/dash/" into "" and "/dash".
func normalizePrefix(p string) (string, error) {
	p = strings.TrimSpace(p)
	if p == "" || p == "/" {
		return "", nil
	}
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("dashboard: prefix %q must start with /", p)
	}
	p = strings.TrimRight(p, "/")
	if strings.ContainsAny(p, "?#{} \t") || strings.Contains(p, "//") || strings.Contains(p, "/../") || strings.HasSuffix(p, "/..") {
		return "", fmt.Errorf("dashboard: prefix %q is not a clean path", p)
	}
	if p == "/v1" || strings.HasPrefix(p, "/v1/") {
		return "", fmt.Errorf("dashboard: prefix %q collides with the API under /v1/", p)
	}
	return p, nil
}

// normalizeOrigin checks and trims a public origin.
func normalizeOrigin(o string) (string, error) {
	u, err := url.Parse(strings.TrimRight(strings.TrimSpace(o), "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
		return "", fmt.Errorf("dashboard: public origin %q must be scheme://host[:port]", o)
	}
	return u.Scheme + "://" + u.Host, nil
}

// remoteHost is the host part of RemoteAddr.
func remoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func orDuration(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
