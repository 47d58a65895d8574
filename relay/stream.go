package relay

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/usemysub/caddy-codex-proxy/apierror"
	"github.com/usemysub/caddy-codex-proxy/translate"
)

// Translator turns upstream events into the client's dialect; it is what
// translate.ChatStream and translate.ResponsesStream have in common.
type Translator interface {
	Translate(dst []byte, ev translate.Event) []byte
	Finish(dst []byte) []byte
	Fail(dst []byte, err *apierror.Error) []byte
	Started() bool
	Done() bool
	Result() translate.StreamResult
}

// Options tune one relay.
type Options struct {
	// Start is when the client's request arrived; TTFB is measured from it
	// and keepalives count idleness from it until the first write.
	Start time.Time
	// Keepalive is the longest the client waits without a byte once the
	// stream runs; an SSE comment fills the silence. Zero sends none.
	Keepalive time.Duration
}

// ClientGone is the Outcome status of a request whose client went away,
// nginx's convention.
const ClientGone = apierror.StatusClientGone

// Outcome is what happened to one relayed response.
type Outcome struct {
	// Status is the HTTP status the client got: 200, the status of an
	// error answered before any output, or ClientGone.
	Status int
	// Result is what the translator saw: usage, finish reason, and the
	// failure, if any, reported to the client (Result.Err).
	Result translate.StreamResult
	// TTFB is the time from Options.Start to the first byte sent.
	TTFB time.Duration
	// ReadErr is the upstream read failure that broke the stream, nil when
	// it ended normally; the client was told with an error event.
	ReadErr error
}

// Pools for the relay loop: every stream needs a 32 KiB read buffer and an
// output buffer, and allocating them per request shows up as GC work.
var (
	readerPool = sync.Pool{New: func() any { return translate.NewReader(nil) }}
	outPool    = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}
)

// maxBurst bounds how much translated output is held before a write even
// when more events are already buffered.
const maxBurst = 32 << 10

// Stream relays one upstream stream event by event. Nothing is committed
// until the response has real output, so a failure that arrives first still
// gets its real HTTP status; after that, failures become an error event.
// Translated events are written in bursts: everything the last upstream read
// delivered goes out in one write and one flush, which keeps syscalls per
// event low without delaying any event behind the network. ctx is the
// client request's context; the caller closes up.
func Stream(ctx context.Context, w http.ResponseWriter, up io.ReadCloser, tr Translator, opts Options) (o Outcome) {
	sw := &sseWriter{w: w, rc: http.NewResponseController(w), start: opts.Start}
	sw.startKeepalive(opts.Keepalive)
	defer sw.stop()

	rd := readerPool.Get().(*translate.Reader)
	rd.Reset(up)
	outp := outPool.Get().(*[]byte)
	out := (*outp)[:0]
	defer func() {
		rd.Reset(nil)
		readerPool.Put(rd)
		if cap(out) <= 256<<10 { // do not keep buffers a huge event grew
			*outp = out[:0]
			outPool.Put(outp)
		}
	}()
	// Whatever the end, the outcome says how much output went by: a stream
	// that ends without its usage is charged by it. (Deferred after the
	// pool's defer, so it runs before the reader is reset.)
	defer func() { o.Result.OutputBytes = rd.DeltaBytes() }()
	gone := func() Outcome {
		o.Status, o.Result, o.TTFB = ClientGone, tr.Result(), sw.ttfb
		o.Result.Err = nil // the client left; nothing failed for it
		return o
	}
	for {
		ev, err := rd.Next()
		if err != nil {
			if ctx.Err() != nil {
				return gone()
			}
			if errors.Is(err, io.EOF) {
				out = tr.Finish(out)
			} else {
				o.ReadErr = err
				out = tr.Fail(out, readFailure(err))
			}
		} else {
			out = tr.Translate(out, ev)
		}
		end := err != nil || tr.Done()
		if !tr.Started() && !end {
			continue // bookkeeping events wait for real output
		}
		if !tr.Started() && end {
			if res := tr.Result(); res.Err != nil && sw.stop() {
				// Nothing was sent yet: answer with the real status.
				apierror.Write(w, res.Err)
				o.Status, o.Result = res.Err.Status, res
				return o
			}
		}
		if len(out) > 0 && (end || len(out) >= maxBurst || !rd.Pending()) {
			if werr := sw.write(out); werr != nil {
				return gone()
			}
			out = out[:0]
		}
		if end {
			if err == nil {
				// The terminal event arrived before the body's end.
				drainFinished(up)
			}
			break
		}
	}
	o.Result = tr.Result()
	o.TTFB = sw.ttfb
	o.Status = http.StatusOK
	return o
}

// drainFinished reads what is left of an upstream body after its terminal
// event, normally only the chunked terminator, so the transport can reuse
// the keep-alive connection: a body closed before EOF closes the
// connection, and the next request pays a new dial and TLS handshake. It
// gives up after 64 KiB or 100 ms.
func drainFinished(up io.ReadCloser) {
	t := time.AfterFunc(100*time.Millisecond, func() { _ = up.Close() })
	defer t.Stop()
	_, _ = io.CopyN(io.Discard, up, 64<<10)
}
