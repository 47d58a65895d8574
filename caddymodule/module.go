// Package caddymodule is the Caddy glue of the codex proxy: module registration,
// configuration and request routing. The logic lives in Caddy-free packages
// (translate, vault); this package only wires them into Caddy.
package caddymodule

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler is the codex_proxy HTTP handler. At this stage it is a placeholder
// that passes every request to the next handler; the OpenAI-compatible API is
// wired in by a later change.
type Handler struct{}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.codex_proxy",
		New: func() caddy.Module { return new(Handler) },
	}
}

// ServeHTTP passes the request on unchanged.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	return next.ServeHTTP(w, r)
}

// Interface guards
var (
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
