package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// spec is one kind of request a target answers.
type spec struct {
	url        string
	header     http.Header
	body       []byte
	kind       checkKind
	minEvents  int // events (SSE) or content bytes (JSON) the answer must at least have
	protoMajor int // 1 or 2: the protocol the client must have used
}

// result accumulates what a target did over one or more windows.
type result struct {
	requests   int
	errors     int
	errSamples []string
	ttfb, ttlb []time.Duration
	bytes      int64
	wall       time.Duration // summed window lengths
	serverCPU  time.Duration // CPU of the server process over the windows
	clientCPU  time.Duration // CPU of the load generator and the upstream fake
	otherCPU   time.Duration // CPU of everything else on the machine
	// Busy and total ticks of the load generator's CPUs (/proc/stat): the
	// share says whether the client, not the server, may have set the pace.
	genBusy, genTotal int64
}

// genBusyShare is how busy the load generator's CPUs were, 0..1.
func (r *result) genBusyShare() float64 {
	if r.genTotal <= 0 {
		return 0
	}
	return float64(r.genBusy) / float64(r.genTotal)
}

// maxGenBusy is the load generator CPUs' busy share above which a window's
// req/s (and every ratio built on it) is marked invalid: the client may
// have been the bottleneck.
const maxGenBusy = 0.85

// invalid reports a throughput measured with the load generator's CPUs
// above maxGenBusy.
func (r *result) invalid() bool { return r.genBusyShare() > maxGenBusy }

const maxErrSamples = 5

func (r *result) addErr(err error) {
	r.errors++
	if len(r.errSamples) < maxErrSamples {
		r.errSamples = append(r.errSamples, err.Error())
	}
}

// merge adds o into r.
func (r *result) merge(o *result) {
	r.requests += o.requests
	r.errors += o.errors
	for _, s := range o.errSamples {
		if len(r.errSamples) < maxErrSamples {
			r.errSamples = append(r.errSamples, s)
		}
	}
	r.ttfb = append(r.ttfb, o.ttfb...)
	r.ttlb = append(r.ttlb, o.ttlb...)
	r.bytes += o.bytes
	r.wall += o.wall
	r.serverCPU += o.serverCPU
	r.clientCPU += o.clientCPU
	r.otherCPU += o.otherCPU
	r.genBusy += o.genBusy
	r.genTotal += o.genTotal
}

func (r *result) rps() float64 {
	if r.wall <= 0 {
		return 0
	}
	return float64(r.requests) / r.wall.Seconds()
}

// cpuPer1k is server CPU seconds per 1,000 completed requests.
func (r *result) cpuPer1k() float64 {
	if r.requests == 0 {
		return 0
	}
	return r.serverCPU.Seconds() / float64(r.requests) * 1000
}

// percentile returns the p-th percentile (0..100) of ds, nearest rank.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	k := int(p/100*float64(len(s))+0.5) - 1
	k = max(0, min(k, len(s)-1))
	return s[k]
}

// newClient builds the load generator's HTTP client for one target. h2
// targets are reached over TLS and must negotiate HTTP/2; h1 targets over
// plain HTTP/1.1. Every dial goes to 127.0.0.1 whatever the URL's host
// (localhost must not try ::1 first).
func newClient(proto string, roots *x509.CertPool, conns int) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			_, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			return d.DialContext(ctx, "tcp4", net.JoinHostPort("127.0.0.1", port))
		},
		MaxIdleConns:        conns + 16,
		MaxIdleConnsPerHost: conns + 16,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	var p http.Protocols
	if proto == "h2" {
		p.SetHTTP2(true)
		cfg := &tls.Config{RootCAs: roots, ServerName: "localhost"}
		if roots == nil {
			// Only the fake's self-signed certificate (target a); loopback.
			cfg.InsecureSkipVerify = true
		}
		tr.TLSClientConfig = cfg
		tr.ForceAttemptHTTP2 = true
	} else {
		p.SetHTTP1(true)
	}
	tr.Protocols = &p
	return &http.Client{Transport: tr}
}

// worker holds one worker's reusable buffers, and for a WebSocket target
// its connection (socket.go).
type worker struct {
	buf  []byte
	chk  *bodyCheck
	sock *websocket.Conn
}

func newWorker(s *spec) *worker {
	if s.kind == checkSocket {
		return &worker{chk: newBodyCheck(s.kind, s.minEvents)}
	}
	return &worker{buf: make([]byte, 32<<10), chk: newBodyCheck(s.kind, s.minEvents)}
}

// do sends one request and reads the whole answer.
func (w *worker) do(ctx context.Context, c *http.Client, s *spec, timeout time.Duration, onFirst func()) (ttfb, ttlb time.Duration, n int64, err error) {
	if s.kind == checkSocket {
		return w.turn(ctx, c, s, timeout)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(s.body))
	if err != nil {
		return 0, 0, 0, err
	}
	for k, v := range s.header {
		req.Header[k] = v
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return 0, 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, 0, 0, fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	if resp.ProtoMajor != s.protoMajor {
		return 0, 0, 0, fmt.Errorf("answered over %s, want HTTP/%d", resp.Proto, s.protoMajor)
	}
	w.chk.reset()
	var first time.Time
	for {
		m, rerr := resp.Body.Read(w.buf)
		if m > 0 {
			if first.IsZero() {
				first = time.Now()
				if onFirst != nil {
					onFirst()
				}
			}
			w.chk.Write(w.buf[:m])
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return 0, 0, w.chk.bytes, fmt.Errorf("reading the body after %d bytes: %w", w.chk.bytes, rerr)
		}
	}
	end := time.Now()
	if first.IsZero() {
		return 0, 0, 0, errors.New("empty body")
	}
	if err := w.chk.verdict(); err != nil {
		return 0, 0, w.chk.bytes, err
	}
	return first.Sub(start), end.Sub(start), w.chk.bytes, nil
}

// requestTimeout bounds every fast request.
const requestTimeout = 30 * time.Second

// runClosed runs a closed loop: conc workers send requests back to back
// until dur has passed; requests started before the end are finished and
// counted, and the window lasts until the last one is.
func runClosed(ctx context.Context, c *http.Client, s *spec, conc int, dur time.Duration, keep bool) *result {
	var mu sync.Mutex
	res := &result{}
	start := time.Now()
	deadline := start.Add(dur)
	var wg sync.WaitGroup
	for i := 0; i < conc; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := newWorker(s)
			defer w.close()
			var local result
			// Bounded by time, and by count as a safety net.
			for n := 0; n < 10_000_000 && time.Now().Before(deadline) && ctx.Err() == nil; n++ {
				ttfb, ttlb, b, err := w.do(ctx, c, s, requestTimeout, nil)
				if err != nil {
					if ctx.Err() != nil {
						break
					}
					local.addErr(err)
					continue
				}
				local.requests++
				local.bytes += b
				if keep {
					local.ttfb = append(local.ttfb, ttfb)
					local.ttlb = append(local.ttlb, ttlb)
				}
			}
			mu.Lock()
			res.merge(&local)
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.wall = time.Since(start)
	return res
}

// slowResult is what the many-slow-streams run measured besides the
// usual figures.
type slowResult struct {
	result
	streams     int
	maxOpen     int   // most streams open at once
	rssBeforeKB int64 // server RSS before the streams
	rssDuringKB int64 // highest server RSS while maxOpen streams were open
	hwmKB       int64
	// Go memory statistics of the server (from /debug/pprof/heap?debug=1)
	// before the streams and halfway through them; nil when unavailable.
	statsBefore, statsMid map[string]int64
}

// runSlow opens n streams, spread over ramp, and reads each to its end;
// while they are open it samples the server's RSS.
func runSlow(ctx context.Context, c *http.Client, s *spec, n int, ramp, timeout time.Duration, serverPID int) *slowResult {
	res := &slowResult{streams: n}
	var open atomic.Int64
	var mu sync.Mutex
	start := time.Now()

	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-t.C:
				o := int(open.Load())
				rss, _, err := memKB(serverPID)
				if err != nil || o == 0 {
					continue
				}
				mu.Lock()
				switch {
				case o > res.maxOpen:
					res.maxOpen, res.rssDuringKB = o, rss
				case o == res.maxOpen && rss > res.rssDuringKB:
					res.rssDuringKB = rss
				}
				mu.Unlock()
			}
		}
	}()

	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if n > 1 {
				select {
				case <-time.After(ramp * time.Duration(i) / time.Duration(n-1)):
				case <-ctx.Done():
					return
				}
			}
			w := &worker{buf: make([]byte, 4<<10), chk: newBodyCheck(s.kind, s.minEvents)}
			counted := false
			ttfb, ttlb, b, err := w.do(ctx, c, s, timeout, func() { open.Add(1); counted = true })
			if counted {
				open.Add(-1)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.addErr(err)
				return
			}
			res.requests++
			res.bytes += b
			res.ttfb = append(res.ttfb, ttfb)
			res.ttlb = append(res.ttlb, ttlb)
		}(i)
	}
	wg.Wait()
	close(stopSampling)
	<-sampled
	res.wall = time.Since(start)
	return res
}
