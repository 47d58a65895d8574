package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
)

// codexConfig is $CODEX_HOME/config.toml: a custom provider speaking the
// Responses API to the proxy, with the cpk_ key in an environment variable.
const codexConfig = `model = "gpt-5.5"
model_provider = "codex_proxy"

[model_providers.codex_proxy]
name = "UseMySub codex proxy"
base_url = "%s/v1"
env_key = "CODEX_PROXY_API_KEY"
wire_api = "responses"
supports_websockets = %t
`

// TestCodexCLI runs the official Codex CLI (`codex exec`) against the proxy
// as a custom provider with wire_api = "responses", over HTTP and with
// supports_websockets = true (the Responses WebSocket mode, where Codex
// sends each turn's new items with previous_response_id). The fake backend
// answers the first request with an exec_command call; Codex runs it and
// sends the output back in a second request, which the fake answers with
// text.
//
// Over WebSocket it runs against both upstream transports: the backend's
// own socket (the proxy sends only each turn's new items upstream too),
// and a backend that refuses the upgrade (the proxy sends each turn over
// HTTP/SSE with its whole input).
func TestCodexCLI(t *testing.T) {
	for _, tc := range []struct {
		name       string
		ws, refuse bool
	}{{"http", false, false}, {"websocket", true, false}, {"websocket-upstream-http", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			testCodexCLI(t, tc.ws, tc.refuse)
		})
	}
}

func testCodexCLI(t *testing.T, ws, refuse bool) {
	caddyBinary(t) // skip first when there is no caddy
	needNodeModule(t, "@openai/codex")
	if _, err := exec.LookPath(filepath.Join(nodeDir(t), "node_modules", ".bin", "node")); err != nil {
		if _, err := exec.LookPath("node"); err != nil {
			needTool(t, "node", "run `npm ci` in e2e/node (.ci/run does): it installs Node 22")
		}
	}
	codexBin := filepath.Join(nodeDir(t), "node_modules", ".bin", "codex")
	timeoutBin, err := exec.LookPath("timeout")
	if err != nil {
		needTool(t, "timeout (coreutils)", "install coreutils")
	}

	fake := newFake(t, codextest.Options{Script: func(r codextest.Request) codextest.Scenario {
		if hasFunctionCallOutput(r.JSON) {
			return codextest.ScenarioPlain
		}
		return codextest.ScenarioToolCall
	}})
	fake.SetRefuseWebSocket(refuse)
	p, key := startProxy(t, fake, "")

	home := t.TempDir()
	codexHome := filepath.Join(home, ".codex")
	work := filepath.Join(home, "work")
	for _, d := range []string{codexHome, work} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(codexHome, "config.toml"), []byte(fmt.Sprintf(codexConfig, p.httpURL, ws)), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	// Codex retries a dead provider forever: timeout bounds it.
	cmd := exec.CommandContext(ctx, timeoutBin, "90", codexBin, "exec", "--skip-git-repo-check", "--json", "echo tool-ran-ok")
	cmd.Dir = work
	cmd.Env = append(os.Environ(), nodePath(t), "CODEX_HOME="+codexHome, "HOME="+home, "CODEX_PROXY_API_KEY="+key, "NO_COLOR=1", "RUST_LOG=warn")
	cmd.Stdin = nil // /dev/null
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err = cmd.Run()
	t.Logf("codex exec took %s", time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("codex exec: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}

	// The JSONL events: the command ran and printed its output, and the
	// turn ended with the model's text.
	var ranCommand, agentText string
	var completed bool
	events := stdout.String()
	t.Logf("codex exec --json:\n%s", events)
	sc := bufio.NewScanner(strings.NewReader(events))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev struct {
			Type string `json:"type"`
			Item struct {
				Type             string `json:"type"`
				Command          string `json:"command"`
				AggregatedOutput string `json:"aggregated_output"`
				Text             string `json:"text"`
			} `json:"item"`
		}
		if json.Unmarshal(sc.Bytes(), &ev) != nil {
			continue
		}
		switch {
		case ev.Type == "item.completed" && ev.Item.Type == "command_execution":
			ranCommand = ev.Item.Command + " => " + ev.Item.AggregatedOutput
		case ev.Type == "item.completed" && ev.Item.Type == "agent_message":
			agentText = ev.Item.Text
		case ev.Type == "turn.completed":
			completed = true
		}
	}
	if !strings.Contains(ranCommand, "tool-ran-ok") || agentText == "" || !completed {
		t.Errorf("codex events: command %q, agent text %q, turn completed %v\nstdout:\n%s\nstderr:\n%s",
			ranCommand, agentText, completed, events, stderr.String())
	}

	// Over WebSocket the prewarm and both turns went through one socket:
	// the CLI did not reconnect per request (it does when a chained turn
	// is refused, resending its whole history).
	if opened := strings.Count(p.logs.String(), "Responses WebSocket opened"); ws && opened != 1 || !ws && opened != 0 {
		t.Errorf("supports_websockets = %v, but %d Responses WebSockets were opened, want %d", ws, opened, map[bool]int{true: 1}[ws])
	}

	reqs := servedTurns(fake)
	if len(reqs) != 2 {
		// Over WebSocket, Codex first sends a generate:false prewarm: the
		// proxy answers it itself, so it must not show up here.
		t.Fatalf("the fake got %d Responses requests, want 2 (call, then result)", len(reqs))
	}
	first, second := reqs[0], reqs[1]
	if first.Scenario != codextest.ScenarioToolCall || second.Scenario != codextest.ScenarioPlain {
		t.Errorf("scenarios served: %s, %s", first.Scenario, second.Scenario)
	}
	outs := functionCallOutputs(second.JSON)
	if len(outs) != 1 {
		t.Fatalf("second request carries %d function_call_output items, want 1: %s", len(outs), second.Body)
	}
	if out, _ := json.Marshal(outs[0]["output"]); !strings.Contains(string(out), "tool-ran-ok") {
		t.Errorf("function_call_output does not carry the command's output: %s", out)
	}
	// The call the output answers is the exec_command call of the first
	// answer, re-sent in the history (store is false upstream).
	var call map[string]any
	input, _ := second.JSON["input"].([]any)
	for _, it := range input {
		if m, ok := it.(map[string]any); ok && m["type"] == "function_call" {
			call = m
		}
	}
	if call == nil || call["name"] != "exec_command" || call["call_id"] != outs[0]["call_id"] {
		t.Errorf("function_call in the second request: %v, output call_id %v", call, outs[0]["call_id"])
	}
	if args, _ := call["arguments"].(string); !strings.Contains(args, `"cmd":"echo tool-ran-ok"`) {
		t.Errorf("exec_command arguments: %v", call["arguments"])
	}
	// On its one socket the CLI chains its first turn to its
	// generate:false prewarm and the second to the first, all with
	// store:false, as the backend's connection allows. Upstream, the first
	// turn is the first of the backend's socket (which never saw the
	// prewarm) and goes whole; the second sends only its new items,
	// chained there too. Over HTTP each goes with the whole input rebuilt.
	if ws {
		checkUpstreamTransport(t, reqs, !refuse, 1)
	} else {
		checkUpstreamTransport(t, reqs, false)
	}
}

// servedTurns are the Responses turns the fake served (over either of its
// transports), without the upgrades it refused.
func servedTurns(fake *codextest.Server) []codextest.Request {
	var out []codextest.Request
	for _, r := range fake.RequestsTo("/responses") {
		if r.Method == http.MethodPost {
			out = append(out, r)
		}
	}
	return out
}

// checkUpstreamTransport checks that every turn went upstream on the
// backend's socket (socket) or over HTTP, and that on the socket the turns
// chained (indexes into reqs) continued the socket's chain, sending fewer
// items than the whole input the backend rebuilt, and the others did not.
func checkUpstreamTransport(t *testing.T, reqs []codextest.Request, socket bool, chained ...int) {
	t.Helper()
	for i, r := range reqs {
		over := r.Header.Get(codextest.TransportHeader)
		if socket != (over == "websocket") {
			t.Errorf("upstream turn %d went over %q, want the socket: %v", i+1, over, socket)
			continue
		}
		if !socket {
			continue
		}
		in, _ := r.JSON["input"].([]any)
		if !slices.Contains(chained, i) {
			if r.Header.Get(codextest.PreviousResponseHeader) != "" || r.Header.Get(codextest.FrameInputHeader) != strconv.Itoa(len(in)) {
				t.Errorf("upstream turn %d: %s of %d items sent, previous_response_id %q: want the whole input, unchained",
					i+1, r.Header.Get(codextest.FrameInputHeader), len(in), r.Header.Get(codextest.PreviousResponseHeader))
			}
			continue
		}
		sent, _ := strconv.Atoi(r.Header.Get(codextest.FrameInputHeader))
		if r.Header.Get(codextest.PreviousResponseHeader) == "" || sent == 0 || sent >= len(in) {
			t.Errorf("upstream turn %d: %d of %d items sent, previous_response_id %q: want only the new ones, chained",
				i+1, sent, len(in), r.Header.Get(codextest.PreviousResponseHeader))
		}
	}
}
