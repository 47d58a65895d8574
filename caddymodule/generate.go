package caddymodule

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/usemysub/caddy-codex-proxy/codex"
	"github.com/usemysub/caddy-codex-proxy/translate"
)

// Pools for the relay loop: every stream needs a 32 KiB read buffer and an
// output buffer, and allocating them per request shows up as GC work.
var (
	readerPool = sync.Pool{New: func() any { return translate.NewReader(nil) }}
	outPool    = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}
)

// streamTranslator is what ChatStream and ResponsesStream have in common.
type streamTranslator interface {
	Translate(dst []byte, ev translate.Event) []byte
	Finish(dst []byte) []byte
	Fail(dst []byte, err *translate.Error) []byte
	Started() bool
	Done() bool
	Result() translate.StreamResult
}

// serveGenerate handles /v1/chat/completions (chat) and /v1/responses.
func (h *Handler) serveGenerate(w http.ResponseWriter, r *http.Request, req *apiRequest, chat bool) {
	body, bad := readBody(w, r, h.MaxBodySize)
	if bad != nil {
		h.fail(w, req, bad, 0)
		return
	}
	opts := translate.RequestOptions{
		Catalog:          h.catalog,
		SystemMode:       translate.SystemMode(h.SystemPrompt),
		ReasoningSummary: h.ReasoningSummary,
		CacheKeySalt:     req.user.ID,
		MaxEffort:        req.key.Policy.MaxEffort,
	}
	var err error
	if chat {
		req.mapped, err = translate.ChatToResponses(body, opts)
	} else {
		req.mapped, err = translate.NormalizeResponses(body, opts)
	}
	if err != nil {
		e, retry := clientError(err)
		h.fail(w, req, e, retry)
		return
	}
	// The key's policy, after the model is known and before anything goes
	// upstream.
	if !h.checkKeyModel(w, req) {
		return
	}
	release, ok := h.admitKey(w, req)
	if !ok {
		return
	}
	defer release() // the stream ended or the client went away
	m := req.mapped
	if len(m.Dropped) > 0 {
		if c := h.logger.Check(zap.DebugLevel, "dropped parameters the backend rejects"); c != nil {
			c.Write(zap.String("request_id", req.id), zap.Strings("params", m.Dropped))
		}
	}

	upStart := time.Now()
	up, err := h.client.Responses(r.Context(), h.tokenSource(req.user.ID), m.Body,
		codex.RequestHeaders{PromptCacheKey: m.PromptCacheKey, RequestID: req.id})
	h.metrics.upstreamLatency(time.Since(upStart))
	if err != nil {
		if r.Context().Err() != nil {
			req.status = 499
			return
		}
		e, retry := clientError(err)
		if e.Status >= http.StatusInternalServerError {
			h.logger.Warn("upstream request failed", zap.String("request_id", req.id), zap.String("user_id", req.user.ID),
				zap.String("route", req.route), zap.Int("status", e.Status), zap.String("error_code", e.Code), zap.Error(err))
		}
		h.fail(w, req, m.CallIDs.RestoreError(e), retry)
		return
	}
	defer up.Close()
	if up.RateLimits != nil {
		h.quotas.Set(req.user.ID, up.RateLimits) // in memory; a map store
	}
	codex.PassHeaders(w.Header(), up.Header)

	chatOpts := translate.ChatStreamOptions{Model: m.ClientModel, IncludeUsage: m.IncludeUsage, ToolNames: m.ToolNames,
		CallIDs: m.CallIDs, LegacyFunctions: m.LegacyFunctions}
	if !m.Stream {
		var out []byte
		if chat {
			out, req.result = translate.AggregateChat(up, chatOpts)
		} else {
			out, req.result = translate.AggregateResponses(up, m.ToolNames, m.CallIDs)
		}
		if req.result.Err != nil {
			if r.Context().Err() != nil {
				req.status = 499
				return
			}
			h.fail(w, req, req.result.Err, 0)
			return
		}
		drainFinished(up)
		req.ttfb = time.Since(req.start)
		req.status = http.StatusOK
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(out)
		return
	}

	var tr streamTranslator
	if chat {
		tr = translate.NewChatStream(chatOpts)
	} else {
		tr = &translate.ResponsesStream{ToolNames: m.ToolNames, CallIDs: m.CallIDs}
	}
	h.stream(w, r, req, up, tr)
}

// fail answers with an error before any byte of a response was sent.
func (h *Handler) fail(w http.ResponseWriter, req *apiRequest, e *translate.Error, retry time.Duration) {
	req.status, req.errObj = e.Status, e
	writeRetryAfter(w, retry)
	writeError(w, e)
}

// stream relays one upstream stream event by event. Nothing is committed
// until the response has real output, so a failure that arrives first still
// gets its real HTTP status; after that, failures become an error event.
// Translated events are written in bursts: everything the last upstream read
// delivered goes out in one write and one flush, which keeps syscalls per
// event low without delaying any event behind the network.
func (h *Handler) stream(w http.ResponseWriter, r *http.Request, req *apiRequest, up io.ReadCloser, tr streamTranslator) {
	sw := &sseWriter{w: w, rc: http.NewResponseController(w), start: req.start}
	h.metrics.streamStarted()
	defer h.metrics.streamEnded()
	sw.startKeepalive(time.Duration(h.Keepalive))
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
	for {
		ev, err := rd.Next()
		if err != nil {
			if r.Context().Err() != nil {
				req.status = 499
				return
			}
			if errors.Is(err, io.EOF) {
				out = tr.Finish(out)
			} else {
				h.logger.Warn("upstream stream broke mid-response", zap.String("request_id", req.id),
					zap.String("user_id", req.user.ID), zap.String("route", req.route), zap.Error(err))
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
				req.result = res
				h.fail(w, req, res.Err, 0)
				return
			}
		}
		if len(out) > 0 && (end || len(out) >= maxBurst || !rd.Pending()) {
			if werr := sw.write(out); werr != nil {
				req.status = 499
				return
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
	req.result = tr.Result()
	req.ttfb = sw.ttfb
	req.status = http.StatusOK
	if req.result.Err != nil {
		req.errObj = req.result.Err
	}
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

// maxBurst bounds how much translated output is held before a write even
// when more events are already buffered.
const maxBurst = 32 << 10

// readFailure maps a broken upstream read to the error event the client
// gets. Causes are told apart by sentinel errors, never by message text:
// net/http's "server closed idle connection" is a dropped connection, not
// the proxy's idle timeout.
func readFailure(err error) *translate.Error {
	e := &translate.Error{Status: http.StatusBadGateway, Type: "server_error", Code: "upstream_stream_error"}
	switch {
	case errors.Is(err, codex.ErrIdleTimeout):
		e.Message = "the upstream sent nothing for too long and the stream was closed; retry the request"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		e.Message = "the upstream stream timed out; retry the request"
	case errors.Is(err, context.Canceled):
		e.Message = "the upstream stream was cancelled; retry the request"
	case errors.Is(err, translate.ErrEventTooLarge):
		e.Message = "the upstream sent an event larger than the proxy accepts"
	case errors.Is(err, io.ErrUnexpectedEOF):
		e.Message = "the upstream closed the connection mid-stream; retry the request"
	default:
		e.Message = "the upstream connection failed mid-stream; retry the request"
	}
	return e
}

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
