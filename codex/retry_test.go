package codex

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
)

// upstreamUnderTest is what one retry case talks to.
type upstreamUnderTest struct {
	url string
	ts  TokenSource
	// requests counts the requests the upstream received (generations for
	// the fake, any request for a raw server).
	requests func() int
}

func fakeUpstream(sc codextest.Scenario, opts ...codextest.Option) func(t *testing.T) upstreamUnderTest {
	return func(t *testing.T) upstreamUnderTest {
		srv := codextest.New(t, append([]codextest.Option{codextest.WithScenario(sc)}, opts...)...)
		tok := srv.AddAccount("acc-1", "a@example.com", "plus")
		return upstreamUnderTest{url: srv.URL, ts: newTestTS(srv, tok, "acc-1"), requests: srv.GenerationCount}
	}
}

// rawUpstream serves first(w, r) for the first request and a tiny model
// catalog after that.
func rawUpstream(first http.HandlerFunc) func(t *testing.T) upstreamUnderTest {
	return func(t *testing.T) upstreamUnderTest {
		var n atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if n.Add(1) == 1 {
				first(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"models":[{"slug":"gpt-5.5","supported_reasoning_levels":[{"effort":"low"}]}]}`)
		}))
		t.Cleanup(srv.Close)
		return upstreamUnderTest{url: srv.URL + "/backend-api/codex", ts: staticTS, requests: func() int { return int(n.Load()) }}
	}
}

var staticTS = TokenSourceFunc(func(context.Context, bool) (string, string, error) { return "tok", "acc", nil })

// hang sends nothing until the client goes away.
func hang(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }

// reset reads the request and resets the connection.
func reset(w http.ResponseWriter, r *http.Request) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = conn.(*net.TCPConn).SetLinger(0)
	_ = conn.Close()
}

// TestRetryRules pins when a request is sent again: a generation only when
// it never left the machine or the upstream answered 5xx; a GET after any
// transport failure; nothing after a 429.
func TestRetryRules(t *testing.T) {
	const headerTimeout = 300 * time.Millisecond
	tests := []struct {
		name     string
		models   bool // GET /models instead of POST /responses
		upstream func(t *testing.T) upstreamUnderTest
		sentinel error // nil: success
		status   int
		code     string
		requests int // received by the upstream (connections for the TLS case)
		sleeps   int
	}{
		{name: "hung headers are final", upstream: fakeUpstream(codextest.ScenarioHangHeaders),
			sentinel: ErrHeaderTimeout, status: 504, code: CodeUpstreamTimeout, requests: 1},
		{name: "reset after the request was written is final", upstream: fakeUpstream(codextest.ScenarioResetAfterRead),
			sentinel: ErrConnectionLost, status: 502, code: CodeUpstreamError, requests: 1},
		{name: "dial refused is retried", upstream: refusedUpstream,
			sentinel: ErrUnreachable, status: 502, code: CodeUpstreamUnreachable, requests: 0, sleeps: DefaultMaxRetries},
		{name: "TLS handshake failure is retried", upstream: untrustedTLSUpstream,
			sentinel: ErrUnreachable, status: 502, code: CodeUpstreamUnreachable, requests: 1 + DefaultMaxRetries, sleeps: DefaultMaxRetries},
		{name: "5xx before any event is retried", upstream: fakeUpstream(codextest.ScenarioServerError),
			status: 502, code: CodeUpstreamError, requests: 1 + DefaultMaxRetries, sleeps: DefaultMaxRetries},
		{name: "503 is retried", upstream: fakeUpstream(codextest.ScenarioServerError, func(o *codextest.Options) { o.ServerErrorStatus = 503 }),
			status: 502, code: CodeUpstreamError, requests: 1 + DefaultMaxRetries, sleeps: DefaultMaxRetries},
		{name: "429 is not retried", upstream: fakeUpstream(codextest.ScenarioRateLimited),
			status: 429, code: "rate_limit_exceeded", requests: 1},
		{name: "403 is not retried", upstream: fakeUpstream(codextest.ScenarioCloudflare),
			status: 502, code: CodeCloudflareChallenge, requests: 1},
		{name: "models: hung headers are retried", models: true, upstream: rawUpstream(hang), requests: 2, sleeps: 1},
		{name: "models: reset is retried", models: true, upstream: rawUpstream(reset), requests: 2, sleeps: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := tc.upstream(t)
			c, rec := newTestClient(t, Config{Upstream: up.url, ResponseHeaderTimeout: headerTimeout})
			start := time.Now()
			var err error
			if tc.models {
				_, err = c.Models(t.Context(), up.ts)
			} else {
				var st *Stream
				st, err = c.Responses(t.Context(), up.ts, requestBody("x"), RequestHeaders{})
				if err == nil {
					st.Close()
				}
			}
			elapsed := time.Since(start)
			if got := up.requests(); got != tc.requests {
				t.Errorf("upstream received %d requests, want %d", got, tc.requests)
			}
			if len(rec.delays) != tc.sleeps {
				t.Errorf("%d retries (%v), want %d", len(rec.delays), rec.delays, tc.sleeps)
			}
			for i, d := range rec.delays {
				if want := DefaultRetryBase << i; d < want*9/10 || d > want*11/10 {
					t.Errorf("back-off %d = %v, want %v ±10%%", i, d, want)
				}
			}
			if tc.status == 0 {
				if err != nil {
					t.Fatalf("want success, got %v", err)
				}
				return
			}
			ue := asUpstream(t, err)
			if ue.Err.Status != tc.status || ue.Err.Code != tc.code {
				t.Fatalf("error %d %q %q, want %d %q", ue.Err.Status, ue.Err.Code, ue.Err.Message, tc.status, tc.code)
			}
			for _, s := range []error{ErrHeaderTimeout, ErrConnectionLost, ErrUnreachable} {
				if got := errors.Is(err, s); got != (s == tc.sentinel) {
					t.Errorf("errors.Is(err, %v) = %v", s, got)
				}
			}
			if tc.sentinel == ErrHeaderTimeout && elapsed > headerTimeout+time.Second {
				t.Errorf("the timeout took %v with a %v header timeout", elapsed, headerTimeout)
			}
		})
	}
}

// refusedUpstream is a loopback port nothing listens on.
func refusedUpstream(t *testing.T) upstreamUnderTest {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return upstreamUnderTest{url: "http://" + addr + "/backend-api/codex", ts: staticTS, requests: func() int { return 0 }}
}

// untrustedTLSUpstream is an HTTPS server whose certificate the client
// does not trust; it counts connections, since no request ever arrives.
func untrustedTLSUpstream(t *testing.T) upstreamUnderTest {
	var conns, reqs atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reqs.Add(1) }))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Config.ErrorLog = discardLogger()
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return upstreamUnderTest{url: srv.URL + "/backend-api/codex", ts: staticTS, requests: func() int {
		if reqs.Load() != 0 {
			return -100 // a request got through: fail loudly
		}
		return int(conns.Load())
	}}
}

func discardLogger() *log.Logger { return log.New(io.Discard, "", 0) }
