package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/usemysub/caddy-codex-proxy/apierror"
	"github.com/usemysub/caddy-codex-proxy/codex"
)

// upSocket is one open upstream socket: a reader that answers the
// backend's pings and hands each event to the running turn, and the chain
// the backend holds for it — the connection's last completed response,
// which the next turn may continue with its new items only.
//
// At rest it holds no conversation: the chain is the response id, how
// many items it spans and a hash of them, so a long conversation costs the
// same few bytes as a short one.
type upSocket struct {
	s       upstreamConn
	account string // the vault account it was dialed on
	// idleAfter bounds the silence between a turn's events, as the HTTP
	// stream's idle timeout does.
	idleAfter time.Duration

	// keepalive pings the upstream while no turn runs (inTurn), every
	// pingEvery, so a connection a middlebox dropped is found before a
	// turn is written into it; nil: no pings.
	keepalive *time.Timer
	pingEvery time.Duration
	inTurn    atomic.Bool

	frames chan []byte   // events, from the reader to the running turn
	stop   chan struct{} // closed by close
	dead   chan struct{} // closed once the reader stopped; err says why
	err    error
	once   sync.Once

	// The chain, used by one turn at a time: lastID is "" when there is
	// none to continue.
	lastID   string
	chainLen int
	chainSum [sha256.Size]byte
}

func newUpSocket(s upstreamConn, account string, idle, ping time.Duration) *upSocket {
	c := &upSocket{s: s, account: account, idleAfter: idle, pingEvery: ping,
		frames: make(chan []byte), stop: make(chan struct{}), dead: make(chan struct{})}
	go c.read()
	if ping > 0 {
		// A timer, not a goroutine: an idle socket costs no stack for it.
		// Started once set, so that ping reads it set.
		c.keepalive = time.AfterFunc(time.Hour, c.ping)
		c.keepalive.Reset(ping)
	}
	return c
}

// ping is the keepalive: a pong within the interval, or the socket is
// closed (the next turn then goes over HTTP and dials anew). A running
// turn's events keep the socket alive themselves, and its reader is busy
// handing them over, so none is sent then.
func (c *upSocket) ping() {
	if c.isDead() {
		return
	}
	if !c.inTurn.Load() {
		ctx, cancel := context.WithTimeout(context.Background(), c.pingEvery)
		err := c.s.Ping(ctx)
		cancel()
		if err != nil && !c.inTurn.Load() {
			c.close()
			return
		}
	}
	c.keepalive.Reset(c.pingEvery)
}

// read runs for the socket's life: reading is what answers pings and
// notices a close, so it reads between turns too.
func (c *upSocket) read() {
	defer close(c.dead)
	for {
		b, err := c.s.Next(context.Background())
		if err != nil {
			c.err = err
			return
		}
		select {
		case c.frames <- b:
		case <-c.stop:
			c.err = errClosedByProxy
			return
		}
	}
}

// errClosedByProxy is a dead socket's cause when the proxy closed it.
var errClosedByProxy = errors.New("api: upstream socket closed by the proxy")

func (c *upSocket) close() {
	c.once.Do(func() {
		if c.keepalive != nil {
			c.keepalive.Stop()
		}
		close(c.stop)
		_ = c.s.Close()
	})
}

func (c *upSocket) isDead() bool {
	select {
	case <-c.dead:
		return true
	default:
		return false
	}
}

// cause is why a dead socket died.
func (c *upSocket) cause() error {
	<-c.dead
	return c.err
}

// next is the next event of the running turn.
func (c *upSocket) next(ctx context.Context, idle *time.Timer) ([]byte, error) {
	idle.Reset(c.idleAfter)
	select {
	case b := <-c.frames:
		return b, nil
	case <-c.dead:
		// Never io.EOF: to the relay that is a stream that ended, where
		// this one was cut.
		cause := c.err
		if errors.Is(cause, io.EOF) {
			cause = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("%w: %w", codex.ErrConnectionLost, cause)
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-idle.C:
		return nil, codex.ErrIdleTimeout
	}
}

// turn sends body (the translated request, its whole input) on the
// socket, as only its new items when it continues the socket's chain, and
// waits for the turn to start: the returned stream's body is the turn's
// events as SSE. An error event before any output is the *UpstreamError
// the HTTP answer would have been (so the usage limit fails over), or
// errUseHTTP when the upstream did not know the chain.
func (c *upSocket) turn(ctx context.Context, req *request, body []byte) (*codex.Stream, error) {
	frame, sum, err := c.frame(body)
	if err != nil {
		return nil, errUseHTTP // a body the translator made is an object with an input list; HTTP says what is wrong otherwise
	}
	incremental := c.lastID != ""
	c.inTurn.Store(true) // until the turn's body is closed, or it did not start
	started := false
	defer func() {
		if !started {
			c.inTurn.Store(false)
		}
	}()
	if c.isDead() {
		req.link.drop(c)
		return nil, errUseHTTP // provably not written
	}
	if err := c.s.Send(ctx, frame); err != nil {
		req.link.drop(c)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, connectionLost(err)
	}
	c.lastID = "" // until this turn completes, there is no chain to continue
	idle := time.NewTimer(c.idleAfter)
	var rl *codex.RateLimits
	for {
		ev, err := c.next(ctx, idle)
		if err != nil {
			idle.Stop()
			req.link.drop(c) // cancels the generation upstream
			switch {
			case ctx.Err() != nil:
				return nil, ctx.Err()
			case errors.Is(err, codex.ErrIdleTimeout):
				return nil, silentUpstream(c.idleAfter)
			}
			return nil, connectionLost(err)
		}
		switch typ := eventType(ev); {
		case typ == "codex.rate_limits":
			if r, ok := codex.RateLimitsEvent(ev); ok {
				rl = &r
			}
			continue
		case strings.HasPrefix(typ, "codex."):
			continue // the socket's own metadata: HTTP has none
		case typ == "error":
			idle.Stop()
			ue, code := codex.SocketError(ev)
			switch {
			case code == codex.CodePreviousResponseNotFound && incremental:
				return nil, errUseHTTP // the generation provably never started
			case code == codex.CodeSocketLimitReached:
				req.link.drop(c)
				return nil, errUseHTTP
			}
			return nil, ue
		}
		started = true
		b := &socketBody{ctx: ctx, c: c, link: req.link, idle: idle, first: ev, sum: sum}
		return &codex.Stream{Body: b, Header: http.Header{}, RateLimits: rl}, nil
	}
}

// connectionLost is the client-facing error of a socket that failed after
// the turn's frame may have been written: as on HTTP, it is not re-sent.
func connectionLost(err error) error {
	return &codex.UpstreamError{Err: &apierror.Error{Status: http.StatusBadGateway, Code: codex.CodeUpstreamError,
		Message: "The connection to the Codex upstream failed after the request was sent. " +
			"It was not re-sent, so that it cannot run twice; retry it later."},
		Cause: fmt.Errorf("%w: %w", codex.ErrConnectionLost, err)}
}

// silentUpstream is the client-facing error of a turn the upstream did not
// start answering in time. As for an HTTP header timeout, the generation
// may have run: it is not re-sent, and the record charges its prompt.
func silentUpstream(after time.Duration) error {
	return &codex.UpstreamError{Err: &apierror.Error{Status: http.StatusGatewayTimeout, Type: "server_error", Code: codex.CodeUpstreamTimeout,
		Message: fmt.Sprintf("The Codex upstream did not answer in time (nothing within %s). "+
			"The request was not re-sent, so that it cannot run twice; retry it later.", after)},
		Cause: codex.ErrIdleTimeout}
}

// chainHash is the running hash of a turn's chain: its whole input, then
// its output items as they complete.
type chainHash struct {
	h     hash.Hash
	items int
}

// add hashes one item in its canonical form, length-prefixed.
func (ch *chainHash) add(item []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(item)))
	ch.h.Write(n[:])
	ch.h.Write(item)
	ch.items++
}

// frame is the response.create of body: its input cut to the items past
// the socket's chain, with previous_response_id, when the chain is a
// prefix of it; the whole input otherwise. The hash it returns has the
// whole input in it.
func (c *upSocket) frame(body []byte) ([]byte, *chainHash, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return nil, nil, err
	}
	var items []json.RawMessage
	if err := json.Unmarshal(top["input"], &items); err != nil {
		return nil, nil, err
	}
	sum := &chainHash{h: sha256.New()}
	cut := 0
	for i, it := range items {
		canon, err := canonicalItem(it)
		if err != nil {
			return nil, nil, err
		}
		sum.add(canon)
		if c.lastID != "" && i+1 == c.chainLen && i+1 < len(items) {
			var at [sha256.Size]byte
			if copy(at[:], sum.h.Sum(nil)); at == c.chainSum {
				cut = i + 1
			}
		}
	}
	if cut > 0 {
		top["input"] = rawList(items[cut:])
		top["previous_response_id"], _ = json.Marshal(c.lastID)
	} else {
		c.lastID = "" // not continued: sent whole, the turn starts a new chain
	}
	top["type"] = json.RawMessage(`"response.create"`)
	frame, err := json.Marshal(top)
	return frame, sum, err
}

// canonicalItem is an item as the chain compares it: without its id and
// status (an output item has them, the same item replayed as input may
// not), its keys sorted.
func canonicalItem(item []byte) ([]byte, error) {
	d := json.NewDecoder(bytes.NewReader(item))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	delete(m, "id")
	delete(m, "status")
	return json.Marshal(m)
}

// socketBody is a socket turn's events as the SSE body the relay reads.
// It ends after the turn's terminal event; closed before that, it closes
// the upstream socket, which ends the generation upstream.
type socketBody struct {
	ctx   context.Context
	c     *upSocket
	link  *upstreamLink
	idle  *time.Timer
	first []byte
	sum   *chainHash

	pending []byte
	done    bool // the terminal event was read
	err     error
}

func (b *socketBody) Read(p []byte) (int, error) {
	for len(b.pending) == 0 {
		if b.done {
			return 0, io.EOF
		}
		if b.err != nil {
			return 0, b.err
		}
		ev := b.first
		b.first = nil
		if ev == nil {
			var err error
			if ev, err = b.c.next(b.ctx, b.idle); err != nil {
				b.err = err
				return 0, err
			}
		}
		b.event(ev)
	}
	n := copy(p, b.pending)
	b.pending = b.pending[n:]
	return n, nil
}

// event queues one event as SSE and follows the chain.
func (b *socketBody) event(ev []byte) {
	typ := eventType(ev)
	if strings.HasPrefix(typ, "codex.") {
		return
	}
	b.pending = append(b.pending[:0], "event: "...)
	b.pending = append(b.pending, typ...)
	b.pending = append(b.pending, "\ndata: "...)
	b.pending = append(b.pending, ev...)
	b.pending = append(b.pending, "\n\n"...)
	switch typ {
	case "response.output_item.done":
		var e struct {
			Item json.RawMessage `json:"item"`
		}
		if json.Unmarshal(ev, &e) == nil {
			if canon, err := canonicalItem(e.Item); err == nil {
				b.sum.add(canon)
			}
		}
	case "response.completed":
		var e struct {
			Response struct {
				ID string `json:"id"`
			} `json:"response"`
		}
		_ = json.Unmarshal(ev, &e)
		if e.Response.ID != "" {
			b.c.lastID, b.c.chainLen = e.Response.ID, b.sum.items
			copy(b.c.chainSum[:], b.sum.h.Sum(nil))
		}
		b.done = true
	case "response.failed", "response.incomplete", "error":
		b.done = true
	}
}

// Close ends the turn: a turn that did not reach its terminal event (the
// client went, the relay stopped) is cancelled by closing the socket.
func (b *socketBody) Close() error {
	b.idle.Stop()
	if !b.done {
		b.link.drop(b.c)
	}
	b.c.inTurn.Store(false)
	return nil
}
