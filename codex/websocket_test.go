package codex

import (
	"context"
	"encoding/json"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
)

func wsRequest(text string) []byte {
	b, _ := json.Marshal(map[string]any{
		"type": "response.create", "model": "gpt-5.5", "instructions": "", "store": false, "stream": true,
		"input": []any{map[string]any{"type": "message", "role": "user",
			"content": []any{map[string]any{"type": "input_text", "text": text}}}},
	})
	return b
}

func TestDialResponsesRunsATurn(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		srv, err := codextest.NewServer(codextest.Options{TLS: tlsOn})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Close)
		tok := srv.AddAccount("acct_1", "a@example.com", "plus")
		c, err := NewClient(Config{Upstream: srv.URL, Transport: srv.Client().Transport})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, err := c.DialResponses(ctx, newTestTS(srv, tok, "acct_1"), RequestHeaders{PromptCacheKey: "k"})
		if err != nil {
			t.Fatalf("tls=%v: %v", tlsOn, err)
		}
		if err := s.Send(ctx, wsRequest("hi")); err != nil {
			t.Fatal(err)
		}
		var types []string
		for {
			b, err := s.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var ev struct{ Type string }
			json.Unmarshal(b, &ev)
			types = append(types, ev.Type)
			if ev.Type == "response.completed" {
				break
			}
		}
		s.Close()
		if types[0] != "codex.rate_limits" || len(types) < 3 {
			t.Errorf("tls=%v events %v", tlsOn, types)
		}
		rq := srv.Requests()
		if h := rq[len(rq)-1].Header; h.Get(codextest.TransportHeader) != "websocket" || h.Get("Session-Id") != "k" {
			t.Errorf("turn headers %v", h)
		}
	}
}

func TestDialResponsesRefused(t *testing.T) {
	srv := codextest.New(t)
	tok := srv.AddAccount("acct_1", "a@example.com", "plus")
	srv.SetRefuseWebSocket(true)
	c, _ := NewClient(Config{Upstream: srv.URL})
	_, err := c.DialResponses(context.Background(), newTestTS(srv, tok, "acct_1"), RequestHeaders{})
	if !errors.Is(err, ErrSocketRefused) {
		t.Fatalf("err %v, want ErrSocketRefused", err)
	}
}

// TestIdleSocketMemory reports the heap an idle upstream socket costs on
// both ends (this client and the fake); the client-side figure counts
// toward the per-client-socket budget.
func TestIdleSocketMemory(t *testing.T) {
	srv := codextest.New(t)
	tok := srv.AddAccount("acct_1", "a@example.com", "plus")
	c, _ := NewClient(Config{Upstream: srv.URL})
	ts := newTestTS(srv, tok, "acct_1")
	const n = 50
	var socks []*Socket
	ctx := context.Background()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range n {
		s, err := c.DialResponses(ctx, ts, RequestHeaders{})
		if err != nil {
			t.Fatal(err)
		}
		socks = append(socks, s)
	}
	time.Sleep(100 * time.Millisecond)
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := (int64(after.HeapInuse) - int64(before.HeapInuse)) / n
	t.Logf("idle upstream socket pair (client and fake in one process): %d bytes of heap each", per)
	for _, s := range socks {
		s.Close()
	}
}
