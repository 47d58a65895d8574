package api

import (
	"errors"
	"fmt"
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
	// 5-hour and weekly windows from GET /v1/usage. Nil (the default): on.
	ExposeAccountQuota *bool `json:"expose_account_quota,omitempty"`
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
func (o *Options) Repeatable(name string) bool { return false }

// Validate checks the options as a whole; SetOption checked each one.
func (o Options) Validate() error { return nil }

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
