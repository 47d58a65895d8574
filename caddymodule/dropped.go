package caddymodule

import (
	"sync"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// liveVaults tracks the vaults this process has open, so one counter can
// report the request-log records all of them dropped. A vault's own count
// lives only as long as the vault; when one closes, its final count moves
// into retired, and the total never goes down.
var liveVaults = &vaultSet{live: map[*vault.Vault]struct{}{}}

type vaultSet struct {
	mu      sync.Mutex
	live    map[*vault.Vault]struct{}
	retired uint64
	// retiredResponses is retired for stored responses dropped.
	retiredResponses uint64
}

// add starts counting v's drops.
func (s *vaultSet) add(v *vault.Vault) {
	s.mu.Lock()
	s.live[v] = struct{}{}
	s.mu.Unlock()
}

// retire keeps v's final count after it closed.
func (s *vaultSet) retire(v *vault.Vault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.live[v]; ok {
		delete(s.live, v)
		s.retired += v.DroppedLogs()
		s.retiredResponses += v.DroppedResponses()
	}
}

// droppedLogs is the total across open and closed vaults.
func (s *vaultSet) droppedLogs() float64 {
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
func (s *vaultSet) droppedResponses() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.retiredResponses
	for v := range s.live {
		n += v.DroppedResponses()
	}
	return float64(n)
}
