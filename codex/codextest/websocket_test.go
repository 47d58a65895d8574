package codextest

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// dialWS opens the fake's /responses socket with the account's credentials.
func dialWS(t *testing.T, s *Server, tok Tokens, beta string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	h := http.Header{}
	h.Set("Authorization", "Bearer "+tok.AccessToken)
	h.Set("ChatGPT-Account-ID", "acct_1")
	if beta != "" {
		h.Set("OpenAI-Beta", beta)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, strings.Replace(s.URL, "http", "ws", 1)+"/responses", &websocket.DialOptions{HTTPHeader: h})
	if c != nil {
		t.Cleanup(func() { c.CloseNow() })
	}
	return c, resp, err
}

// wsTurn sends one response.create and reads events up to a terminal one.
func wsTurn(t *testing.T, c *websocket.Conn, req map[string]any) []map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	frame := map[string]any{"type": "response.create"}
	for k, v := range req {
		frame[k] = v
	}
	b, _ := json.Marshal(frame)
	if err := c.Write(ctx, websocket.MessageText, b); err != nil {
		t.Fatal(err)
	}
	var evs []map[string]any
	for {
		_, m, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("read after %d events: %v", len(evs), err)
		}
		var ev map[string]any
		if err := json.Unmarshal(m, &ev); err != nil {
			t.Fatalf("bad frame %q", m)
		}
		evs = append(evs, ev)
		switch ev["type"] {
		case "response.completed", "response.failed", "response.incomplete", "error":
			return evs
		}
	}
}

func TestWebSocketChainsOnTheConnection(t *testing.T) {
	s := New(t)
	tok := s.AddAccount("acct_1", "a@example.com", "plus")
	c, _, err := dialWS(t, s, tok, WebSocketBeta)
	if err != nil {
		t.Fatal(err)
	}
	evs := wsTurn(t, c, validBody("first"))
	if evs[0]["type"] != "codex.rate_limits" {
		t.Errorf("first event %v, want codex.rate_limits", evs[0]["type"])
	}
	last := evs[len(evs)-1]
	if last["type"] != "response.completed" {
		t.Fatalf("turn 1 ended with %v", last)
	}
	id := last["response"].(map[string]any)["id"].(string)

	// Turn 2 sends only its new item, chained to turn 1 on this socket.
	next := validBody("second")
	next["previous_response_id"] = id
	evs = wsTurn(t, c, next)
	if got := evs[len(evs)-1]["type"]; got != "response.completed" {
		t.Fatalf("chained turn ended with %v", evs[len(evs)-1])
	}
	rq := s.Requests()
	in := rq[len(rq)-1].JSON["input"].([]any)
	if len(in) < 3 {
		t.Errorf("chained turn reached the model with %d input items, want turn 1's input+output and the new one", len(in))
	}
	if rq[len(rq)-1].Header.Get(TransportHeader) != "websocket" {
		t.Error("socket turn not marked as such")
	}

	// A chain the connection does not hold is refused; the socket stays usable.
	stale := validBody("third")
	stale["previous_response_id"] = "resp_unknown"
	evs = wsTurn(t, c, stale)
	e := evs[len(evs)-1]
	if e["type"] != "error" || e["error"].(map[string]any)["code"] != "previous_response_not_found" {
		t.Fatalf("stale chain: %v", e)
	}
	if got := wsTurn(t, c, validBody("again")); got[len(got)-1]["type"] != "response.completed" {
		t.Fatalf("socket unusable after an error: %v", got[len(got)-1])
	}

	// Another connection does not hold the chain.
	c2, _, err := dialWS(t, s, tok, WebSocketBeta)
	if err != nil {
		t.Fatal(err)
	}
	evs = wsTurn(t, c2, next)
	if e := evs[len(evs)-1]; e["type"] != "error" {
		t.Fatalf("chain on a new connection: %v", e)
	}
}

func TestWebSocketUpgradeRules(t *testing.T) {
	s := New(t)
	tok := s.AddAccount("acct_1", "a@example.com", "plus")
	for _, tc := range []struct {
		name   string
		tok    Tokens
		beta   string
		refuse bool
		status int
	}{
		{"no beta header", tok, "", false, http.StatusBadRequest},
		{"bad token", Tokens{AccessToken: "nope"}, WebSocketBeta, false, http.StatusUnauthorized},
		{"refused", tok, WebSocketBeta, true, http.StatusMethodNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.SetRefuseWebSocket(tc.refuse)
			defer s.SetRefuseWebSocket(false)
			_, resp, err := dialWS(t, s, tc.tok, tc.beta)
			if err == nil || resp == nil || resp.StatusCode != tc.status {
				t.Fatalf("err %v resp %v, want status %d", err, resp, tc.status)
			}
		})
	}
	if n := s.WebSocketConns(); n != 0 {
		t.Errorf("%d upgrades accepted", n)
	}
}

func TestWebSocketUsageLimitIsAnErrorEvent(t *testing.T) {
	s := New(t)
	tok := s.AddAccount("acct_1", "a@example.com", "plus")
	s.SetUsageBudget("acct_1", 0, time.Hour)
	c, _, err := dialWS(t, s, tok, WebSocketBeta)
	if err != nil {
		t.Fatal(err)
	}
	evs := wsTurn(t, c, validBody("hi"))
	e := evs[len(evs)-1]
	if e["type"] != "error" || e["status"] != float64(429) {
		t.Fatalf("got %v", e)
	}
	if e["error"].(map[string]any)["error"].(map[string]any)["type"] != "usage_limit_reached" {
		t.Fatalf("got %v", e)
	}
}

func TestWebSocketOneResponseInFlight(t *testing.T) {
	s := New(t, WithScenario(ScenarioSlow), WithSlowDelay(20*time.Millisecond))
	tok := s.AddAccount("acct_1", "a@example.com", "plus")
	c, _, err := dialWS(t, s, tok, WebSocketBeta)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	frame, _ := json.Marshal(map[string]any{"type": "response.create", "model": "gpt-5.5", "instructions": "",
		"input": validBody("x")["input"], "store": false, "stream": true})
	for range 2 {
		if err := c.Write(ctx, websocket.MessageText, frame); err != nil {
			t.Fatal(err)
		}
	}
	var busy, completed int
	for completed == 0 {
		_, m, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ev map[string]any
		json.Unmarshal(m, &ev)
		switch ev["type"] {
		case "error":
			if ev["error"].(map[string]any)["code"] == "conversation_in_progress" {
				busy++
			}
		case "response.completed":
			completed++
		}
	}
	if busy != 1 {
		t.Errorf("second frame during a turn: %d busy errors, want 1", busy)
	}
}
