package caddymodule

import (
	"github.com/usemysub/caddy-codex-proxy/metrics"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// vaultSource is a vault as the metrics package counts it (metrics does
// not import vault). A comparable value: the same vault is the same key.
type vaultSource struct{ v *vault.Vault }

func (s vaultSource) DroppedLogs() uint64 { return s.v.DroppedLogs() }

func (s vaultSource) DroppedResponses() uint64 { return s.v.DroppedResponses() }

func (s vaultSource) ChangeCounts() metrics.ChangeCounts {
	c := s.v.ChangeStats()
	return metrics.ChangeCounts{Applied: c.Applied, RereadsFailed: c.RereadsFailed, Retries: c.Retries,
		Resyncs: c.Resyncs, ResyncsFailed: c.ResyncsFailed, Pending: c.Pending}
}
