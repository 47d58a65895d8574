package api

import (
	"context"
	"sync"
	"time"
)

// ping pings the client every so often, so idle sockets survive
// middleboxes and a dead peer is found: a client that does not answer
// within the interval is gone, and its socket is closed (which cancels
// its turn). It runs on a timer rather than a goroutine of its own, so an
// idle socket costs no goroutine stack for it; call the returned func to
// stop it.
func (s *socket) ping(ctx context.Context, every time.Duration) (stop func()) {
	p := &pinger{}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.t = time.AfterFunc(every, func() {
		pctx, cancel := context.WithTimeout(ctx, every)
		err := s.c.Ping(pctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				_ = s.c.CloseNow()
			}
			return
		}
		p.mu.Lock()
		if !p.stopped {
			p.t.Reset(every)
		}
		p.mu.Unlock()
	})
	return func() {
		p.mu.Lock()
		p.stopped = true
		p.t.Stop()
		p.mu.Unlock()
	}
}

// pinger is a socket's ping timer; mu orders its re-arming after a pong
// against its stop.
type pinger struct {
	mu      sync.Mutex
	t       *time.Timer
	stopped bool
}
