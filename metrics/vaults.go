package metrics

import "sync"

// DropCounter is a vault as the dropped-records counter reads it.
type DropCounter interface {
	// DroppedLogs is how many request-log records it has lost so far.
	DroppedLogs() uint64
}

// Vaults tracks the vaults this process has open, so one counter can
// report the request-log records all of them dropped. A vault's own count
// lives only as long as the vault; when one closes, its final count moves
// into the retired total, and the sum never goes down.
var Vaults = &VaultSet{live: map[DropCounter]struct{}{}}

// VaultSet is the set Vaults is; its zero value is not usable.
type VaultSet struct {
	mu      sync.Mutex
	live    map[DropCounter]struct{}
	retired uint64
}

// Add starts counting v's drops.
func (s *VaultSet) Add(v DropCounter) {
	s.mu.Lock()
	s.live[v] = struct{}{}
	s.mu.Unlock()
}

// Retire keeps v's final count after it closed; call it after Close, so
// drops while closing count too.
func (s *VaultSet) Retire(v DropCounter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.live[v]; ok {
		delete(s.live, v)
		s.retired += v.DroppedLogs()
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
