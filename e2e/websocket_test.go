package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
)

// wsResults is what e2e/node/responses-ws.mjs prints.
type wsResults struct {
	SDK   string `json:"sdk"`
	Turns []struct {
		Types  []string   `json:"types"`
		Text   string     `json:"text"`
		ID     string     `json:"id"`
		Status string     `json:"status"`
		Usage  *nodeUsage `json:"usage"`
		Error  any        `json:"error"`
	} `json:"turns"`
	Error struct {
		Message string `json:"message"`
		Event   *struct {
			Type   string `json:"type"`
			Status int    `json:"status"`
			Error  struct {
				Code    *string `json:"code"`
				Message string  `json:"message"`
			} `json:"error"`
		} `json:"event"`
		After struct {
			Text   string `json:"text"`
			Status string `json:"status"`
			Error  any    `json:"error"`
		} `json:"after"`
	} `json:"error"`
	CloseCode int `json:"closeCode"`
	Chained   struct {
		Call *struct {
			Name   string `json:"name"`
			CallID string `json:"call_id"`
		} `json:"call"`
		First, Second struct {
			ID     string `json:"id"`
			Status string `json:"status"`
			Text   string `json:"text"`
			Error  any    `json:"error"`
		}
	} `json:"chained"`
	WrongKey struct {
		Error     string `json:"error"`
		Served    bool   `json:"served"`
		CloseCode int    `json:"closeCode"`
	} `json:"wrong_key"`
}

// TestNodeResponsesWS drives the openai SDK's ResponsesWS (its Responses
// WebSocket mode, on the ws package) through the built caddy over TLS: two
// turns on one socket, an error event after which the socket still serves,
// and a wrong key refused at the handshake. It runs against both upstream
// transports: the backend's own socket, and a backend that refuses it.
func TestNodeResponsesWS(t *testing.T) {
	for _, refuse := range []bool{false, true} {
		t.Run(map[bool]string{false: "upstream-socket", true: "upstream-http"}[refuse], func(t *testing.T) {
			t.Parallel()
			testNodeResponsesWS(t, refuse)
		})
	}
}

func testNodeResponsesWS(t *testing.T, refuse bool) {
	caddyBinary(t)
	node := nodeBinary(t)
	for _, pkg := range []string{"openai", "ws"} {
		needNodeModule(t, pkg)
	}
	fake := newFake(t, codextest.Options{})
	fake.SetRefuseWebSocket(refuse)
	p, key := startProxy(t, fake, "")

	const nonce = "w5ock"
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "responses-ws.mjs")
	cmd.Dir = nodeDir(t)
	cmd.Env = append(os.Environ(), "OPENAI_BASE_URL="+p.httpsURL+"/v1", "OPENAI_API_KEY="+key,
		"NODE_EXTRA_CA_CERTS="+p.rootCA, "NONCE="+nonce)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node responses-ws.mjs: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	t.Logf("responses-ws.mjs: %s", stdout.String())
	var res wsResults
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &res); err != nil {
		t.Fatalf("node output: %v\n%s", err, stdout.String())
	}

	if len(res.Turns) != 2 {
		t.Fatalf("turns: %+v", res.Turns)
	}
	for i, tr := range res.Turns {
		if tr.Error != nil || tr.Status != "completed" || !strings.HasPrefix(tr.ID, "resp_") || tr.Usage == nil || tr.Usage.OutputTokens == 0 ||
			!containsString(tr.Types, "response.created") || !containsString(tr.Types, "response.output_text.delta") || tr.Text == "" {
			t.Fatalf("turn %d: %+v", i, tr)
		}
	}
	// The second turn carried the first one's answer upstream.
	gens := servedTurns(fake)
	if len(gens) != 5 {
		t.Fatalf("%d generations reached the upstream, want 5 (the bad one is refused by the proxy)", len(gens))
	}
	if !bytes.Contains(gens[1].Body, []byte(nonce)) || !bytes.Contains(gens[1].Body, []byte(`"role":"assistant"`)) {
		t.Fatalf("second turn's upstream body lacks the first answer: %s", gens[1].Body)
	}
	if ev := res.Error.Event; ev == nil || ev.Type != "error" || ev.Status != 400 || ev.Error.Message == "" {
		t.Fatalf("the bad turn's error event: %+v", res.Error)
	}
	if a := res.Error.After; a.Error != nil || a.Status != "completed" || a.Text == "" {
		t.Fatalf("the turn after the error: %+v", a)
	}
	if res.CloseCode != 1000 {
		t.Fatalf("client close: %d", res.CloseCode)
	}
	// The chained tool round trip: the second turn sent only the
	// function_call_output and previous_response_id; the proxy rebuilt the
	// whole input upstream (the fake refuses an output without its call)
	// and never forwarded the parameter.
	ch := res.Chained
	if ch.Call == nil || ch.Call.Name != "read_file" || ch.First.Status != "completed" || ch.Second.Error != nil ||
		ch.Second.Status != "completed" {
		t.Fatalf("chained turns: %+v", ch)
	}
	last := gens[4].Body
	if !bytes.Contains(last, []byte(`"function_call_output"`)) || !bytes.Contains(last, []byte(`"type":"function_call"`)) ||
		!bytes.Contains(last, []byte(ch.Call.CallID)) || bytes.Contains(last, []byte("previous_response_id")) {
		t.Fatalf("the chained turn's upstream body: %s", last)
	}
	if w := res.WrongKey; w.Served || !strings.Contains(w.Error, "401") {
		t.Fatalf("wrong key: %+v", w)
	}
	// Upstream, the second turn (the client resent its history) and the
	// chained one (previous_response_id) sent only their new items on the
	// backend's socket; the others, which start a conversation, all of it.
	checkUpstreamTransport(t, gens, !refuse, 1, 4)
}

// wsClient opens client WebSockets on a proxy's /v1/responses and reads
// their events.
type wsClient struct {
	t        *testing.T
	url, key string
}

func newWSClient(t *testing.T, p *proxy, key string) wsClient {
	return wsClient{t: t, url: "ws" + strings.TrimPrefix(p.httpURL, "http") + "/v1/responses", key: key}
}

// dial opens a socket, closed when the test ends.
func (w wsClient) dial() *websocket.Conn {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(w.t.Context(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, w.url, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + w.key}}})
	if err != nil {
		w.t.Fatalf("dial: %v", err)
	}
	w.t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

// read returns the next event's type, or "" and the close code.
func (w wsClient) read(c *websocket.Conn) (string, websocket.StatusCode) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(w.t.Context(), 30*time.Second)
	defer cancel()
	_, data, err := c.Read(ctx)
	if err != nil {
		return "", websocket.CloseStatus(err)
	}
	var ev struct{ Type string }
	_ = json.Unmarshal(data, &ev)
	return ev.Type, -1
}

// create sends one turn.
func (w wsClient) create(c *websocket.Conn, text string) {
	w.t.Helper()
	frame, _ := json.Marshal(map[string]any{"type": "response.create", "model": "gpt-5.5", "input": text})
	if err := c.Write(w.t.Context(), websocket.MessageText, frame); err != nil {
		w.t.Fatal(err)
	}
}

// started reads a turn's first events: the upstream's rate limits (what
// an HTTP answer carries in its x-codex headers), then response.created.
func (w wsClient) started(c *websocket.Conn) {
	w.t.Helper()
	for _, want := range []string{"codex.rate_limits", "response.created"} {
		if typ, code := w.read(c); typ != want {
			w.t.Fatalf("event %q (close %v), want %s", typ, code, want)
		}
	}
}

// finishesThenCloses reads a running turn to its end and then the close,
// which must be going away (1001, clients reconnect) after
// response.completed.
func (w wsClient) finishesThenCloses(c *websocket.Conn, what string) {
	w.t.Helper()
	var types []string
	for {
		typ, code := w.read(c)
		if typ == "" {
			if code != websocket.StatusGoingAway || !containsString(types, "response.completed") {
				w.t.Fatalf("%s: close %v after %v", what, code, types)
			}
			return
		}
		types = append(types, typ)
	}
}

// TestWebSocketAcrossReload: `caddy reload` closes an idle socket with
// going away (clients reconnect, to the new configuration) and lets a
// running turn finish before closing its socket; a new socket is served.
func TestWebSocketAcrossReload(t *testing.T) {
	t.Parallel()
	caddyBinary(t)
	fake := newFake(t, codextest.Options{SlowDelay: 300 * time.Millisecond})
	p, key := startProxy(t, fake, "")
	ws := newWSClient(t, p, key)
	dial, read, create := ws.dial, ws.read, ws.create
	idle, busy := dial(), dial()
	create(busy, "slow across the reload "+codextest.Marker(codextest.ScenarioSlow))
	ws.started(busy)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	reload := exec.CommandContext(ctx, p.bin, "reload", "--force", "--config", p.caddyfile, "--adapter", "caddyfile", "--address", p.admin)
	reload.Env = p.env
	reloaded := make(chan error, 1)
	go func() {
		out, err := reload.CombinedOutput()
		if err != nil {
			t.Logf("reload: %s", out)
		}
		reloaded <- err
	}()

	if _, code := read(idle); code != websocket.StatusGoingAway {
		t.Fatalf("idle socket across the reload: close %v", code)
	}
	ws.finishesThenCloses(busy, "busy socket across the reload")
	if err := <-reloaded; err != nil {
		t.Fatalf("reload: %v", err)
	}
	again := dial()
	create(again, "after the reload")
	for {
		typ, code := read(again)
		if typ == "response.completed" {
			break
		}
		if typ == "" || typ == "error" {
			t.Fatalf("after the reload: %q close %v", typ, code)
		}
	}
}

// TestUpstreamSocketSetting: through the built caddy, a client socket's
// turns go upstream on the backend's socket by default, and over HTTP with
// `upstream_socket off` in the Caddyfile.
func TestUpstreamSocketSetting(t *testing.T) {
	caddyBinary(t)
	for _, tc := range []struct{ extra, transport string }{{"", "websocket"}, {"upstream_socket off", ""}} {
		t.Run(map[string]string{"": "default", "upstream_socket off": "off"}[tc.extra], func(t *testing.T) {
			t.Parallel()
			fake := newFake(t, codextest.Options{})
			p, key := startProxy(t, fake, tc.extra)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(p.httpURL, "http")+"/v1/responses",
				&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + key}}})
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			defer c.CloseNow()
			prev := ""
			for _, text := range []string{"first", "second"} {
				f := map[string]any{"type": "response.create", "model": "gpt-5.5", "input": text}
				if prev != "" {
					f["previous_response_id"] = prev
				}
				frame, _ := json.Marshal(f)
				if err := c.Write(ctx, websocket.MessageText, frame); err != nil {
					t.Fatal(err)
				}
				for {
					_, data, err := c.Read(ctx)
					if err != nil {
						t.Fatal(err)
					}
					var ev struct {
						Type     string
						Response struct{ ID string }
					}
					_ = json.Unmarshal(data, &ev)
					if ev.Type == "error" || ev.Type == "response.failed" {
						t.Fatalf("turn %q: %s", text, data)
					}
					if ev.Type == "response.completed" {
						prev = ev.Response.ID
						break
					}
				}
			}
			gens := servedTurns(fake)
			if len(gens) != 2 {
				t.Fatalf("%d upstream turns, want 2", len(gens))
			}
			checkUpstreamTransport(t, gens, tc.transport == "websocket", 1)
		})
	}
}

// TestWebSocketAcrossStop: `caddy stop` closes an idle socket at once with
// going away, lets a running turn finish (its client gets
// response.completed, then the same close) and the process then exits; the
// turn is in the request log.
func TestWebSocketAcrossStop(t *testing.T) {
	t.Parallel()
	caddyBinary(t)
	fake := newFake(t, codextest.Options{SlowDelay: 300 * time.Millisecond})
	p, key := startProxy(t, fake, "")
	ws := newWSClient(t, p, key)
	idle, busy := ws.dial(), ws.dial()
	ws.create(busy, "slow across the stop "+codextest.Marker(codextest.ScenarioSlow))
	ws.started(busy)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stop := exec.CommandContext(ctx, p.bin, "stop", "--address", p.admin)
	stop.Env = p.env
	stopped := make(chan error, 1)
	go func() {
		out, err := stop.CombinedOutput()
		if err != nil {
			t.Logf("stop: %s", out)
		}
		stopped <- err
	}()
	if _, code := ws.read(idle); code != websocket.StatusGoingAway {
		t.Fatalf("idle socket at the stop: close %v", code)
	}
	ws.finishesThenCloses(busy, "busy socket at the stop")
	if err := <-stopped; err != nil {
		t.Fatalf("caddy stop: %v", err)
	}
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("caddy did not exit after its last socket closed")
	}
	if !strings.Contains(p.logs.String(), `"route":"responses","model":"gpt-5.5","status":200`) {
		t.Fatalf("the turn that finished during the stop is not in the log:\n%s", p.logs.String())
	}
}
