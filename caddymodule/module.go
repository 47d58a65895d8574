// Package caddymodule is the Caddy glue of the codex proxy: module
// registration, configuration, provisioning and request routing. The logic
// lives in Caddy-free packages (translate, vault, codex); this package only
// wires them into Caddy.
package caddymodule

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/usemysub/caddy-codex-proxy/api"
	"github.com/usemysub/caddy-codex-proxy/apierror"
	"github.com/usemysub/caddy-codex-proxy/codex"
	"github.com/usemysub/caddy-codex-proxy/dashboard"
	"github.com/usemysub/caddy-codex-proxy/metrics"
	"github.com/usemysub/caddy-codex-proxy/translate"
	"github.com/usemysub/caddy-codex-proxy/translate/anthropic"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Defaults applied in Provision.
const (
	DefaultMaxBodySize  = 32 << 20
	DefaultKeepalive    = caddy.Duration(15 * time.Second)
	DefaultModelsTTL    = caddy.Duration(10 * time.Minute)
	DefaultLogRetention = caddy.Duration(30 * 24 * time.Hour)
	defaultVaultDir     = "codex_proxy"
)

// Handler serves an OpenAI-compatible API (/v1/models, /v1/chat/completions,
// /v1/responses) backed by each user's own ChatGPT Codex subscription.
// Requests outside /v1/ go to the next handler.
type Handler struct {
	// Vault is where users, keys, encrypted tokens and logs are kept: the
	// path of a bbolt file, or a postgres:// DSN for a database several
	// instances share. Default: codex_proxy/vault.db under Caddy's data
	// directory.
	Vault string `json:"vault,omitempty"`

	// EncryptionKeys encrypt token bundles (AES-256-GCM): 32 bytes as
	// base64url, standard base64 or 64 hex characters. The first encrypts,
	// all decrypt, so a key can be rotated. Placeholders such as
	// {env.TOKEN_ENCRYPTION_KEY} are expanded. When empty, a key is generated
	// once and stored 0600 beside the vault.
	EncryptionKeys []string `json:"encryption_keys,omitempty"`

	// APIKeyPepper is the HMAC secret API keys are hashed with. Placeholders
	// are expanded. When empty, one is generated once and stored 0600 beside
	// the vault.
	APIKeyPepper string `json:"api_key_pepper,omitempty"`

	// Upstream is the Codex backend base URL. Default:
	// https://chatgpt.com/backend-api/codex.
	Upstream string `json:"upstream,omitempty"`

	// OAuthIssuer is the ChatGPT OAuth issuer. Default: https://auth.openai.com.
	OAuthIssuer string `json:"oauth_issuer,omitempty"`

	// PublicOrigin is the origin clients reach this site at, such as
	// https://ai.example.com; used in printed base URLs and links.
	PublicOrigin string `json:"public_origin,omitempty"`

	// RelayURL sends all upstream traffic through a relay; https unless on
	// loopback. RelayToken is sent to it in X-Relay-Token.
	RelayURL   string `json:"relay_url,omitempty"`
	RelayToken string `json:"relay_token,omitempty"`

	// Originator is the originator header and User-Agent product sent
	// upstream. Default: codex_cli_rs.
	Originator string `json:"originator,omitempty"`

	// SystemPrompt chooses where system messages go: "developer" (default;
	// developer input items, as the official client does) or "instructions".
	SystemPrompt string `json:"system_prompt,omitempty"`

	// ReasoningSummary is requested when reasoning is on: auto (default),
	// concise, detailed or none.
	ReasoningSummary string `json:"reasoning_summary,omitempty"`

	// MaxBodySize bounds request bodies after decoding, in bytes.
	// Default: 32 MiB (room for images).
	MaxBodySize int64 `json:"max_body_size,omitempty"`
	// Images configures /v1/images/* (api.ImagesConfig).
	Images api.ImagesConfig `json:"images,omitzero"`

	// Keepalive is how often an SSE comment is sent while the upstream is
	// silent, so proxies do not cut long reasoning. Default: 15s.
	Keepalive caddy.Duration `json:"keepalive,omitempty"`

	// UpstreamIdleTimeout cancels a stream when the upstream sends nothing
	// for this long. Default: 5m.
	UpstreamIdleTimeout caddy.Duration `json:"upstream_idle_timeout,omitempty"`

	// UpstreamHeaderTimeout is how long the upstream may take to send its
	// response headers once the request is written. The backend sends them
	// with response.created as soon as it takes the turn, so a minute of
	// silence means it hung. A generation that hits it ends in a 504
	// upstream_timeout and is never re-sent. Default: 1m.
	UpstreamHeaderTimeout caddy.Duration `json:"upstream_header_timeout,omitempty"`

	// ModelsTTL is how long a user's model catalog is cached. Default: 10m.
	ModelsTTL caddy.Duration `json:"models_ttl,omitempty"`

	// LogRetention is how long request logs are kept. Default: 30 days.
	LogRetention caddy.Duration `json:"log_retention,omitempty"`

	// Limits bound the stored responses (the `responses` block).
	Limits vault.Limits `json:"limits,omitzero"`

	// SocketMaxAge and SocketPing are api.Config's (zero: its defaults).
	SocketMaxAge caddy.Duration `json:"socket_max_age,omitempty"`
	SocketPing   caddy.Duration `json:"socket_ping,omitempty"`

	// CORSOrigins are the origins allowed to call the API from a browser.
	// Default: any origin ("*"); API keys, not cookies, authenticate.
	CORSOrigins []string `json:"cors_origins,omitempty"`

	// Aliases map extra model names to catalog models.
	Aliases map[string]string `json:"aliases,omitempty"`

	// ClaudeModels map the Claude model names of /v1/messages to Codex
	// models and efforts, tried in order before anthropic.DefaultRules.
	ClaudeModels []anthropic.Rule `json:"claude_models,omitempty"`

	// Options are the /v1 pipeline's plain subdirectives, parsed and
	// checked by api (expose_account_quota …); JSON keeps them top-level.
	api.Options

	// Dashboard configures the web dashboard (see DashboardConfig); nil
	// serves it at "/" with the defaults.
	Dashboard *DashboardConfig `json:"dashboard,omitempty"`

	ctx     caddy.Context
	logger  *zap.Logger
	app     *App
	vault   *vault.Vault // set by bind when the app starts
	client  *codex.Client
	catalog *translate.Catalog
	models  *codex.ModelCache
	limits  *pooledLimiter // shared through the limiters pool; nil until held
	metrics *metrics.Observer
	api     *api.Handler // the /v1 pipeline; built by bind

	dashboard *dashboard.Dashboard // nil when off; built by bind
	// dashCfg is the dashboard's config, vault aside; dashRoutes tells the
	// paths it serves, known at Provision (the zero value, when the
	// dashboard is off, matches none).
	dashCfg    *dashboard.Config
	dashRoutes dashboard.Matcher
	// quotas keeps each user's latest rate limits, for most-remaining
	// routing, the dashboard and GET /v1/usage; bind sets it.
	quotas *dashboard.QuotaStore
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.codex_proxy",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision sets defaults, checks the settings, builds the upstream client
// and registers the vault settings with the codex_proxy app, which opens
// the vault when it starts. Provision opens no file.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.ctx = ctx
	h.logger = ctx.Logger()
	repl := caddy.NewReplacer()

	vc, err := vaultConfigOf(*h)
	if err != nil {
		return err
	}
	h.Vault = vc.Path
	if h.MaxBodySize <= 0 {
		h.MaxBodySize = DefaultMaxBodySize
	}
	if h.Keepalive == 0 {
		h.Keepalive = DefaultKeepalive
	}
	if h.ModelsTTL == 0 {
		h.ModelsTTL = DefaultModelsTTL
	}
	if h.LogRetention == 0 {
		h.LogRetention = DefaultLogRetention
	}
	if h.SystemPrompt == "" {
		h.SystemPrompt = string(translate.SystemAsDeveloper)
	}
	if len(h.CORSOrigins) == 0 {
		h.CORSOrigins = []string{"*"}
	}

	// Only check the secrets here: the vault and the generated-secret files
	// beside it are opened when the codex_proxy app starts, so that
	// `caddy validate` and a reload's provisioning touch no file.
	if err := vc.Check(); err != nil {
		return err
	}

	h.client, err = codex.NewClient(codex.Config{
		Upstream:              repl.ReplaceAll(h.Upstream, ""),
		Originator:            h.Originator,
		ClientVersion:         h.ClientVersion,
		RelayURL:              repl.ReplaceAll(h.RelayURL, ""),
		RelayToken:            repl.ReplaceAll(h.RelayToken, ""),
		IdleTimeout:           time.Duration(h.UpstreamIdleTimeout),
		ResponseHeaderTimeout: time.Duration(h.UpstreamHeaderTimeout),
	})
	if err != nil {
		return fmt.Errorf("upstream client: %w", err)
	}
	oauth := &codex.OAuth{Issuer: repl.ReplaceAll(h.OAuthIssuer, "")}

	app, err := ctx.App("codex_proxy")
	if err != nil {
		return err
	}
	h.app = app.(*App)
	err = h.app.register(h, vaultSettings{Config: vc, issuer: oauth.Issuer, logger: h.logger.Named("vault")})
	if err != nil {
		return err
	}
	if h.limits, err = loadLimiter(); err != nil {
		return fmt.Errorf("rate limiter: %w", err)
	}
	if err := h.provisionDashboard(oauth); err != nil {
		return err // "dashboard: …"
	}
	h.catalog = translate.DefaultCatalog()
	if len(h.Aliases) > 0 {
		h.catalog = h.catalog.With(nil, h.Aliases)
	}
	h.models = codex.NewModelCache(h.client.Models, time.Duration(h.ModelsTTL), nil)
	h.metrics, err = registerMetrics(ctx.GetMetricsRegistry(), h.catalog)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}

// bind gives the handler the vault the codex_proxy app opened for it; the
// app calls it from Start, before requests are let through.
func (h *Handler) bind(pv *pooledVault) error {
	h.vault = pv.Vault
	if err := h.bindDashboard(); err != nil {
		return err
	}
	if h.quotas == nil { // kept even when hidden: most-remaining routes by it
		h.quotas = dashboard.NewVaultQuotaStore(h.vault)
	}
	h.api = h.newAPI()
	return nil
}

// newAPI builds the /v1 pipeline over the bound vault and the settings.
func (h *Handler) newAPI() *api.Handler {
	cfg := api.Config{
		Keys: h.vault, Accounts: h.vault, Recorder: h.vault, Responses: h.vault,
		Upstream: h.client, Models: h.models,
		Observer: h.metrics, Logger: h.logger,
		Catalog:          h.catalog,
		SystemMode:       translate.SystemMode(h.SystemPrompt),
		ReasoningSummary: h.ReasoningSummary,
		MaxBodySize:      h.MaxBodySize,
		Images:           h.Images,
		Keepalive:        time.Duration(h.Keepalive),
		CORSOrigins:      h.CORSOrigins,
		Options:          h.Options,
		SocketMaxAge:     time.Duration(h.SocketMaxAge),
		SocketPing:       time.Duration(h.SocketPing),
		ClaudeModels:     &anthropic.ModelMap{Rules: h.ClaudeModels},
		FailedAuth:       h.limits.api,
		ClientIP:         clientIP,
	}
	if h.quotas != nil { // a nil *QuotaStore in the interface would not be nil
		cfg.Quotas = h.quotas
	}
	return api.New(cfg)
}

// Validate checks the configuration for obvious mistakes.
func (h *Handler) Validate() error {
	if err := h.Images.Validate(); err != nil {
		return err
	}
	if err := h.Options.Validate(); err != nil {
		return err
	}
	switch translate.SystemMode(h.SystemPrompt) {
	case translate.SystemAsDeveloper, translate.SystemAsInstructions:
	default:
		return fmt.Errorf("system_prompt must be developer or instructions, not %q", h.SystemPrompt)
	}
	switch h.ReasoningSummary {
	case "", "auto", "concise", "detailed", "none":
	default:
		return fmt.Errorf("reasoning_summary must be auto, concise, detailed or none, not %q", h.ReasoningSummary)
	}
	if h.RelayURL != "" && h.RelayToken == "" {
		return fmt.Errorf("relay needs a token")
	}
	return api.ValidateSocketTimes(time.Duration(h.SocketMaxAge), time.Duration(h.SocketPing))
}

// socketDrainTimeout bounds how long Cleanup waits for WebSocket turns to
// finish on a reload or stop before it cuts them.
const socketDrainTimeout = 5 * time.Minute

// Cleanup closes the API's WebSockets, lets the dashboard finish its mail and releases this instance's
// hold on the shared rate limiter (its counts are dropped when the last
// config using it is unloaded); the codex_proxy app owns the vault.
func (h *Handler) Cleanup() error {
	if h.api != nil {
		// WebSockets outlive the server's shutdown (it forgets upgraded
		// connections): close them here, each after its running turn.
		ctx, cancel := context.WithTimeout(context.Background(), socketDrainTimeout)
		_ = h.api.Shutdown(ctx)
		cancel()
	}
	h.cleanupDashboard()
	if h.limits != nil {
		h.limits = nil
		_, _ = limiters.Delete(limiterPoolKey)
	}
	return nil
}

// ServeHTTP routes /v1/ to the API, the dashboard's pages to the
// dashboard and everything else to next.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	isAPI := strings.HasPrefix(r.URL.Path, "/v1/") || r.URL.Path == "/v1"
	if !isAPI && !h.dashRoutes.Match(r) {
		return h.serveNext(w, r, next)
	}
	// Caddy may start the http app before ours: wait for the vault.
	if !h.app.await(r.Context()) || h.api == nil || !isAPI && h.dashboard == nil {
		apierror.SetRetryAfter(w.Header(), 2*time.Second)
		apierror.Write(w, apierror.VaultStarting())
		return nil
	}
	if !isAPI {
		h.dashboard.ServeHTTP(w, r)
		return nil
	}
	h.api.ServeHTTP(w, r)
	return nil
}

// clientIP is the address Caddy resolved for the client, honouring its
// trusted_proxies setting.
func clientIP(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	return api.RemoteIP(r)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
