package codex

import (
	"context"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"time"
)

// attempt watches one upstream round trip through httptrace: whether any
// byte of the request may have left the machine, and the header deadline.
//
// The deadline is ours rather than http.Transport.ResponseHeaderTimeout
// because the transport's fires with an error that cannot be told from
// other transport failures without reading its text, and it does not apply
// to a custom Config.Transport or to HTTP/2 the same way.
type attempt struct {
	// sent turns true once the transport began writing the request: from
	// then on the upstream may have received it (conservatively, even when
	// the bytes were still in a buffer when the write failed).
	sent   atomic.Bool
	cancel context.CancelCauseFunc

	mu      sync.Mutex
	timeout time.Duration
	timer   *time.Timer
	fired   bool
	stopped bool
}

// startAttempt derives the request context for one try. The header
// deadline starts when a connection is ready, after dial and TLS (which
// have their own timeouts and send nothing that could start a
// generation), so it also bounds writing the request; it starts again
// once the request is written, for the wait for headers. When it passes,
// the request is cancelled with ErrHeaderTimeout.
func startAttempt(ctx context.Context, headerTimeout time.Duration) (*attempt, context.Context) {
	a := &attempt{timeout: headerTimeout}
	ctx, a.cancel = context.WithCancelCause(ctx)
	trace := &httptrace.ClientTrace{
		GotConn:      func(httptrace.GotConnInfo) { a.arm() },
		WroteHeaders: func() { a.sent.Store(true) },
		WroteRequest: func(httptrace.WroteRequestInfo) {
			a.sent.Store(true)
			a.arm()
		},
	}
	return a, httptrace.WithClientTrace(ctx, trace)
}

// arm (re)starts the header deadline.
func (a *attempt) arm() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopped || a.fired {
		return
	}
	if a.timer == nil {
		a.timer = time.AfterFunc(a.timeout, a.fire)
		return
	}
	a.timer.Reset(a.timeout)
}

func (a *attempt) fire() {
	a.mu.Lock()
	if a.stopped {
		a.mu.Unlock()
		return
	}
	a.fired = true
	a.mu.Unlock()
	a.cancel(ErrHeaderTimeout)
}

// stop ends the deadline once the round trip returned; it reports whether
// the deadline had already passed, in which case the request context is
// (or is about to be) cancelled and any response must be dropped.
func (a *attempt) stop() (timedOut bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stopped = true
	if a.timer != nil {
		a.timer.Stop()
	}
	return a.fired
}

// mayHaveSent reports whether any byte of the request may have reached
// the upstream.
func (a *attempt) mayHaveSent() bool { return a.sent.Load() }
