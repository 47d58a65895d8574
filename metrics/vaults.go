package metrics

import (
	"sync"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// Source is a vault as the vault counters read it (*vault.Vault).
type Source interface {
	// DroppedLogs is how many request-log records it has lost so far.
	DroppedLogs() uint64
	// DroppedResponses is how many stored responses it did not keep (over
	// the per-response cap) or dropped for a user's cap.
	DroppedResponses() uint64
	// ChangeStats is how it handled other instances' changes so far.
	ChangeStats() vault.ChangeStats
}

var _ Source = (*vault.Vault)(nil)

// ChangeCounts are vault.ChangeStats summed over vaults: all grow over a
// vault's life but Pending, a gauge.
type ChangeCounts = vault.ChangeStats

// addStats sums o into c.
func addStats(c *ChangeCounts, o ChangeCounts) {
	c.Applied += o.Applied
	c.RereadsFailed += o.RereadsFailed
	c.Retries += o.Retries
	c.Resyncs += o.Resyncs
	c.ResyncsFailed += o.ResyncsFailed
	c.Pending += o.Pending
}

// Vaults tracks the vaults this process has open, so one counter can
// report what all of them did. A vault's own counts live only as long as
// the vault; when one closes, its final counts move into the retired
// totals, so the sums never go down.
var Vaults = &VaultSet{live: map[Source]struct{}{}}

// VaultSet is the set Vaults is; its zero value is not usable.
type VaultSet struct {
	mu               sync.Mutex
	live             map[Source]struct{}
	retired          uint64
	retiredResponses uint64
	retiredChanges   ChangeCounts
}

// Add starts counting v.
func (s *VaultSet) Add(v Source) {
	s.mu.Lock()
	s.live[v] = struct{}{}
	s.mu.Unlock()
}

// Retire keeps v's final counts after it closed; call it after Close, so
// what happens while closing counts too.
func (s *VaultSet) Retire(v Source) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.live[v]; ok {
		delete(s.live, v)
		s.retired += v.DroppedLogs()
		s.retiredResponses += v.DroppedResponses()
		c := v.ChangeStats()
		c.Pending = 0 // a closed vault waits for nothing
		addStats(&s.retiredChanges, c)
	}
}

// droppedLogs is the total across open and closed vaults.
func (s *VaultSet) droppedLogs() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.retired
	for v := range s.live {
		n += v.DroppedLogs()
	}
	return float64(n)
}

// droppedResponses is the stored responses dropped across open and closed
// vaults.
func (s *VaultSet) droppedResponses() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.retiredResponses
	for v := range s.live {
		n += v.DroppedResponses()
	}
	return float64(n)
}

// changes is the sum of the change counts across open and closed vaults.
func (s *VaultSet) changes() ChangeCounts {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.retiredChanges
	for v := range s.live {
		addStats(&c, v.ChangeStats())
	}
	return c
}

// changeCounter is a CounterFunc (or gauge) over one of the change counts.
func (s *VaultSet) changeCounter(pick func(ChangeCounts) uint64) func() float64 {
	return func() float64 { return float64(pick(s.changes())) }
}
