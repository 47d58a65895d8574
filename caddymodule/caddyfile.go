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
//		keepalive             <duration>
//		upstream_idle_timeout <duration>
//		upstream_header_timeout <duration>
//		models_ttl            <duration>
//		log_retention         <duration>
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
		if seen[name] && name != "alias" && name != "price" && name != "claude_model" {
			return d.Errf("subdirective %q given more than once", name)
		}
		seen[name] = true
		switch name {
		case "vault":
			if err := oneArg(d, &h.Vault); err != nil {
				return err
			}
		case "encryption_key":
			h.EncryptionKeys = d.RemainingArgs()
			if len(h.EncryptionKeys) == 0 {
				return d.ArgErr()
			}
		case "api_key_pepper":
			if err := oneArg(d, &h.APIKeyPepper); err != nil {
				return err
			}
		case "upstream":
			if err := oneArg(d, &h.Upstream); err != nil {
				return err
			}
		case "oauth_issuer":
			if err := oneArg(d, &h.OAuthIssuer); err != nil {
				return err
			}
		case "public_origin":
			if err := oneArg(d, &h.PublicOrigin); err != nil {
				return err
			}
		case "originator":
			if err := oneArg(d, &h.Originator); err != nil {
				return err
			}
		case "system_prompt":
			if err := oneArg(d, &h.SystemPrompt); err != nil {
				return err
			}
		case "reasoning_summary":
			if err := oneArg(d, &h.ReasoningSummary); err != nil {
				return err
			}
		case "relay":
			if err := oneArg(d, &h.RelayURL); err != nil {
				return err
			}
			for relayNesting := d.Nesting(); d.NextBlock(relayNesting); {
				switch d.Val() {
				case "token":
					if h.RelayToken != "" {
						return d.Err("relay token given more than once")
					}
					if err := oneArg(d, &h.RelayToken); err != nil {
						return err
					}
				default:
					return d.Errf("unrecognized relay subdirective %q", d.Val())
				}
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
		case "keepalive":
			if err := durationArg(d, &h.Keepalive); err != nil {
				return err
			}
		case "upstream_idle_timeout":
			if err := durationArg(d, &h.UpstreamIdleTimeout); err != nil {
				return err
			}
		case "upstream_header_timeout":
			if err := durationArg(d, &h.UpstreamHeaderTimeout); err != nil {
				return err
			}
		case "models_ttl":
			if err := durationArg(d, &h.ModelsTTL); err != nil {
				return err
			}
		case "log_retention":
			if err := durationArg(d, &h.LogRetention); err != nil {
				return err
			}
		case "cors_origins":
			h.CORSOrigins = d.RemainingArgs()
			if len(h.CORSOrigins) == 0 {
				return d.ArgErr()
			}
		case "expose_account_quota":
			var s string
			if err := oneArg(d, &s); err != nil {
				return err
			}
			if s != "on" && s != "off" {
				return d.Errf("expose_account_quota must be on or off, not %q", s)
			}
			on := s == "on"
			h.ExposeAccountQuota = &on
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
		case "dashboard", "signup", "smtp", "resend", "mail", "price":
			if err := h.unmarshalDashboard(d, name); err != nil {
				return err
			}
		default:
			return d.Errf("unrecognized subdirective %q", name)
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
