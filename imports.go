// Package caddycodexproxy is the module root that xcaddy builds into Caddy:
// importing it registers the codex_proxy handler (see caddymodule).
package caddycodexproxy

import (
	// Register the Caddy modules.
	_ "github.com/usemysub/caddy-codex-proxy/caddymodule"
)
