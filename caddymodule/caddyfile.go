package caddymodule

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"

	"github.com/usemysub/caddy-codex-proxy/translate/anthropic"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("codex_proxy", parseCaddyfile)
	// Ordered before respond so a site block needs no `order` line.
	httpcaddyfile.RegisterDirectiveOrder("codex_proxy", httpcaddyfile.Before, "respond")
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	codex_proxy {
//		vault                 <path>
//		encryption_key        <key> [<older keys>...]
//		api_key_pepper        <secret>
//		upstream              <base URL>
//		oauth_issuer          <url>
//		public_origin         <url>
//		relay                 <url> {
//			token <secret>
//		}
//		originator            <name>
//		system_prompt         developer|instructions
//		reasoning_summary     auto|concise|detailed|none
//		max_body_size         <size>
//		images { max_image_size <size>; model <slug> }
//		keepalive             <duration>
//		upstream_idle_timeout <duration>
//		upstream_header_timeout <duration>
//		models_ttl            <duration>
//		log_retention         <duration>
//		responses { retention <duration>; max_size <size>; max_user_size <size> }
//		audit     { retention <duration> }
//		socket_max_age        <duration>
//		socket_ping           <duration>
//		cors_origins          <origin> [<origin>...]
//		alias                 <name> <model>
//		claude_model          <pattern> <model> [<effort>]
//		expose_account_quota  on|off
//		dashboard             off|<path-prefix>
//		signup                open|closed|domains <domain>...
//		smtp                  <host:port> {
//			username <user>
//			password <secret>
//			from     <address>
//			starttls required|opportunistic|off
//		}
//		resend                {
//			api_key <key>
//			from    <address>
//		}
//		mail                  log [dev]
//		price                 <model> <input> <cached input> <output>
//		oidc                  <issuer> { client_id, client_secret, domains, scopes, admin_claim, email_links, label }
//		admins                <email>...
//	}
//
// price (repeatable) sets a model's API list price in USD per 1M tokens
// for the dashboard's API-equivalent value; model * prices unknown models.
//
// Secrets accept placeholders such as {env.TOKEN_ENCRYPTION_KEY}.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if seen[name] && name != "alias" && name != "price" && name != "claude_model" && !h.Options.Repeatable(name) {
			return d.Errf("subdirective %q given more than once", name)
		}
		seen[name] = true
		if field, ok := stringOptions[name]; ok {
			if err := oneArg(d, field(h)); err != nil {
				return err
			}
			continue
		}
		if field, ok := durationOptions[name]; ok {
			if err := durationArg(d, field(h)); err != nil {
				return err
			}
			continue
		}
		if field, ok := listOptions[name]; ok {
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			*field(h) = args
			continue
		}
		switch name {
		case "relay":
			if err := oneArg(d, &h.RelayURL); err != nil {
				return err
			}
			if err := blockArgs(d, "relay", map[string]*string{"token": &h.RelayToken}); err != nil {
				return err
			}
		case "max_body_size":
			var s string
			if err := oneArg(d, &s); err != nil {
				return err
			}
			size, err := humanize.ParseBytes(s)
			if err != nil || size == 0 || size > 1<<40 {
				return d.Errf("invalid max_body_size %q", s)
			}
			h.MaxBodySize = int64(size)
		case "images":
			for nesting := d.Nesting(); d.NextBlock(nesting); {
				opt, val := d.Val(), ""
				if err := oneArg(d, &val); err != nil {
					return err
				}
				if err := h.Images.Set(opt, val); err != nil {
					return d.Err(err.Error())
				}
			}
		case "responses", "audit":
			for nesting := d.Nesting(); d.NextBlock(nesting); {
				if err := h.Limits.SetOption(name, d.Val(), d.RemainingArgs()); err != nil {
					return d.Err(err.Error())
				}
			}
		case "alias":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return d.ArgErr()
			}
			if h.Aliases == nil {
				h.Aliases = map[string]string{}
			}
			if _, dup := h.Aliases[args[0]]; dup {
				return d.Errf("alias %q given more than once", args[0])
			}
			h.Aliases[args[0]] = args[1]
		case "claude_model":
			rule, err := anthropic.ParseRule(d.RemainingArgs())
			if err != nil {
				return d.Err(err.Error())
			}
			h.ClaudeModels = append(h.ClaudeModels, rule)
		case "dashboard", "signup", "smtp", "resend", "mail", "price", "oidc", "admins":
			if err := h.unmarshalDashboard(d, name); err != nil {
				return err
			}
		default: // the pipeline's own options
			if err := h.Options.SetOption(name, d.RemainingArgs()); err != nil {
				return d.Err(err.Error())
			}
		}
	}
	return nil
}

// stringOptions are the subdirectives that take one string, by the field
// they set.
var stringOptions = map[string]func(*Handler) *string{
	"vault":             func(h *Handler) *string { return &h.Vault },
	"api_key_pepper":    func(h *Handler) *string { return &h.APIKeyPepper },
	"upstream":          func(h *Handler) *string { return &h.Upstream },
	"oauth_issuer":      func(h *Handler) *string { return &h.OAuthIssuer },
	"public_origin":     func(h *Handler) *string { return &h.PublicOrigin },
	"originator":        func(h *Handler) *string { return &h.Originator },
	"system_prompt":     func(h *Handler) *string { return &h.SystemPrompt },
	"reasoning_summary": func(h *Handler) *string { return &h.ReasoningSummary },
}

// durationOptions are the subdirectives that take one positive duration.
var durationOptions = map[string]func(*Handler) *caddy.Duration{
	"keepalive":               func(h *Handler) *caddy.Duration { return &h.Keepalive },
	"upstream_idle_timeout":   func(h *Handler) *caddy.Duration { return &h.UpstreamIdleTimeout },
	"upstream_header_timeout": func(h *Handler) *caddy.Duration { return &h.UpstreamHeaderTimeout },
	"models_ttl":              func(h *Handler) *caddy.Duration { return &h.ModelsTTL },
	"log_retention":           func(h *Handler) *caddy.Duration { return &h.LogRetention },
	"socket_max_age":          func(h *Handler) *caddy.Duration { return &h.SocketMaxAge },
	"socket_ping":             func(h *Handler) *caddy.Duration { return &h.SocketPing },
}

// listOptions are the subdirectives that take one or more strings.
var listOptions = map[string]func(*Handler) *[]string{
	"encryption_key": func(h *Handler) *[]string { return &h.EncryptionKeys },
	"cors_origins":   func(h *Handler) *[]string { return &h.CORSOrigins },
}

// blockArgs reads a block of one-argument subdirectives (relay, smtp,
// resend) into fields, each at most once.
func blockArgs(d *caddyfile.Dispenser, block string, fields map[string]*string) error {
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		if seen[sub] {
			return d.Errf("%s %s given more than once", block, sub)
		}
		seen[sub] = true
		dst, ok := fields[sub]
		if !ok {
			return d.Errf("unrecognized %s subdirective %q", block, sub)
		}
		if err := oneArg(d, dst); err != nil {
			return err
		}
	}
	return nil
}

// oneArg reads exactly one argument into dst.
func oneArg(d *caddyfile.Dispenser, dst *string) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	*dst = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

// durationArg reads one positive duration ("15s", "2d").
func durationArg(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	name := d.Val()
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	dur, err := caddy.ParseDuration(s)
	if err != nil {
		return d.Errf("invalid %s %s: %v", name, strconv.Quote(s), err)
	}
	if dur <= 0 {
		return d.Errf("%s must be a positive duration, not %s", name, strconv.Quote(s))
	}
	*dst = caddy.Duration(dur)
	return nil
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var m Handler
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return &m, err
}

// Interface guards
var (
	_ caddyfile.Unmarshaler = (*Handler)(nil)
)
