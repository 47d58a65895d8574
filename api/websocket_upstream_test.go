package api

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/usemysub/caddy-codex-proxy/codex"
	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
	"github.com/usemysub/caddy-codex-proxy/relay"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// Client sockets against the in-repo backend (codextest) through the real
// upstream client: the backend's WebSocket when it takes one, HTTP/SSE
// when it does not, and each fallback in between.

// tokenAccounts are fakeAccounts whose tokens the fake backend accepts.
type tokenAccounts struct {
	*fakeAccounts
	tokens map[string]string
}

func (a *tokenAccounts) AccountToken(_ context.Context, _, acct string, _ bool) (string, string, error) {
	return a.tokens[acct], acct, nil
}

// sockEnv is a handler on a real server in front of the fake backend.
type sockEnv struct {
	h     *Handler
	srv   *codextest.Server
	url   string
	rec   *fakeRecorder
	obs   *countingObserver
	accts *tokenAccounts
}

func newSockEnv(t *testing.T, accounts []string, mod ...func(*Config)) *sockEnv {
	t.Helper()
	srv := codextest.New(t)
	ta := &tokenAccounts{fakeAccounts: &fakeAccounts{accounts: accounts}, tokens: map[string]string{}}
	for _, a := range accounts {
		ta.tokens[a] = srv.AddAccount(a, a+"@example.com", "plus").AccessToken
	}
	client, err := codex.NewClient(codex.Config{Upstream: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	keys := &fakeKeys{key: vault.Key{ID: "key1", UserID: "u1"}, user: vault.User{ID: "u1", Email: "a@example.com"}}
	e := &sockEnv{srv: srv, rec: &fakeRecorder{keys: keys}, obs: &countingObserver{}, accts: ta}
	cfg := Config{Keys: keys, Accounts: ta, Upstream: client, Recorder: e.rec, Observer: e.obs, Responses: &fakeResponses{}}
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
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		e.rec.mu.Lock()
		got := len(e.rec.recs)
		e.rec.mu.Unlock()
		if got >= n {
			break
		}
	}
	e.rec.mu.Lock()
	defer e.rec.mu.Unlock()
	return append([]vault.LogRecord(nil), e.rec.recs...)
}

func inputLen(r codextest.Request) int {
	in, _ := r.JSON["input"].([]any)
	return len(in)
}

func TestUpstreamSocketSendsOnlyNewItems(t *testing.T) {
	e := newSockEnv(t, []string{"acct-a"})
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
}

func TestUpstreamSocketRefusedGoesOverHTTPAndIsRemembered(t *testing.T) {
	e := newSockEnv(t, []string{"acct-a"})
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

func TestUpstreamSocketOffGoesOverHTTP(t *testing.T) {
	off := false
	e := newSockEnv(t, []string{"acct-a"}, func(c *Config) { c.UpstreamSocket = &off })
	c := mustDial(t, e.url)
	id := completed(t, c, turnFrame("one", ""))
	completed(t, c, turnFrame("two", id))
	if e.srv.WebSocketConns() != 0 || len(e.upstreamTurns()) != 2 {
		t.Fatalf("upstream_socket off: %d upstream sockets, %d turns", e.srv.WebSocketConns(), len(e.upstreamTurns()))
	}
}

var _ = relay.ClientGone
