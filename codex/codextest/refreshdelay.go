package codextest

import (
	"net/http"
	"time"
)

// DelayRefreshes makes each of the next n refresh_token grants wait d
// before the issuer looks at it, as a slow network or issuer would. A
// grant whose client goes away during the wait (a proxy killed
// mid-refresh) is never processed: its refresh token stays unused, as
// when the request never reached the issuer. The grant is recorded in
// Requests as soon as it arrives, so a test can tell it is waiting;
// RefreshCount counts it once it is processed.
func (s *Server) DelayRefreshes(n int, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.refreshDelays = append(s.refreshDelays, d)
	}
}

// RefreshReuses returns how many refresh grants presented a refresh token
// that had already been used (answered refresh_token_reused, which revokes
// the login, as the real issuer does).
func (s *Server) RefreshReuses() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reuses
}

// delayRefresh waits out the next DelayRefreshes delay, if any; false if
// the client went away (or the fake closed) meanwhile.
func (s *Server) delayRefresh(r *http.Request) bool {
	s.mu.Lock()
	var d time.Duration
	if len(s.refreshDelays) > 0 {
		d = s.refreshDelays[0]
		s.refreshDelays = s.refreshDelays[1:]
	}
	s.mu.Unlock()
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	case <-s.closed:
		return false
	}
}
