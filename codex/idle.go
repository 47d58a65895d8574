package codex

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"
)

// ErrIdleTimeout is returned by Stream.Read when the upstream sent nothing
// for the configured idle timeout; the request has been cancelled.
var ErrIdleTimeout = errors.New("codex: upstream stream idle timeout")

// idleReader cancels the request when no byte arrives for timeout. Reads
// block in the transport, so a timer — not a read deadline — does the
// cancelling.
type idleReader struct {
	rc      io.ReadCloser
	timeout time.Duration
	cancel  context.CancelCauseFunc
	timer   *time.Timer

	mu     sync.Mutex
	fired  bool
	closed bool
}

func newIdleReader(rc io.ReadCloser, timeout time.Duration, cancel context.CancelCauseFunc) *idleReader {
	r := &idleReader{rc: rc, timeout: timeout, cancel: cancel}
	r.timer = time.AfterFunc(timeout, r.fire)
	return r
}

func (r *idleReader) fire() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.fired = true
	r.mu.Unlock()
	r.cancel(ErrIdleTimeout)
}

// Read reads from the body and re-arms the timer whenever data arrives.
func (r *idleReader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	if n > 0 {
		r.timer.Reset(r.timeout)
	}
	if err != nil && err != io.EOF {
		r.mu.Lock()
		fired := r.fired
		r.mu.Unlock()
		if fired {
			err = ErrIdleTimeout
		}
	}
	return n, err
}

// Close stops the timer, cancels the request and closes the body.
func (r *idleReader) Close() error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.timer.Stop()
	r.cancel(context.Canceled)
	return r.rc.Close()
}
