package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
)

// unstoredFrame is a store:false response.create, as the Codex CLI sends
// every one, continuing prev when it is not "".
func unstoredFrame(text, prev string, generate bool) string {
	f := map[string]any{"type": "response.create", "model": "gpt-5.5", "input": text, "store": false}
	if prev != "" {
		f["previous_response_id"] = prev
	}
	if !generate {
		f["generate"] = false
	}
	b, _ := json.Marshal(f)
	return string(b)
}

// newChainEnv is a sockEnv whose response store the test can read.
func newChainEnv(t *testing.T, upstreamSocket bool) (*sockEnv, *fakeResponses) {
	t.Helper()
	var store *fakeResponses
	e := newSockEnv(t, []string{"acct-a"}, nil, func(c *Config) {
		store = c.Responses.(*fakeResponses)
		c.UpstreamSocket = &upstreamSocket
	})
	return e, store
}

// getStatus is the status of GET /v1/responses/{id} over HTTP.
func (e *sockEnv) getStatus(t *testing.T, id string) int {
	t.Helper()
	r, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http"+strings.TrimPrefix(e.url, "ws")+"/"+id, nil)
	r.Header.Set("Authorization", "Bearer "+testKey)
	res, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// turnError runs a turn that must fail and returns its status and code.
func turnError(t *testing.T, c *websocket.Conn, frame string) (int, string) {
	t.Helper()
	send(t, c, frame)
	_, last := untilEnd(t, c)
	return errorOf(t, last)
}

// The Codex CLI's session on a socket: a generate:false prewarm, a first
// turn chained to it, later turns each chained to the one before, all
// with store:false. The backend honours such a chain on its connection;
// so does the proxy, over either upstream transport, rebuilding the
// whole input for HTTP and sending only the new items on a chained
// upstream socket. Nothing of it is stored for good, and nothing is left
// once the socket closes.
func TestSocketChainsUnstoredResponses(t *testing.T) {
	for _, upSocket := range []bool{true, false} {
		t.Run(map[bool]string{true: "upstream socket", false: "upstream HTTP"}[upSocket], func(t *testing.T) {
			e, store := newChainEnv(t, upSocket)
			c := mustDial(t, e.url)
			warm := completed(t, c, unstoredFrame("warm", "", false))
			id1 := completed(t, c, unstoredFrame("one", warm, true))
			id2 := completed(t, c, unstoredFrame("two", id1, true))
			completed(t, c, unstoredFrame("three", id2, true))

			turns := e.upstreamTurns()
			if len(turns) != 3 {
				t.Fatalf("%d upstream turns, want 3 (the prewarm is answered by the proxy)", len(turns))
			}
			// The whole conversation reached the backend: warm, one, rs,
			// msg, two, rs, msg, three.
			if n := inputLen(turns[2]); n != 8 {
				t.Errorf("turn 3's whole input: %d items, want 8", n)
			}
			for i, r := range turns {
				ws := r.Header.Get(codextest.TransportHeader) == "websocket"
				if ws != upSocket {
					t.Fatalf("turn %d went over the socket: %v, want %v", i+1, ws, upSocket)
				}
				if _, ok := r.JSON["previous_response_id"]; ok && !ws {
					t.Errorf("turn %d over HTTP carried previous_response_id", i+1)
				}
			}
			if upSocket {
				// The upstream never saw the prewarm: turn 1 goes whole
				// (warm and one); turns 2 and 3 only their own item.
				for i, want := range []string{"2", "1", "1"} {
					if got := turns[i].Header.Get(codextest.FrameInputHeader); got != want {
						t.Errorf("turn %d's frame carried %s input items, want %s", i+1, got, want)
					}
				}
				if turns[2].Header.Get(codextest.PreviousResponseHeader) == "" || e.srv.WebSocketConns() != 1 {
					t.Errorf("turn 3 not chained upstream (previous %q, %d sockets)",
						turns[2].Header.Get(codextest.PreviousResponseHeader), e.srv.WebSocketConns())
				}
			}
			recs := e.records(t, 4)
			for i, r := range recs[1:] {
				if r.Status != 200 || r.InputTokens == 0 {
					t.Errorf("turn %d recorded %+v", i+1, r)
				}
			}
			// Kept for the socket only: one entry at a time, never under
			// an id a client holds.
			if n := store.wait(t, 1); n != 1 {
				t.Errorf("%d entries kept for the socket, want 1", n)
			}
			for _, id := range []string{warm, id1, id2} {
				if st := e.getStatus(t, id); st != http.StatusNotFound {
					t.Errorf("GET of the store:false response %s: %d, want 404", id, st)
				}
			}
			_ = c.Close(websocket.StatusNormalClosure, "")
			eventually(t, "the socket's entry is deleted once it closed", func() bool { return store.count() == 0 })
		})
	}
}

// Only the socket's own last response is honoured, as on the backend's
// connection: an older one, another socket's, one over HTTP, or the
// socket's own store key named as an id are not found.
func TestSocketChainIsTheSocketsOwn(t *testing.T) {
	e, store := newChainEnv(t, true)
	a := mustDial(t, e.url)
	a1 := completed(t, a, unstoredFrame("one", "", true))
	a2 := completed(t, a, unstoredFrame("two", a1, true))
	if st, code := turnError(t, a, unstoredFrame("older", a1, true)); st != 404 || code != "previous_response_not_found" {
		t.Errorf("an older response of the same socket: %d %s, want 404 previous_response_not_found", st, code)
	}
	b := mustDial(t, e.url)
	if st, code := turnError(t, b, unstoredFrame("elsewhere", a2, true)); st != 404 || code != "previous_response_not_found" {
		t.Errorf("another socket's response: %d %s, want 404 previous_response_not_found", st, code)
	}
	store.wait(t, 1)
	var key string
	store.mu.Lock()
	for k := range store.resps["u1"] {
		key = k
	}
	store.mu.Unlock()
	if !strings.Contains(key, a2) {
		t.Fatalf("kept %q, want socket A's last response %s", key, a2)
	}
	store.mu.Lock()
	ttl := store.resps["u1"][key].TTL
	store.mu.Unlock()
	if ttl != DefaultSocketMaxAge {
		t.Errorf("the socket's entry is kept for %s, want the socket's maximum age", ttl)
	}
	if st, code := turnError(t, b, unstoredFrame("by key", key, true)); st != 404 || code != "previous_response_not_found" {
		t.Errorf("the socket's store key as an id: %d %s, want 404", st, code)
	}
	if st := e.getStatus(t, key); st != http.StatusNotFound {
		t.Errorf("GET of the socket's store key: %d, want 404", st)
	}
	// Socket A still continues its own last response.
	completed(t, a, unstoredFrame("three", a2, true))
}

// When the upstream socket cannot carry a chained store:false turn (it
// dropped since the last turn), the turn goes over HTTP with the whole
// input rebuilt from the socket's entry, and the next one starts a new
// upstream socket's chain.
func TestSocketChainFallsBackToHTTPWithTheWholeInput(t *testing.T) {
	e, _ := newChainEnv(t, true)
	c := mustDial(t, e.url)
	id1 := completed(t, c, unstoredFrame("one", "", true))
	e.srv.DropWebSockets()
	eventually(t, "the backend's socket to close", func() bool { return e.srv.OpenWebSockets() == 0 })
	time.Sleep(20 * time.Millisecond) // the proxy's reader sees the close
	id2 := completed(t, c, unstoredFrame("two", id1, true))
	id3 := completed(t, c, unstoredFrame("three", id2, true))
	completed(t, c, unstoredFrame("four", id3, true))

	turns := e.upstreamTurns()
	if len(turns) != 4 {
		t.Fatalf("%d upstream turns, want 4", len(turns))
	}
	if turns[1].Header.Get(codextest.TransportHeader) != "" || inputLen(turns[1]) != 4 {
		t.Errorf("turn 2: transport %q, %d input items; want HTTP with 4", turns[1].Header.Get(codextest.TransportHeader), inputLen(turns[1]))
	}
	if turns[2].Header.Get(codextest.FrameInputHeader) != "7" || turns[2].Header.Get(codextest.PreviousResponseHeader) != "" {
		t.Errorf("turn 3: %v, want the whole input (7 items) on a new socket", turns[2].Header)
	}
	if turns[3].Header.Get(codextest.FrameInputHeader) != "1" || turns[3].Header.Get(codextest.PreviousResponseHeader) == "" {
		t.Errorf("turn 4: %v, want its one new item, chained", turns[3].Header)
	}
}
