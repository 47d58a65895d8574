package api

import (
	"errors"
	"fmt"
	"strings"

	"github.com/usemysub/caddy-codex-proxy/translate"
)

// Options are the settings of the /v1 pipeline an operator gives as plain
// Caddyfile subdirectives (`name arg...`). The Caddy glue embeds Options in
// its handler, so their JSON names sit at the handler's top level, and hands
// every subdirective it does not know itself to SetOption: a new setting is
// added here, with its parser, default and validation, not in the glue.
//
// The zero value is every default.
type Options struct {
	// ExposeAccountQuota, when false, hides the linked ChatGPT accounts'
	// usage from key holders everywhere: GET /v1/usage's account windows,
	// the upstream's x-codex-* headers and its codex.rate_limits events
	// (on a stream and on a client socket). Nil (the default): on.
	ExposeAccountQuota *bool `json:"expose_account_quota,omitempty"`
	// ServiceTiers are per-model default service tiers (Caddyfile
	// `service_tier <model> priority|default`, repeatable), by the model
	// slug sent upstream: a request to such a model that names no tier is
	// sent on it. "priority" is the Fast tier, "default" the account's
	// default. A key's service-tier policy still applies on top. Nil (the
	// default): no model has a default tier, a request without one runs on
	// the account's default.
	ServiceTiers map[string]string `json:"service_tiers,omitempty"`
	// ClientVersion is the Codex CLI version the proxy announces upstream
	// (the model catalog's client_version, the version header and the
	// User-Agent): the backend lists its newest models only to recent
	// clients. "" (the default): codex.DefaultClientVersion.
	ClientVersion string `json:"client_version,omitempty"`
	// UpstreamSocket, when false, sends every turn of a client WebSocket
	// upstream over HTTP/SSE with its whole input, instead of on a
	// WebSocket of the backend's own (websocket_upstream.go). Nil (the
	// default): on.
	UpstreamSocket *bool `json:"upstream_socket,omitempty"`
}

// ErrUnknownOption is SetOption's answer for a name that is not an option.
var ErrUnknownOption = errors.New("unrecognized subdirective")

// SetOption sets the option name from its Caddyfile arguments. A name that
// is not an option returns an error wrapping ErrUnknownOption; any other
// error's message names the option and what it accepts.
func (o *Options) SetOption(name string, args []string) error {
	switch name {
	case "expose_account_quota":
		on, err := onOff(name, args)
		if err != nil {
			return err
		}
		o.ExposeAccountQuota = &on
	case "service_tier":
		return o.setServiceTier(args)
	case "client_version":
		if len(args) != 1 || !validVersion(args[0]) {
			return fmt.Errorf("client_version takes one version such as 0.171.0, not %q", args)
		}
		o.ClientVersion = args[0]
	case "upstream_socket":
		on, err := onOff(name, args)
		if err != nil {
			return err
		}
		o.UpstreamSocket = &on
	default:
		return fmt.Errorf("%w %q", ErrUnknownOption, name)
	}
	return nil
}

// Repeatable reports whether the option name may be given more than once,
// each time adding an entry; the glue refuses any other repeat.
func (o *Options) Repeatable(name string) bool { return name == "service_tier" }

// Validate checks the options as a whole; SetOption checked each one, but
// a JSON config reaches here without it.
func (o Options) Validate() error {
	if o.ClientVersion != "" && !validVersion(o.ClientVersion) {
		return fmt.Errorf("client_version %q is not a version such as 0.171.0", o.ClientVersion)
	}
	for model, tier := range o.ServiceTiers {
		if model == "" || (tier != translate.TierPriority && tier != tierDefault) {
			return fmt.Errorf("service_tiers: model %q has tier %q; a model needs a name and the tier priority or default", model, tier)
		}
	}
	return nil
}

// validVersion accepts dotted numbers, one to four of them ("0.171.0").
func validVersion(v string) bool {
	parts := strings.Split(v, ".")
	if len(v) > 32 || len(parts) > 4 {
		return false
	}
	for _, p := range parts {
		if p == "" || strings.Trim(p, "0123456789") != "" {
			return false
		}
	}
	return true
}

// tierDefault is the service_tier option's name for the account's default
// tier (nothing is sent).
const tierDefault = "default"

// setServiceTier reads `service_tier <model> priority|default`; "fast" is
// accepted as the Fast tier's other name, like in requests.
func (o *Options) setServiceTier(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("service_tier takes a model and a tier (priority or default), not %q", args)
	}
	model, tier := args[0], strings.ToLower(args[1])
	switch tier {
	case "fast", translate.TierPriority:
		tier = translate.TierPriority
	case tierDefault:
	default:
		return fmt.Errorf("service_tier %s: the tier is priority (the Fast tier) or default, not %q", model, args[1])
	}
	if _, dup := o.ServiceTiers[model]; dup {
		return fmt.Errorf("service_tier %s given more than once", model)
	}
	if o.ServiceTiers == nil {
		o.ServiceTiers = map[string]string{}
	}
	o.ServiceTiers[model] = tier
	return nil
}

// exposeQuota is ExposeAccountQuota with its default.
func (o Options) exposeQuota() bool { return o.ExposeAccountQuota == nil || *o.ExposeAccountQuota }

// upstreamSocket is UpstreamSocket with its default.
func (o Options) upstreamSocket() bool { return o.UpstreamSocket == nil || *o.UpstreamSocket }

// onOff reads the one on|off argument of the option name.
func onOff(name string, args []string) (bool, error) {
	if len(args) != 1 || (args[0] != "on" && args[0] != "off") {
		return false, fmt.Errorf("%s takes one argument, on or off, not %q", name, args)
	}
	return args[0] == "on", nil
}
