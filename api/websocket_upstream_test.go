package api

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/usemysub/caddy-codex-proxy/codex"
	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
	"github.com/usemysub/caddy-codex-proxy/keypolicy"
	"github.com/usemysub/caddy-codex-proxy/relay"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// Client sockets against the in-repo backend (codextest) through the real
// upstream client: the backend's WebSocket when it takes one, HTTP/SSE
// when it does not, and each fallback in between.

// tokenAccounts are fakeAccounts whose tokens the fake backend accepts; a
// forced refresh signs the account in again.
type tokenAccounts struct {
	*fakeAccounts
	srv    *codextest.Server
	mu     sync.Mutex
	tokens map[string]string
}

func (a *tokenAccounts) AccountToken(_ context.Context, _, acct string, force bool) (string, string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if force {
		a.tokens[acct] = a.srv.AddAccount(acct, acct+"@example.com", "plus").AccessToken
	}
	return a.tokens[acct], acct, nil
}

// quotaLog keeps the rate limits each answer reported, by account.
type quotaLog struct {
	mu   sync.Mutex
	seen map[string][]*codex.RateLimits
}

func (q *quotaLog) SetAccount(_, acct string, rl *codex.RateLimits) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.seen == nil {
		q.seen = map[string][]*codex.RateLimits{}
	}
	q.seen[acct] = append(q.seen[acct], rl)
}

// sockEnv is a handler on a real server in front of the fake backend.
type sockEnv struct {
	h      *Handler
	quotas *quotaLog
	srv    *codextest.Server
	url    string
	rec    *fakeRecorder
	obs    *countingObserver
	accts  *tokenAccounts
}

func newSockEnv(t *testing.T, accounts []string, srvOpts []codextest.Option, mod ...func(*Config)) *sockEnv {
	t.Helper()
	srv := codextest.New(t, srvOpts...)
	ta := &tokenAccounts{fakeAccounts: &fakeAccounts{accounts: accounts}, srv: srv, tokens: map[string]string{}}
	for _, a := range accounts {
		ta.tokens[a] = srv.AddAccount(a, a+"@example.com", "plus").AccessToken
	}
	client, err := codex.NewClient(codex.Config{Upstream: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	keys := &fakeKeys{key: vault.Key{ID: "key1", UserID: "u1"}, user: vault.User{ID: "u1", Email: "a@example.com"}}
	e := &sockEnv{srv: srv, rec: &fakeRecorder{keys: keys}, obs: &countingObserver{}, accts: ta, quotas: &quotaLog{}}
	cfg := Config{Keys: keys, Accounts: ta, Upstream: client, Recorder: e.rec, Observer: e.obs, Responses: &fakeResponses{},
		Quotas: e.quotas}
	for _, m := range mod {
		m(&cfg)
	}
	e.h = New(cfg)
	hs := httptest.NewServer(e.h)
	t.Cleanup(hs.Close)
	e.url = "ws" + strings.TrimPrefix(hs.URL, "http") + "/v1/responses"
	return e
}

// turnFrame is a response.create with one user message, continuing prev
// when it is not "".
func turnFrame(text, prev string) string {
	f := map[string]any{"type": "response.create", "model": "gpt-5.5", "input": text}
	if prev != "" {
		f["previous_response_id"] = prev
	}
	b, _ := json.Marshal(f)
	return string(b)
}

// completed runs one turn and returns the completed response's id.
func completed(t *testing.T, c *websocket.Conn, frame string) string {
	t.Helper()
	send(t, c, frame)
	types, last := untilEnd(t, c)
	if last["type"] != "response.completed" {
		t.Fatalf("turn ended with %v (events %v)", last, types)
	}
	return last["response"].(map[string]any)["id"].(string)
}

// upstreamTurns are the generations the fake served, in order.
func (e *sockEnv) upstreamTurns() []codextest.Request {
	var out []codextest.Request
	for _, r := range e.srv.RequestsTo("/responses") {
		if r.Method == "POST" {
			out = append(out, r)
		}
	}
	return out
}

func (e *sockEnv) records(t *testing.T, n int) []vault.LogRecord {
	t.Helper()
	return e.rec.waitFor(n)
}

func inputLen(r codextest.Request) int {
	in, _ := r.JSON["input"].([]any)
	return len(in)
}

func TestUpstreamSocketSendsOnlyNewItems(t *testing.T) {
	e := newSockEnv(t, []string{"acct-a"}, nil)
	c := mustDial(t, e.url)
	id1 := completed(t, c, turnFrame("one", ""))
	id2 := completed(t, c, turnFrame("two", id1))
	completed(t, c, turnFrame("three", id2))

	turns := e.upstreamTurns()
	if len(turns) != 3 || e.srv.WebSocketConns() != 1 {
		t.Fatalf("%d upstream turns on %d sockets, want 3 on 1", len(turns), e.srv.WebSocketConns())
	}
	for i, r := range turns {
		if r.Header.Get(codextest.TransportHeader) != "websocket" {
			t.Fatalf("turn %d went over HTTP", i)
		}
	}
	// Turn 1 sends its one message; turns 2 and 3 only theirs, chained to
	// the socket's last response, which the backend extends.
	for i, want := range []string{"1", "1", "1"} {
		if got := turns[i].Header.Get(codextest.FrameInputHeader); got != want {
			t.Errorf("turn %d's frame carried %s input items, want %s", i+1, got, want)
		}
	}
	if turns[0].Header.Get(codextest.PreviousResponseHeader) != "" || turns[1].Header.Get(codextest.PreviousResponseHeader) == "" {
		t.Errorf("previous_response_id: turn 1 %q, turn 2 %q", turns[0].Header.Get(codextest.PreviousResponseHeader),
			turns[1].Header.Get(codextest.PreviousResponseHeader))
	}
	// Each answer is a reasoning item and a message: one, rs, msg, two,
	// rs, msg, three.
	if n := inputLen(turns[2]); n != 7 {
		t.Errorf("turn 3's whole input as the backend rebuilt it: %d items, want 7", n)
	}
	recs := e.records(t, 3)
	if len(recs) != 3 || recs[2].Status != 200 || recs[2].InputTokens == 0 || recs[2].AccountID != "acct-a" {
		t.Fatalf("records %+v", recs)
	}
	// The socket's codex.rate_limits event stands for the HTTP headers.
	e.quotas.mu.Lock()
	defer e.quotas.mu.Unlock()
	if got := e.quotas.seen["acct-a"]; len(got) != 3 || got[2] == nil || got[2].Primary == nil || got[2].PlanType != "plus" {
		t.Errorf("rate limits reported for acct-a: %d answers, last %+v", len(got), got[len(got)-1])
	}
}

func TestUpstreamSocketRefusedGoesOverHTTPAndIsRemembered(t *testing.T) {
	e := newSockEnv(t, []string{"acct-a"}, nil)
	e.srv.SetRefuseWebSocket(true)
	for range 2 { // two client sockets, two turns each
		c := mustDial(t, e.url)
		id := completed(t, c, turnFrame("one", ""))
		completed(t, c, turnFrame("two", id))
		c.Close(websocket.StatusNormalClosure, "")
	}
	turns := e.upstreamTurns()
	if len(turns) != 4 {
		t.Fatalf("%d upstream turns, want 4", len(turns))
	}
	for i, r := range turns {
		if r.Header.Get(codextest.TransportHeader) != "" {
			t.Fatalf("turn %d went over a socket the backend refused", i)
		}
	}
	if n := inputLen(turns[3]); n != 4 { // the whole rebuilt input: one, rs, msg, two
		t.Errorf("HTTP turn's input: %d items, want 4", n)
	}
	var upgrades int
	for _, r := range e.srv.RequestsTo("/responses") {
		if r.Method == "GET" {
			upgrades++
		}
	}
	if upgrades != 1 {
		t.Errorf("%d upgrades asked of a refusing backend, want 1 (the refusal is remembered)", upgrades)
	}
}

func TestUpstreamSocketRefusedTokenIsNotRemembered(t *testing.T) {
	e := newSockEnv(t, []string{"acct-a"}, nil)
	e.srv.ExpireAccess("acct-a")
	c := mustDial(t, e.url)
	// The upgrade is refused with 401; the turn goes over HTTP, where the
	// upstream client refreshes the token. The next turn dials again.
	id := completed(t, c, turnFrame("one", ""))
	completed(t, c, turnFrame("two", id))
	// Upstream: the first turn over HTTP (refused 401, then sent again
	// with the refreshed token), the second on the socket.
	turns := e.upstreamTurns()
	if len(turns) != 3 || turns[0].Header.Get(codextest.TransportHeader) != "" || turns[1].Header.Get(codextest.TransportHeader) != "" ||
		turns[2].Header.Get(codextest.TransportHeader) != "websocket" {
		t.Fatalf("%d upstream turns: want the first over HTTP, the second on a socket dialed with the refreshed token", len(turns))
	}
}

func TestUpstreamSocketOffGoesOverHTTP(t *testing.T) {
	off := false
	e := newSockEnv(t, []string{"acct-a"}, nil, func(c *Config) { c.UpstreamSocket = &off })
	c := mustDial(t, e.url)
	id := completed(t, c, turnFrame("one", ""))
	completed(t, c, turnFrame("two", id))
	if e.srv.WebSocketConns() != 0 || len(e.upstreamTurns()) != 2 {
		t.Fatalf("upstream_socket off: %d upstream sockets, %d turns", e.srv.WebSocketConns(), len(e.upstreamTurns()))
	}
}

// eventually waits for cond, up to two seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestUpstreamSocketDroppedBetweenTurns(t *testing.T) {
	e := newSockEnv(t, []string{"acct-a"}, nil)
	c := mustDial(t, e.url)
	id1 := completed(t, c, turnFrame("one", ""))
	e.srv.DropWebSockets()
	eventually(t, "the backend's socket to close", func() bool { return e.srv.OpenWebSockets() == 0 })
	time.Sleep(20 * time.Millisecond) // the proxy's reader sees the close
	id2 := completed(t, c, turnFrame("two", id1))
	completed(t, c, turnFrame("three", id2))

	turns := e.upstreamTurns()
	if len(turns) != 3 {
		t.Fatalf("%d upstream turns, want 3", len(turns))
	}
	// The turn after the drop goes over HTTP with its whole input; the
	// next one opens a new socket, on which the chain starts over.
	if turns[1].Header.Get(codextest.TransportHeader) != "" || inputLen(turns[1]) != 4 {
		t.Errorf("turn 2: transport %q, %d input items; want HTTP with 4", turns[1].Header.Get(codextest.TransportHeader), inputLen(turns[1]))
	}
	if turns[2].Header.Get(codextest.TransportHeader) != "websocket" || turns[2].Header.Get(codextest.FrameInputHeader) != "7" ||
		turns[2].Header.Get(codextest.PreviousResponseHeader) != "" {
		t.Errorf("turn 3: %v, want the whole input (7 items) on a new socket", turns[2].Header)
	}
	if e.srv.WebSocketConns() != 2 {
		t.Errorf("%d upstream sockets, want 2", e.srv.WebSocketConns())
	}
}

func TestUpstreamSocketChainUnknownUpstreamRetriesOverHTTP(t *testing.T) {
	e := newSockEnv(t, []string{"acct-a"}, nil)
	c := mustDial(t, e.url)
	id1 := completed(t, c, turnFrame("one", ""))
	e.srv.SetForgetChains(true)
	id2 := completed(t, c, turnFrame("two", id1)) // previous_response_not_found upstream, then HTTP
	e.srv.SetForgetChains(false)
	id3 := completed(t, c, turnFrame("three", id2))
	completed(t, c, turnFrame("four", id3))
	completed(t, c, turnFrame("a new conversation", ""))

	turns := e.upstreamTurns()
	if len(turns) != 5 {
		t.Fatalf("%d upstream turns, want 5", len(turns))
	}
	type want struct {
		transport, frameInput string
		chained               bool
		input                 int
	}
	for i, w := range []want{
		{"websocket", "1", false, 1},
		{"", "", false, 4},           // retried over HTTP with the whole input
		{"websocket", "7", false, 7}, // no chain upstream: the whole input again
		{"websocket", "1", true, 10},
		{"websocket", "1", false, 1}, // not a continuation: sent whole, unchained
	} {
		h := turns[i].Header
		if h.Get(codextest.TransportHeader) != w.transport || h.Get(codextest.FrameInputHeader) != w.frameInput ||
			(h.Get(codextest.PreviousResponseHeader) != "") != w.chained || inputLen(turns[i]) != w.input {
			t.Errorf("turn %d: transport %q, frame input %q, previous %q, input %d; want %+v", i+1,
				h.Get(codextest.TransportHeader), h.Get(codextest.FrameInputHeader), h.Get(codextest.PreviousResponseHeader),
				inputLen(turns[i]), w)
		}
	}
	recs := e.records(t, 5)
	for i, r := range recs {
		if r.Status != 200 || r.InputTokens == 0 {
			t.Errorf("record %d: %+v", i, r)
		}
	}
}

func TestUpstreamSocketFailsOverBeforeOutput(t *testing.T) {
	e := newSockEnv(t, []string{"acct-a", "acct-b"}, nil)
	e.srv.SetUsageBudget("acct-a", 0, time.Hour)
	c := mustDial(t, e.url)
	id := completed(t, c, turnFrame("one", ""))
	id = completed(t, c, turnFrame("two", id))
	completed(t, c, turnFrame("three", id))

	if total, limited := e.srv.AccountRequests("acct-a"); total != 1 || limited != 1 {
		t.Errorf("acct-a: %d generations, %d refused; want the first turn's one refusal", total, limited)
	}
	// The refusal came on acct-a's socket; the first turn was then served
	// on acct-b over HTTP (the socket is acct-a's, and its chain with it),
	// the next on a socket dialed on acct-b, the last continuing it.
	turns := e.upstreamTurns()
	over := func(i int) string { return turns[i].Header.Get(codextest.TransportHeader) }
	if len(turns) != 4 || over(0) != "websocket" || over(1) != "" || over(2) != "websocket" || over(3) != "websocket" ||
		turns[2].Header.Get(codextest.PreviousResponseHeader) != "" || turns[3].Header.Get(codextest.PreviousResponseHeader) == "" {
		t.Fatalf("%d upstream turns: want acct-a's refused one on its socket, one over HTTP, then two on acct-b's socket, chained", len(turns))
	}
	if total, _ := e.srv.AccountRequests("acct-b"); total != 3 || e.srv.WebSocketConns() != 2 {
		t.Errorf("acct-b served %d turns, on %d upstream sockets in all; want 3 and 2", total, e.srv.WebSocketConns())
	}
	recs := e.records(t, 3)
	if recs[0].AccountID != "acct-b" || recs[0].FailoverFrom != "acct-a" || recs[0].Status != 200 || recs[2].AccountID != "acct-b" {
		t.Errorf("records: %+v", recs)
	}
	e.obs.mu.Lock()
	defer e.obs.mu.Unlock()
	if e.obs.failovers != 1 {
		t.Errorf("%d failovers counted, want 1", e.obs.failovers)
	}
	if n := e.srv.OpenWebSockets(); n != 1 {
		t.Errorf("%d upstream sockets open, want acct-b's alone", n)
	}
}

func TestUpstreamSocketHangUpMidTurnIsCountedAndCancelled(t *testing.T) {
	run := func(refuse bool) vault.LogRecord {
		e := newSockEnv(t, []string{"acct-a"}, []codextest.Option{codextest.WithSlowDelay(200 * time.Millisecond)})
		e.srv.SetRefuseWebSocket(refuse)
		c := mustDial(t, e.url)
		send(t, c, turnFrame(strings.Repeat("a long question ", 200)+codextest.Marker(codextest.ScenarioSlow), ""))
		for {
			if ev := next(t, c); ev["type"] == "response.output_text.delta" || ev["type"] == "response.reasoning_summary_text.delta" {
				break
			}
		}
		if want := map[bool]int64{false: 1, true: 0}[refuse]; e.srv.OpenWebSockets() != want {
			t.Fatalf("%d upstream sockets open mid-turn, want %d", e.srv.OpenWebSockets(), want)
		}
		_ = c.CloseNow()
		// The generation is cancelled upstream: its socket closes.
		eventually(t, "the upstream socket to close", func() bool { return e.srv.OpenWebSockets() == 0 })
		recs := e.records(t, 1)
		if len(recs) != 1 {
			t.Fatalf("%d records", len(recs))
		}
		return recs[0]
	}
	overSocket, overHTTP := run(false), run(true)
	if overSocket.Status != relay.ClientGone || !overSocket.Estimated || overSocket.InputTokens < 500 {
		t.Fatalf("record %+v, want client gone with the prompt estimated", overSocket)
	}
	if overSocket.Status != overHTTP.Status || overSocket.Estimated != overHTTP.Estimated || overSocket.InputTokens != overHTTP.InputTokens {
		t.Errorf("a hang-up mid-turn: recorded over the socket %+v, over HTTP %+v", overSocket, overHTTP)
	}
}

func TestUpstreamSocketClosesWithTheClientSocket(t *testing.T) {
	e := newSockEnv(t, []string{"acct-a"}, nil)
	c := mustDial(t, e.url)
	completed(t, c, turnFrame("one", ""))
	if e.srv.OpenWebSockets() != 1 {
		t.Fatalf("%d upstream sockets after a turn, want 1", e.srv.OpenWebSockets())
	}
	c2 := mustDial(t, e.url)
	completed(t, c2, turnFrame("one", ""))
	c.Close(websocket.StatusNormalClosure, "")
	eventually(t, "the closed client's upstream socket to close", func() bool { return e.srv.OpenWebSockets() == 1 })
	go closeStatus(t, c2) // answers the close
	// Stop closes the idle client sockets, and with them their upstream ones.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := e.h.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "every upstream socket to close", func() bool { return e.srv.OpenWebSockets() == 0 })
}

// TestIdleSocketPairMemory reports what an idle client socket costs with
// its upstream socket, after one turn (heap and goroutine stacks, per
// socket, everything in this process: the test's client end, the proxy's
// two ends and the fake backend's end), and with upstream_socket off for
// comparison. It reports; it does not assert a timing or a size.
func TestIdleSocketPairMemory(t *testing.T) {
	const n = 40
	// A bare pair of the same library, a client that does not read and a
	// server that does: about what the test's client end and the fake's
	// end cost, so the total less this bounds the proxy's two ends.
	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		for {
			if _, _, err := c.Read(context.Background()); err != nil {
				return
			}
		}
	}))
	t.Cleanup(bare.Close)
	before := inUse()
	var raw []*websocket.Conn
	for range n {
		c, _, err := websocket.Dial(t.Context(), "ws"+strings.TrimPrefix(bare.URL, "http"), nil)
		if err != nil {
			t.Fatal(err)
		}
		raw = append(raw, c)
	}
	time.Sleep(50 * time.Millisecond)
	pair := (inUse() - before) / n
	t.Logf("a bare idle WebSocket pair costs %d bytes (%.1f KiB)", pair, float64(pair)/1024)
	for _, c := range raw {
		_ = c.CloseNow()
	}
	for _, on := range []bool{false, true} {
		// Nothing kept per turn but the sockets: no store, no request log.
		e := newSockEnv(t, []string{"acct-a"}, nil, func(c *Config) {
			c.UpstreamSocket, c.Responses, c.Recorder = &on, nil, discardRecorder{}
		})
		completed(t, mustDial(t, e.url), turnFrame("warm up", "")) // first-use allocations out of the way
		before, g0, s0 := inUse(), runtime.NumGoroutine(), stacks()
		var conns []*websocket.Conn
		for range n {
			c := mustDial(t, e.url)
			completed(t, c, turnFrame("hello", ""))
			conns = append(conns, c)
		}
		time.Sleep(100 * time.Millisecond) // the turns' ends
		per, goroutines, stack := (inUse()-before)/n, float64(runtime.NumGoroutine()-g0)/n, (stacks()-s0)/n
		want := int64(0)
		if on {
			want = n + 1
		}
		if got := e.srv.OpenWebSockets(); got != want {
			t.Fatalf("upstream_socket %v: %d upstream sockets open, want %d", on, got, want)
		}
		t.Logf("upstream_socket %v: an idle client socket costs %d bytes (%.1f KiB, %.1f KiB of it stacks) of heap and stacks and %.1f goroutines, "+
			"all ends in this process; less a bare pair: %.1f KiB", on, per, float64(per)/1024, float64(stack)/1024, goroutines, float64(per-pair)/1024)
		for _, c := range conns {
			_ = c.CloseNow()
		}
	}
}

// discardRecorder settles each record's hold and keeps nothing.
type discardRecorder struct{}

func (discardRecorder) LogRequestSettling(rec vault.LogRecord, hold *keypolicy.Hold) {
	if hold != nil {
		hold.Settle(rec.Time, rec.InputTokens+rec.OutputTokens, rec.Estimated)
	}
}

func (discardRecorder) CacheUsage(string, string, time.Time) (vault.CacheUsage, error) {
	return vault.CacheUsage{}, nil
}

// stacks is the goroutine stacks in use.
func stacks() int64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.StackInuse)
}

// inUse is the heap and goroutine stacks in use after a collection.
func inUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse + m.StackInuse)
}

func TestUpstreamSocketCutMidTurnEndsAsOverHTTP(t *testing.T) {
	type result struct {
		last             string
		status           int
		code             string
		estimated, tokes bool
	}
	run := func(refuse bool) result {
		e := newSockEnv(t, []string{"acct-a"}, nil)
		e.srv.SetRefuseWebSocket(refuse)
		c := mustDial(t, e.url)
		send(t, c, turnFrame("cut me "+codextest.Marker(codextest.ScenarioCut), ""))
		_, last := untilEnd(t, c)
		// The socket carries on: the next turn is served (on a new
		// upstream socket: the cut one is gone).
		completed(t, c, turnFrame("and then", ""))
		if !refuse && e.srv.WebSocketConns() != 2 {
			t.Errorf("%d upstream sockets, want 2", e.srv.WebSocketConns())
		}
		r := e.records(t, 2)[0]
		return result{last["type"].(string), r.Status, r.ErrorCode, r.Estimated, r.InputTokens > 0}
	}
	overSocket, overHTTP := run(false), run(true)
	if overSocket != overHTTP {
		t.Errorf("a cut stream: over the socket %+v, over HTTP %+v", overSocket, overHTTP)
	}
	t.Logf("a cut stream ends with %+v", overSocket)
}

func TestUpstreamSocketSilentUpstreamTimesOut(t *testing.T) {
	e := newSockEnv(t, []string{"acct-a"}, nil)
	e.h.socketIdle = 300 * time.Millisecond
	c := mustDial(t, e.url)
	send(t, c, turnFrame("say nothing "+codextest.Marker(codextest.ScenarioHangHeaders), ""))
	_, last := untilEnd(t, c)
	if status, code := errorOf(t, last); status != 504 || code != codex.CodeUpstreamTimeout {
		t.Fatalf("a silent upstream: %d %s, want 504 %s", status, code, codex.CodeUpstreamTimeout)
	}
	// The turn is cancelled upstream, and charged as a header timeout on
	// HTTP is: it may have run.
	eventually(t, "the upstream socket to close", func() bool { return e.srv.OpenWebSockets() == 0 })
	if r := e.records(t, 1)[0]; r.Status != 504 || !r.Estimated || r.InputTokens == 0 {
		t.Fatalf("record %+v", r)
	}
	completed(t, c, turnFrame("and now?", "")) // on a new upstream socket
	if e.srv.WebSocketConns() != 2 {
		t.Errorf("%d upstream sockets, want 2", e.srv.WebSocketConns())
	}
}

// blackhole is a TCP forwarder in front of the fake backend that can stop
// carrying the connections it has, without closing them, as a NAT that
// forgot them does; new connections pass.
type blackhole struct {
	ln     net.Listener
	mu     sync.Mutex
	before []chan struct{} // closed by swallow: the connections made so far
}

func newBlackhole(t *testing.T, target string) *blackhole {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &blackhole{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			stop := make(chan struct{})
			b.mu.Lock()
			b.before = append(b.before, stop)
			b.mu.Unlock()
			for _, p := range [][2]net.Conn{{in, out}, {out, in}} {
				go func(src, dst net.Conn) {
					buf := make([]byte, 32<<10)
					for {
						n, err := src.Read(buf)
						if err != nil {
							dst.Close()
							return
						}
						select {
						case <-stop: // swallowed: nothing reaches the other side
						default:
							if _, err := dst.Write(buf[:n]); err != nil {
								return
							}
						}
					}
				}(p[0], p[1])
			}
		}
	}()
	return b
}

// swallow stops carrying every connection made so far.
func (b *blackhole) swallow() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.before {
		close(c)
	}
	b.before = nil
}

func TestUpstreamSocketDeadPeerIsFoundBetweenTurns(t *testing.T) {
	srv := codextest.New(t)
	bh := newBlackhole(t, strings.TrimPrefix(strings.TrimSuffix(srv.URL, codextest.BackendPath), "http://"))
	client, err := codex.NewClient(codex.Config{Upstream: "http://" + bh.ln.Addr().String() + codextest.BackendPath})
	if err != nil {
		t.Fatal(err)
	}
	e := newSockEnv(t, []string{"acct-a"}, nil, func(c *Config) {
		c.Upstream = client
	})
	e.h.socketKeepalive = 100 * time.Millisecond
	// newSockEnv's accounts are the fake's own: sign acct-a in on srv.
	e.accts.mu.Lock()
	e.accts.srv, e.accts.tokens["acct-a"] = srv, srv.AddAccount("acct-a", "a@example.com", "plus").AccessToken
	e.accts.mu.Unlock()
	e.srv = srv
	c := mustDial(t, e.url)
	id := completed(t, c, turnFrame("one", ""))
	bh.swallow() // the upstream socket's connection is gone, silently
	time.Sleep(400 * time.Millisecond)
	// The keepalive found it: this turn goes over HTTP (a new connection)
	// instead of into the dead one, where it would wait for the idle
	// timeout.
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	send(t, c, turnFrame("two", id))
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("the turn after the connection died: %v", err)
		}
		var ev struct{ Type string }
		_ = json.Unmarshal(data, &ev)
		if ev.Type == "response.completed" {
			break
		}
		if ev.Type == "error" {
			t.Fatalf("the turn after the connection died: %s", data)
		}
	}
	turns := e.upstreamTurns()
	if len(turns) != 2 || turns[1].Header.Get(codextest.TransportHeader) != "" {
		t.Fatalf("%d upstream turns; the second must go over HTTP", len(turns))
	}
}
