package api

import (
	"context"
	"sync"
)

// socketSet is the open WebSocket connections of a Handler. HTTP servers
// stop waiting for a connection once it is upgraded, so the Handler keeps
// its sockets itself and closes them in Shutdown. The zero value is an
// empty set that takes sockets.
type socketSet struct {
	mu       sync.Mutex
	open     map[*socket]struct{}
	draining bool
	live     sync.WaitGroup
}

// add takes s in; false once the set is draining.
func (ss *socketSet) add(s *socket) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.draining {
		return false
	}
	if ss.open == nil {
		ss.open = make(map[*socket]struct{})
	}
	ss.open[s] = struct{}{}
	ss.live.Add(1)
	return true
}

func (ss *socketSet) remove(s *socket) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.open, s)
	ss.live.Done()
}

// Shutdown closes the Handler's WebSockets gracefully, as a server
// shutdown does its requests: no new socket is accepted, idle ones close
// now with a going-away code (clients reconnect, to the new configuration
// after a reload), and one running a turn closes when the turn has
// finished and been recorded. It returns once all are closed, or when ctx
// ends, after cutting the rest. It also waits for the store writes of
// responses already answered. Plain HTTP requests are the server's to
// wait for.
func (h *Handler) Shutdown(ctx context.Context) error {
	ss := &h.sockets
	ss.mu.Lock()
	ss.draining = true
	open := make([]*socket, 0, len(ss.open))
	for s := range ss.open {
		open = append(open, s)
	}
	ss.mu.Unlock()
	for _, s := range open {
		s.closeWhenIdle(reasonShutdown)
	}
	done := make(chan struct{})
	go func() {
		ss.live.Wait()
		if h.store != nil { // the store writes of the last responses
			h.store.writes.Wait()
		}
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		ss.mu.Lock()
		for s := range ss.open {
			s.mu.Lock()
			c := s.c
			s.mu.Unlock()
			if c != nil {
				_ = c.CloseNow()
			}
		}
		ss.mu.Unlock()
		return ctx.Err()
	}
}
