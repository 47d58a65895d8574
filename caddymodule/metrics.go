package caddymodule

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/usemysub/caddy-codex-proxy/api"
	"github.com/usemysub/caddy-codex-proxy/metrics"
	"github.com/usemysub/caddy-codex-proxy/translate"
)

// registerMetrics registers the process's collectors (package metrics)
// with a config's registry, the one Caddy makes for every config load, and
// returns what the handler's /v1 pipeline counts through.
func registerMetrics(reg prometheus.Registerer, catalog *translate.Catalog) (*metrics.Observer, error) {
	if err := metrics.Register(reg); err != nil {
		return nil, err
	}
	return metrics.NewObserver(catalog), nil
}

var _ api.Observer = (*metrics.Observer)(nil)
