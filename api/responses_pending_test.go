package api

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// gatedResponses is a store whose writes wait for release: a slow vault.
type gatedResponses struct {
	fakeResponses
	gate    chan struct{}
	started chan struct{}
	once    sync.Once
}

func newGated() *gatedResponses {
	return &gatedResponses{gate: make(chan struct{}), started: make(chan struct{})}
}

func (g *gatedResponses) PutResponse(userID string, r vault.StoredResponse, itemIDs []string) error {
	g.once.Do(func() { close(g.started) })
	<-g.gate
	return g.fakeResponses.PutResponse(userID, r, itemIDs)
}

// postWithin posts body to /v1/responses and returns the whole answer,
// failing if it takes longer than d.
func postWithin(t *testing.T, e *env, body string, d time.Duration) (int, string) {
	t.Helper()
	type answer struct {
		status int
		body   string
	}
	got := make(chan answer, 1)
	go func() {
		res, _ := e.do(t, "POST", "/v1/responses", testKey, strings.NewReader(body))
		b, _ := io.ReadAll(res.Body)
		got <- answer{res.StatusCode, string(b)}
	}()
	select {
	case a := <-got:
		return a.status, a.body
	case <-time.After(d):
		t.Fatalf("the answer waited for the store write")
		return 0, ""
	}
}

// TestStoreWriteIsOffTheStreamingPath checks the store's cost to a
// client: the whole answer (the terminal event, the end of the stream)
// arrives while the store write is still blocked, and a turn naming the
// response right after waits for that write instead of missing it.
func TestStoreWriteIsOffTheStreamingPath(t *testing.T) {
	for _, stream := range []bool{true, false} {
		t.Run(map[bool]string{false: "json", true: "stream"}[stream], func(t *testing.T) {
			store := newGated()
			e := newEnv(t, func(c *Config) { c.Responses = store })
			e.up.sse = toolSSE
			first := toolTurn
			if stream {
				first = strings.Replace(first, `{"model"`, `{"stream":true,"model"`, 1)
			}
			status, body := postWithin(t, e, first, 2*time.Second)
			if status != 200 || !strings.Contains(body, "fc_t1") {
				t.Fatalf("turn 1: %d %s", status, body)
			}
			<-store.started
			if store.count() != 0 {
				t.Fatal("the write landed before it was released")
			}
			time.AfterFunc(100*time.Millisecond, func() { close(store.gate) })
			e.up.sse = textSSE
			res, m := e.do(t, "POST", "/v1/responses", testKey, strings.NewReader(`{"model":"gpt-5.5","previous_response_id":"resp_t1",
				"input":[{"type":"function_call_output","call_id":"call_1","output":"sunny"}]}`))
			if res.StatusCode != 200 {
				t.Fatalf("turn 2, right after turn 1: %d %v", res.StatusCode, m)
			}
			if got := types(upstreamInput(t, e, 1)); got != "message,reasoning,function_call,function_call_output" {
				t.Fatalf("turn 2 upstream input = %s", got)
			}
		})
	}
}

// TestStoreWriteOnTheSameSocket checks the socket case: the next
// response.create, sent the moment response.completed arrives, continues
// a response whose write is still in flight.
func TestStoreWriteOnTheSameSocket(t *testing.T) {
	store := newGated()
	e := newEnv(t, func(c *Config) { c.Responses = store })
	e.up.sse = toolSSE
	c := mustDial(t, e.serve(t))
	send(t, c, `{"type":"response.create","model":"gpt-5.5","input":"weather in Paris?"}`)
	if types, last := untilEnd(t, c); last["type"] != "response.completed" {
		t.Fatalf("turn 1: %v %v", types, last)
	}
	<-store.started
	e.up.sse = textSSE
	send(t, c, `{"type":"response.create","model":"gpt-5.5","previous_response_id":"resp_t1","input":[{"type":"function_call_output","call_id":"call_1","output":"sunny"}]}`)
	time.AfterFunc(100*time.Millisecond, func() { close(store.gate) })
	if types, last := untilEnd(t, c); last["type"] != "response.completed" {
		t.Fatalf("turn 2: %v %v", types, last)
	}
	if got := types(upstreamInput(t, e, 1)); got != "message,reasoning,function_call,function_call_output" {
		t.Fatalf("turn 2 upstream input = %s", got)
	}
}

// TestShutdownWaitsForStoreWrites checks that a stop does not lose the
// last responses: Shutdown returns once their writes have landed.
func TestShutdownWaitsForStoreWrites(t *testing.T) {
	store := newGated()
	e := newEnv(t, func(c *Config) { c.Responses = store })
	postWithin(t, e, `{"model":"gpt-5.5","input":"hi"}`, 2*time.Second)
	<-store.started
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := e.h.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown with a write in flight = %v; want it to wait", err)
	}
	close(store.gate)
	if err := e.h.Shutdown(t.Context()); err != nil || store.count() != 1 {
		t.Fatalf("Shutdown = %v with %d stored", err, store.count())
	}
}

// TestMissedLookupRetriesForAnotherInstance checks the cluster case: a
// response written by another instance a moment after the lookup began
// is found by the retry.
func TestMissedLookupRetriesForAnotherInstance(t *testing.T) {
	store := &fakeResponses{}
	e := newEnv(t, func(c *Config) { c.Responses = store })
	e.up.sse = textSSE
	// Another instance's write lands 50ms after this instance looks.
	time.AfterFunc(50*time.Millisecond, func() {
		_ = store.PutResponse("u1", vault.StoredResponse{ID: "resp_elsewhere", Response: []byte(`{"id":"resp_elsewhere","output":[]}`)}, nil)
	})
	res, m := e.do(t, "POST", "/v1/responses", testKey, strings.NewReader(`{"model":"gpt-5.5","previous_response_id":"resp_elsewhere","input":"hi"}`))
	if res.StatusCode != 200 {
		t.Fatalf("lookup of a response another instance was writing: %d %v", res.StatusCode, m)
	}
}
