package relay

import (
	"net/http"
	"sync"
	"time"

	"github.com/usemysub/caddy-codex-proxy/translate"
)

// sseWriter serialises writes from the relay loop and the keepalive timer.
type sseWriter struct {
	mu        sync.Mutex
	w         http.ResponseWriter
	rc        *http.ResponseController
	start     time.Time
	committed bool
	stopped   bool
	lastWrite time.Time
	ttfb      time.Duration
	err       error
	every     time.Duration
	timer     *time.Timer
}

// commitLocked sends the stream's headers; mu must be held.
func (s *sseWriter) commitLocked() {
	if s.committed {
		return
	}
	s.committed = true
	h := s.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	h.Del("Content-Length")
	s.w.WriteHeader(http.StatusOK)
	s.ttfb = time.Since(s.start)
}

// write sends b and flushes; it returns the first write error.
func (s *sseWriter) write(b []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.commitLocked()
	if _, err := s.w.Write(b); err != nil {
		s.err = err
		return err
	}
	if err := s.rc.Flush(); err != nil {
		s.err = err
		return err
	}
	s.lastWrite = time.Now()
	return nil
}

// startKeepalive sends an SSE comment whenever nothing was written for
// every. A timer rather than a goroutine per stream keeps idle streams
// cheap.
func (s *sseWriter) startKeepalive(every time.Duration) {
	if every <= 0 {
		return
	}
	s.mu.Lock() // the timer may fire before AfterFunc returns
	defer s.mu.Unlock()
	s.every = every
	s.timer = time.AfterFunc(every, s.keepalive)
}

func (s *sseWriter) keepalive() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped || s.err != nil {
		return
	}
	last := s.lastWrite
	if last.IsZero() {
		last = s.start
	}
	if idle := time.Since(last); idle < s.every {
		s.timer.Reset(s.every - idle)
		return
	}
	s.commitLocked()
	if _, err := s.w.Write(translate.Keepalive); err != nil {
		s.err = err
		return
	}
	if err := s.rc.Flush(); err != nil {
		s.err = err
		return
	}
	s.lastWrite = time.Now()
	s.timer.Reset(s.every)
}

// stop ends the keepalives; after it returns none will write. It reports
// whether nothing was committed, so the caller may still answer with a
// status of its own.
func (s *sseWriter) stop() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	if s.timer != nil {
		s.timer.Stop()
	}
	return !s.committed
}
