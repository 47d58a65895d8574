package caddymodule

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/usemysub/caddy-codex-proxy/codex"
	"github.com/usemysub/caddy-codex-proxy/dashboard"
)

// DashboardConfig configures the web dashboard (sign-in by magic link,
// onboarding, keys, requests, ChatGPT link). The zero value (and a nil
// Handler.Dashboard) serves it at "/" with closed sign-up and magic links
// written to the log.
type DashboardConfig struct {
	// Disabled turns the dashboard off: only /v1/ is served.
	Disabled bool `json:"disabled,omitempty"`

	// Prefix is the path the dashboard is mounted at. Default "/".
	Prefix string `json:"prefix,omitempty"`

	// Signup says who may create an account by signing in: closed
	// (default: only users created with the CLI or admin API), open, or
	// domains (addresses in SignupDomains).
	Signup        string   `json:"signup,omitempty"`
	SignupDomains []string `json:"signup_domains,omitempty"`

	// SMTP sends the magic links. Without it they are written to Caddy's
	// log (mail log), fit only for development.
	SMTP *SMTPConfig `json:"smtp,omitempty"`

	// Resend sends the magic links through Resend's HTTP API instead.
	Resend *ResendConfig `json:"resend,omitempty"`

	// DevLinks also shows the magic link in the page after it is asked
	// for (mail log dev). Anyone can then sign in as anyone: development
	// only.
	DevLinks bool `json:"dev_links,omitempty"`

	// Prices override the API list prices (USD per 1M tokens) the overview
	// uses for the "API-equivalent value" of a user's tokens, per model;
	// "*" prices models not in the table. See dashboard.DefaultPrices.
	Prices map[string]dashboard.Price `json:"prices,omitempty"`

	// OIDC adds single sign-on (dashboard.OIDCConfig.Resolve: placeholders).
	OIDC *dashboard.OIDCConfig `json:"oidc,omitempty"`

	// Admins are the emails of the users who may open the admin pages.
	Admins []string `json:"admins,omitempty"`

	mailLog bool // the Caddyfile said mail log
}

// SMTPConfig is an SMTP submission server. Fields accept placeholders such
// as {env.SMTP_PASSWORD}.
type SMTPConfig struct {
	// Address is host:port; port 465 means implicit TLS.
	Address  string `json:"address"`
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// From is the sender, "Name <noreply@example.com>" or an address.
	From string `json:"from"`
	// StartTLS is required (default), opportunistic or off.
	StartTLS string `json:"starttls,omitempty"`
}

// ResendConfig is a Resend account. Fields accept placeholders.
type ResendConfig struct {
	APIKey string `json:"api_key"`
	From   string `json:"from"`
}

// provisionDashboard builds the dashboard unless it is off.
func (h *Handler) provisionDashboard(oauth *codex.OAuth) error {
	cfg := DashboardConfig{}
	if h.Dashboard != nil {
		cfg = *h.Dashboard
	}
	if cfg.Disabled {
		return nil
	}
	repl := caddy.NewReplacer()
	logger := h.logger.Named("dashboard")
	var resend *dashboard.ResendMailer
	if rs := cfg.Resend; rs != nil {
		resend = &dashboard.ResendMailer{APIKey: repl.ReplaceAll(rs.APIKey, ""), From: repl.ReplaceAll(rs.From, "")}
	}
	var smtp *dashboard.SMTPMailer
	if s := cfg.SMTP; s != nil {
		smtp = &dashboard.SMTPMailer{
			Addr:     repl.ReplaceAll(s.Address, ""),
			Username: repl.ReplaceAll(s.Username, ""),
			Password: repl.ReplaceAll(s.Password, ""),
			From:     repl.ReplaceAll(s.From, ""),
			StartTLS: s.StartTLS,
		}
	}
	// Warn level, so a logged link is seen with the default log settings.
	mailer, err := dashboard.NewMailer(resend, smtp, func(msg string, kv ...any) { logger.Sugar().Warnw(msg, kv...) })
	if err != nil {
		return err
	}
	if resend == nil && smtp == nil {
		logger.Warn("dashboard sign-in links are written to this log, not mailed (mail log); configure smtp for real use")
	}
	if cfg.DevLinks {
		logger.Warn("mail log dev: sign-in links are shown in the page, so anyone can sign in as anyone; development only")
	}
	origin := repl.ReplaceAll(h.PublicOrigin, "")
	if origin == "" {
		logger.Warn("no public_origin: sign-in links are built from the request's Host header; set public_origin in production")
	}
	// The latest rate limits per user, set by the API handler on each
	// response. The vault keeps them across restarts, written off the
	// request path; the store is made over the vault when it opens.
	dc := dashboard.Config{
		OAuth:         oauth,
		Mailer:        mailer,
		PublicOrigin:  origin,
		Signup:        dashboard.SignupPolicy{Mode: dashboard.SignupMode(cfg.Signup), Domains: cfg.SignupDomains},
		DevReturnLink: cfg.DevLinks,
		Prefix:        cfg.Prefix,
		Logger:        slogOf(logger),
		ClientIP:      clientIP,
		Limiter:       h.limits.signin,
		Prices:        cfg.Prices,
		Admins:        cfg.Admins,
	}
	if dc.OIDC, err = cfg.OIDC.Resolve(func(s string) string { return repl.ReplaceAll(s, "") }); err != nil {
		return err
	}
	// The vault opens when the codex_proxy app starts (bindDashboard); the
	// config is checked now, and tells the dashboard's paths.
	routes, err := dashboard.NewMatcher(dc)
	if err != nil {
		return err
	}
	h.dashCfg, h.dashRoutes = &dc, routes
	logger.Info("dashboard enabled", zap.String("prefix", orSlash(cfg.Prefix)), zap.String("signup", string(dashboard.SignupMode(cfg.Signup))))
	return nil
}

// bindDashboard builds the dashboard over the vault, once it is open.
func (h *Handler) bindDashboard() error {
	if h.dashCfg == nil {
		return nil
	}
	dc := *h.dashCfg
	dc.Vault = h.vault
	h.quotas = dashboard.NewVaultQuotaStore(h.vault)
	dc.Quotas = h.quotas
	d, err := dashboard.NewDashboard(dc)
	if err != nil {
		return fmt.Errorf("dashboard: %w", err)
	}
	h.dashboard = d
	return nil
}

// cleanupDashboard lets mail still being sent finish, briefly.
func (h *Handler) cleanupDashboard() {
	if h.dashboard == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.dashboard.Close(ctx); err != nil {
		h.logger.Warn("dashboard: sign-in mails still being sent at shutdown were cancelled", zap.Error(err))
	}
}

func orSlash(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

// dashboardConfig returns h.Dashboard, creating it.
func (h *Handler) dashboardConfig() *DashboardConfig {
	if h.Dashboard == nil {
		h.Dashboard = &DashboardConfig{}
	}
	return h.Dashboard
}

// unmarshalDashboard parses the dashboard subdirectives:
//
//	dashboard off|<path-prefix>
//	signup    open|closed|domains <domain>...
//	smtp      <host:port> {
//		username <user>
//		password <secret>
//		from     <address>
//		starttls required|opportunistic|off
//	}
//	resend    {
//		api_key <key>
//		from    <address>
//	}
//	mail      log [dev]
//	price     <model> <input per 1M> <cached input per 1M> <output per 1M>
//	oidc      <issuer> { <option> <args>... } (dashboard.OIDCConfig.SetOption)
//	admins    <email>...
func (h *Handler) unmarshalDashboard(d *caddyfile.Dispenser, name string) error {
	cfg := h.dashboardConfig()
	switch name {
	case "resend", "smtp", "mail":
		// Each is given at most once (UnmarshalCaddyfile checks), so any
		// mailer already set is another one.
		if cfg.mailLog || cfg.SMTP != nil || cfg.Resend != nil {
			return d.Err("resend, smtp and mail log exclude each other")
		}
	}
	switch name {
	case "admins":
		if cfg.Admins = append(cfg.Admins, d.RemainingArgs()...); len(cfg.Admins) == 0 {
			return d.ArgErr()
		}
	case "dashboard":
		var arg string
		if err := oneArg(d, &arg); err != nil {
			return err
		}
		switch {
		case arg == "off":
			cfg.Disabled = true
		case arg == "on":
			cfg.Prefix = ""
		case strings.HasPrefix(arg, "/"):
			if arg == "/v1" || strings.HasPrefix(arg, "/v1/") {
				return d.Errf("dashboard prefix %q collides with the API under /v1/", arg)
			}
			cfg.Prefix = arg
		default:
			return d.Errf("dashboard takes off or a path prefix starting with /, not %q", arg)
		}
	case "signup":
		args := d.RemainingArgs()
		if len(args) == 0 {
			return d.ArgErr()
		}
		switch args[0] {
		case "open", "closed":
			if len(args) != 1 {
				return d.Errf("signup %s takes no domains", args[0])
			}
		case "domains":
			if len(args) < 2 {
				return d.Err("signup domains needs at least one domain")
			}
			cfg.SignupDomains = args[1:]
		default:
			return d.Errf("signup must be open, closed or domains <domain>..., not %q", args[0])
		}
		cfg.Signup = args[0]
	case "resend":
		if d.NextArg() {
			return d.ArgErr()
		}
		rs := &ResendConfig{}
		if err := blockArgs(d, "resend", map[string]*string{"api_key": &rs.APIKey, "from": &rs.From}); err != nil {
			return err
		}
		if rs.APIKey == "" || rs.From == "" {
			return d.Err("resend needs api_key and from")
		}
		cfg.Resend = rs
	case "smtp":
		s := &SMTPConfig{}
		if err := oneArg(d, &s.Address); err != nil {
			return err
		}
		fields := map[string]*string{"username": &s.Username, "password": &s.Password, "from": &s.From, "starttls": &s.StartTLS}
		if err := blockArgs(d, "smtp", fields); err != nil {
			return err
		}
		switch s.StartTLS {
		case "", dashboard.SMTPStartTLSRequired, dashboard.SMTPStartTLSOpportunistic, dashboard.SMTPStartTLSOff:
		default:
			return d.Errf("smtp starttls must be required, opportunistic or off, not %q", s.StartTLS)
		}
		if s.From == "" {
			return d.Err("smtp needs a from address")
		}
		cfg.SMTP = s
	case "mail":
		args := d.RemainingArgs()
		switch {
		case len(args) == 1 && args[0] == "log":
		case len(args) == 2 && args[0] == "log" && args[1] == "dev":
			cfg.DevLinks = true
		default:
			return d.Err("mail takes log or log dev (use smtp to send mail)")
		}
		cfg.mailLog = true
	case "price":
		args := d.RemainingArgs()
		if len(args) != 4 {
			return d.Err("price takes <model> <input per 1M> <cached input per 1M> <output per 1M> (USD)")
		}
		var f [3]float64
		for i, a := range args[1:] {
			v, err := strconv.ParseFloat(strings.TrimPrefix(a, "$"), 64)
			if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
				return d.Errf("price %s: %q is not a price in USD per 1M tokens", args[0], a)
			}
			f[i] = v
		}
		if _, dup := cfg.Prices[args[0]]; dup {
			return d.Errf("price for %q given more than once", args[0])
		}
		if cfg.Prices == nil {
			cfg.Prices = map[string]dashboard.Price{}
		}
		cfg.Prices[args[0]] = dashboard.Price{Input: f[0], CachedInput: f[1], Output: f[2]}
	case "oidc":
		cfg.OIDC = &dashboard.OIDCConfig{}
		if err := oneArg(d, &cfg.OIDC.Issuer); err != nil {
			return err
		}
		for n := d.Nesting(); d.NextBlock(n); {
			if err := cfg.OIDC.SetOption(d.Val(), d.RemainingArgs()); err != nil {
				return d.Err(err.Error())
			}
		}
	default:
		return fmt.Errorf("not a dashboard subdirective: %s", name)
	}
	return nil
}

// serveNext passes a request outside /v1/ and the dashboard to next
// (dashboard.ServeOrNotFound: the dashboard's 404 if next writes nothing).
func (h *Handler) serveNext(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if h.dashboard == nil {
		return next.ServeHTTP(w, r)
	}
	return h.dashboard.ServeOrNotFound(w, r, next.ServeHTTP)
}
