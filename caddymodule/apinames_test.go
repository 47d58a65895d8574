package caddymodule

import "github.com/usemysub/caddy-codex-proxy/api"

// The handler tests here drive the /v1 pipeline through a real Caddy; they
// name a few of its values as they did when it lived in this package.
type usageResponse = api.UsageResponse

const (
	authFailLimit  = api.AuthFailLimit
	authFailWindow = api.AuthFailWindow
)
