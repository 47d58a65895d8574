package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/usemysub/caddy-codex-proxy/apierror"
	"github.com/usemysub/caddy-codex-proxy/codex"
	"github.com/usemysub/caddy-codex-proxy/keypolicy"
	"github.com/usemysub/caddy-codex-proxy/ratelimit"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// createFrame is a response.create as the openai SDK's ResponsesWS sends it.
const createFrame = `{"type":"response.create","model":"gpt-5.5","input":"hi","stream_id":"s1"}`

// serve runs the env's handler on a real HTTP server.
func (e *env) serve(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(e.h)
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/v1/responses"
}

// dial opens a WebSocket with key as the bearer (the SDK's way).
func dial(t *testing.T, url, key string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	c, res, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + key}}})
	if c != nil {
		t.Cleanup(func() { _ = c.CloseNow() })
	}
	return c, res, err
}

func mustDial(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	c, _, err := dial(t, url, testKey)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return c
}

func send(t *testing.T, c *websocket.Conn, frame string) {
	t.Helper()
	if err := c.Write(t.Context(), websocket.MessageText, []byte(frame)); err != nil {
		t.Fatalf("send: %v", err)
	}
}

// next reads one event frame.
func next(t *testing.T, c *websocket.Conn) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	typ, data, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var ev map[string]any
	if typ != websocket.MessageText || json.Unmarshal(data, &ev) != nil || ev["type"] == nil {
		t.Fatalf("not a JSON event in a text frame: %v %q", typ, data)
	}
	return ev
}

// untilEnd reads events until a response.completed or an error event and
// returns their types and the last one.
func untilEnd(t *testing.T, c *websocket.Conn) ([]string, map[string]any) {
	t.Helper()
	var types []string
	for {
		ev := next(t, c)
		typ := ev["type"].(string)
		types = append(types, typ)
		if typ == "response.completed" || typ == "error" || typ == "response.failed" {
			return types, ev
		}
	}
}

// errorOf checks an error event's shape and returns its status and code.
func errorOf(t *testing.T, ev map[string]any) (int, string) {
	t.Helper()
	if ev["type"] != "error" {
		t.Fatalf("not an error event: %v", ev)
	}
	e, ok := ev["error"].(map[string]any)
	if !ok || e["message"] == "" || e["type"] == "" {
		t.Fatalf("error event without an OpenAI error object: %v", ev)
	}
	status, _ := ev["status"].(float64)
	code, _ := e["code"].(string)
	return int(status), code
}

// closeStatus waits for the server to close c and returns its code.
func closeStatus(t *testing.T, c *websocket.Conn) websocket.StatusCode {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	for {
		_, _, err := c.Read(ctx)
		if err != nil {
			return websocket.CloseStatus(err)
		}
	}
}

func TestSocketTwoTurnsAreTwoRecordedResponses(t *testing.T) {
	e := newEnv(t)
	// One generation at a time: the second turn, sent the moment the
	// first completed, must find the first one's slot released.
	e.keys.key.Policy.Concurrency = 1
	c := mustDial(t, e.serve(t))
	for turn := range 2 {
		send(t, c, createFrame)
		types, last := untilEnd(t, c)
		if last["type"] != "response.completed" || types[0] != "response.created" || !contains(types, "response.output_text.delta") {
			t.Fatalf("turn %d: events %v, last %v", turn, types, last)
		}
		usage := last["response"].(map[string]any)["usage"].(map[string]any)
		if usage["input_tokens"] != 12.0 {
			t.Fatalf("turn %d: usage %v", turn, usage)
		}
	}
	recs := e.rec.waitFor(2)
	if len(recs) != 2 || recs[0].RequestID == recs[1].RequestID {
		t.Fatalf("records: %+v", recs)
	}
	for _, rec := range recs {
		if rec.Route != "responses" || rec.Status != 200 || rec.InputTokens != 12 || rec.KeyID != "key1" || rec.AccountID != "acct-a" {
			t.Fatalf("record: %+v", rec)
		}
	}
	if n := e.keys.inFlight(); n != 0 {
		t.Fatalf("%d concurrency slots still held", n)
	}
	// Upstream got a Responses request: streamed, without the socket's own fields.
	var body map[string]any
	_ = json.Unmarshal(e.up.bodies[0], &body)
	if body["stream"] != true || body["type"] != nil || body["stream_id"] != nil || body["model"] != "gpt-5.5" {
		t.Fatalf("upstream body: %s", e.up.bodies[0])
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestSocketWrongKeyIsRefusedAtTheHandshake(t *testing.T) {
	table := ratelimit.New(ratelimit.Config{})
	e := newEnv(t, func(c *Config) {
		c.FailedAuth = table
		c.ClientIP = func(*http.Request) string { return "192.0.2.9" }
	})
	url := e.serve(t)
	for i := range AuthFailLimit + 1 {
		_, res, err := dial(t, url, "cpk_wrong")
		if err == nil || res == nil {
			t.Fatalf("attempt %d: a wrong key opened a socket", i)
		}
		want, code := 401, "invalid_api_key"
		if i == AuthFailLimit {
			want, code = 429, "too_many_failed_attempts"
		}
		body, _ := io.ReadAll(res.Body)
		var m map[string]any
		if res.StatusCode != want || json.Unmarshal(body, &m) != nil || errorCode(t, m) != code {
			t.Fatalf("attempt %d: %d %s", i, res.StatusCode, body)
		}
	}
	if e.up.calls() != 0 {
		t.Fatal("a refused socket reached the upstream")
	}
}

func TestSocketErrorEventsKeepTheSocketUsable(t *testing.T) {
	e := newEnv(t)
	c := mustDial(t, e.serve(t))
	for _, tc := range []struct {
		name, frame string
		binary      bool
		status      int
		code        string
	}{
		{"not JSON", `{"type":`, false, 400, "invalid_event"},
		{"binary", createFrame, true, 400, "invalid_event"},
		{"unknown event", `{"type":"response.steer"}`, false, 400, "invalid_event"},
		{"background", `{"type":"response.create","model":"gpt-5.5","input":"hi","background":true}`, false, 400, "invalid_value"},
		{"bad input", `{"type":"response.create","model":"gpt-5.5","input":42}`, false, 400, ""},
	} {
		typ := websocket.MessageText
		if tc.binary {
			typ = websocket.MessageBinary
		}
		if err := c.Write(t.Context(), typ, []byte(tc.frame)); err != nil {
			t.Fatal(err)
		}
		ev := next(t, c)
		if ev["type"] != "error" {
			t.Fatalf("%s: %v", tc.name, ev)
		}
		status, code := errorOf(t, ev)
		if status != tc.status || tc.code != "" && code != tc.code {
			t.Fatalf("%s: status %d code %q", tc.name, status, code)
		}
	}
	// The upstream refusing the turn before any output: its status and
	// error, as an error event.
	e.up.errs = map[string]error{"acct-a": &codex.UpstreamError{Err: &apierror.Error{Status: 404, Type: "invalid_request_error",
		Code: "model_not_found", Message: "The model 'gpt-0' does not exist"}}}
	send(t, c, createFrame)
	if status, code := errorOf(t, next(t, c)); status != 404 || code != "model_not_found" {
		t.Fatalf("upstream refusal: %d %q", status, code)
	}
	e.up.mu.Lock()
	e.up.errs = nil
	e.up.mu.Unlock()
	send(t, c, createFrame)
	if _, last := untilEnd(t, c); last["type"] != "response.completed" {
		t.Fatalf("after the errors: %v", last)
	}
}

func TestSocketTurnAdmissionAsOnHTTP(t *testing.T) {
	e := newEnv(t)
	c := mustDial(t, e.serve(t))
	e.keys.refuse = &keypolicy.Refusal{Reason: keypolicy.ReasonRPM, Status: 429, Type: "rate_limit_error",
		Code: "key_rate_limited", Message: "slow down", RetryAfter: 30 * time.Second}
	send(t, c, createFrame)
	ev := next(t, c)
	status, code := errorOf(t, ev)
	if status != 429 || code != "key_rate_limited" || ev["headers"].(map[string]any)["retry-after"] != "30" {
		t.Fatalf("refused turn: %v", ev)
	}
	if e.up.calls() != 0 || len(e.obs.refusals) != 1 {
		t.Fatalf("upstream calls %d, refusals %v", e.up.calls(), e.obs.refusals)
	}
	if rec := recorded(e); rec.Status != 429 || rec.ErrorCode != "key_rate_limited" {
		t.Fatalf("record: %+v", rec)
	}
	e.keys.refuse = nil
	send(t, c, createFrame)
	if _, last := untilEnd(t, c); last["type"] != "response.completed" {
		t.Fatalf("after the refusal: %v", last)
	}
}

func TestSocketFailsOverBeforeAnyOutput(t *testing.T) {
	e := newEnv(t)
	e.accounts.accounts = []string{"acct-a", "acct-b"}
	e.up.errs = map[string]error{"acct-a": usageLimit(20 * time.Minute)}
	c := mustDial(t, e.serve(t))
	send(t, c, createFrame)
	if _, last := untilEnd(t, c); last["type"] != "response.completed" {
		t.Fatalf("%v", last)
	}
	if rec := recorded(e); rec.AccountID != "acct-b" || rec.FailoverFrom != "acct-a" {
		t.Fatalf("record: %+v", rec)
	}
}

func TestSocketOneResponseAtATimeAndHangUpCancels(t *testing.T) {
	e := newEnv(t)
	e.up.sse = partialSSE
	e.up.hang = true
	c := mustDial(t, e.serve(t))
	send(t, c, createFrame)
	if ev := next(t, c); ev["type"] != "response.created" {
		t.Fatalf("first event: %v", ev)
	}
	send(t, c, createFrame)
	for {
		ev := next(t, c)
		if ev["type"] == "error" {
			if _, code := errorOf(t, ev); code != "response_in_progress" {
				t.Fatalf("second create: %v", ev)
			}
			break
		}
	}
	if e.up.calls() != 1 {
		t.Fatalf("upstream calls: %d", e.up.calls())
	}
	_ = c.CloseNow()
	deadline := time.Now().Add(5 * time.Second)
	for e.rec.last().Status == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	rec := e.rec.last()
	if rec.Status != 499 || !rec.Estimated || rec.InputTokens == 0 || rec.OutputTokens == 0 {
		t.Fatalf("hung-up turn: %+v", rec)
	}
	if n := e.keys.inFlight(); n != 0 {
		t.Fatalf("%d concurrency slots still held", n)
	}
}

func TestSocketMaxAgeClosesOnceIdle(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.SocketMaxAge = 300 * time.Millisecond })
	e.up.gate, e.up.opened = make(chan struct{}), make(chan struct{}, 1)
	url := e.serve(t)

	idle := mustDial(t, url)
	if st := closeStatus(t, idle); st != websocket.StatusGoingAway {
		t.Fatalf("idle socket closed with %v", st)
	}

	busy := mustDial(t, url)
	send(t, busy, createFrame)
	<-e.up.opened
	time.Sleep(400 * time.Millisecond) // past the age, the turn still running
	close(e.up.gate)
	if _, last := untilEnd(t, busy); last["type"] != "response.completed" {
		t.Fatalf("the running turn: %v", last)
	}
	if st := closeStatus(t, busy); st != websocket.StatusGoingAway {
		t.Fatalf("busy socket closed with %v", st)
	}
}

func TestShutdownLetsTheRunningTurnFinish(t *testing.T) {
	e := newEnv(t)
	e.up.gate, e.up.opened = make(chan struct{}), make(chan struct{}, 1)
	url := e.serve(t)
	idle := mustDial(t, url)
	busy := mustDial(t, url)
	send(t, busy, createFrame)
	<-e.up.opened

	done := make(chan error, 1)
	go func() { done <- e.h.Shutdown(context.Background()) }()
	if st := closeStatus(t, idle); st != websocket.StatusGoingAway {
		t.Fatalf("idle socket closed with %v", st)
	}
	if _, res, err := dial(t, url, testKey); err == nil || res == nil || res.StatusCode != 503 {
		t.Fatalf("a new socket while shutting down: %v %v", res, err)
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) with a turn running", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(e.up.gate)
	if _, last := untilEnd(t, busy); last["type"] != "response.completed" {
		t.Fatalf("the running turn: %v", last)
	}
	if st := closeStatus(t, busy); st != websocket.StatusGoingAway {
		t.Fatalf("busy socket closed with %v", st)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if rec := recorded(e); rec.Status != 200 {
		t.Fatalf("the finished turn's record: %+v", rec)
	}
}

func TestShutdownCutsWhatOutlivesItsContext(t *testing.T) {
	e := newEnv(t)
	e.up.gate, e.up.opened = make(chan struct{}), make(chan struct{}, 1)
	busy := mustDial(t, e.serve(t))
	send(t, busy, createFrame)
	<-e.up.opened
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if err := e.h.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v", err)
	}
	if st := closeStatus(t, busy); st == websocket.StatusNormalClosure {
		t.Fatalf("cut socket closed normally")
	}
}

func TestSocketPingsFindDeadPeers(t *testing.T) {
	// An interval a loaded -race run still answers in: the pong's wait is
	// the interval itself.
	e := newEnv(t, func(c *Config) { c.SocketPing = 250 * time.Millisecond })
	url := e.serve(t)
	// A client that reads answers pings and stays open past several.
	live := mustDial(t, url)
	ctx, cancel := context.WithTimeout(t.Context(), 1200*time.Millisecond)
	defer cancel()
	if _, _, err := live.Read(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a live client's socket: %v", err)
	}
	// One that reads nothing answers no ping: the proxy drops it.
	dead := mustDial(t, url)
	time.Sleep(800 * time.Millisecond)
	ctx, cancel = context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if _, _, err := dead.Read(ctx); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a silent client's socket is still open: %v", err)
	}
}

// recorded waits for a turn's record: the client hears the turn's last
// event before the turn is recorded.
func recorded(e *env) vault.LogRecord {
	var rec vault.LogRecord
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if rec = e.rec.last(); rec.Status != 0 {
			break
		}
	}
	return rec
}
