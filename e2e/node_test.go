package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
)

// nodeDir is the npm project with the Node clients (e2e/node).
func nodeDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("node")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// needNodeModule skips (fails in CI) unless node and the npm package are
// installed in e2e/node; it returns the path of node.
func needNodeModule(t *testing.T, pkg string) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		needTool(t, "node", "install Node.js 20")
	}
	if _, err := os.Stat(filepath.Join(nodeDir(t), "node_modules", pkg, "package.json")); err != nil {
		needTool(t, "the npm package "+pkg, "run `npm ci` in e2e/node (.ci/run does)")
	}
	return node
}

// TestNodeOpenAISDK runs the official openai Node SDK (e2e/node/clients.mjs)
// against the proxy over HTTPS, trusting Caddy's internal root through
// NODE_EXTRA_CA_CERTS: a streamed chat with usage, a plain chat, a tool-call
// round trip and the Responses API streamed and not.
func TestNodeOpenAISDK(t *testing.T) {
	t.Parallel()
	caddyBinary(t) // skip first when there is no caddy
	node := needNodeModule(t, "openai")
	fake := newFake(t, codextest.Options{Script: toolRoundTrip})
	p, key := startProxy(t, fake, "")

	const nonce = "n0de"
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "clients.mjs")
	cmd.Dir = nodeDir(t)
	cmd.Env = append(os.Environ(), "OPENAI_BASE_URL="+p.httpsURL+"/v1", "OPENAI_API_KEY="+key,
		"NODE_EXTRA_CA_CERTS="+p.rootCA, "NONCE="+nonce)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node clients.mjs: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	t.Logf("node: %s", stdout.String())

	type usage struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
		InputTokens      int `json:"input_tokens"`
		OutputTokens     int `json:"output_tokens"`
	}
	var res struct {
		SDK        string `json:"sdk"`
		ChatStream struct {
			Error             string `json:"error"`
			Text              string `json:"text"`
			Reasoning         string `json:"reasoning"`
			Finish            string `json:"finish"`
			Usage             *usage `json:"usage"`
			UsageChunkChoices *int   `json:"usageChunkChoices"`
		} `json:"chat_stream"`
		Chat struct {
			Error  string `json:"error"`
			Object string `json:"object"`
			Text   string `json:"text"`
			Finish string `json:"finish"`
			Usage  *usage `json:"usage"`
		} `json:"chat"`
		Tools struct {
			Error       string `json:"error"`
			FirstFinish string `json:"firstFinish"`
			Call        struct {
				ID, Name, Arguments string
			} `json:"call"`
			SecondFinish string `json:"secondFinish"`
			SecondText   string `json:"secondText"`
		} `json:"tools"`
		ResponsesStream struct {
			Error  string   `json:"error"`
			Text   string   `json:"text"`
			Types  []string `json:"types"`
			Status string   `json:"status"`
			Usage  *usage   `json:"usage"`
		} `json:"responses_stream"`
		Responses struct {
			Error  string `json:"error"`
			Status string `json:"status"`
			Text   string `json:"text"`
		} `json:"responses"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &res); err != nil {
		t.Fatalf("node output: %v\n%s", err, stdout.String())
	}
	if res.SDK != "6.49.0" {
		t.Errorf("openai SDK version %q, want 6.49.0 (e2e/node/package.json)", res.SDK)
	}

	cs := res.ChatStream
	if cs.Error != "" || !strings.Contains(cs.Text, nonce+"-stream") || cs.Finish != "stop" || cs.Reasoning == "" {
		t.Errorf("chat stream: %+v", cs)
	}
	if cs.Usage == nil || cs.Usage.TotalTokens == 0 || cs.UsageChunkChoices == nil || *cs.UsageChunkChoices != 0 {
		t.Errorf("chat stream usage (want a final chunk with usage and no choices): %+v", cs)
	}

	if c := res.Chat; c.Error != "" || c.Object != "chat.completion" || !strings.Contains(c.Text, nonce+"-chat") ||
		c.Finish != "stop" || c.Usage == nil || c.Usage.TotalTokens == 0 {
		t.Errorf("chat: %+v", c)
	}

	tc := res.Tools
	if tc.Error != "" || tc.FirstFinish != "tool_calls" || tc.Call.Name != "get_weather" || tc.Call.ID == "" ||
		!strings.Contains(tc.Call.Arguments, "Paris") || tc.SecondFinish != "stop" || tc.SecondText == "" {
		t.Errorf("tool round trip: %+v", tc)
	}
	// The tool result reached the upstream as a function_call_output paired
	// with the call the upstream made.
	second := upstreamRequest(t, fake, "sunny-21C-"+nonce)
	outs := functionCallOutputs(second.JSON)
	if len(outs) != 1 || outs[0]["output"] != "sunny-21C-"+nonce || outs[0]["call_id"] != tc.Call.ID {
		t.Errorf("upstream function_call_output: %v (client call id %q)", outs, tc.Call.ID)
	}

	rs := res.ResponsesStream
	if rs.Error != "" || !strings.Contains(rs.Text, nonce+"-responses") || rs.Status != "completed" ||
		rs.Usage == nil || rs.Usage.OutputTokens == 0 {
		t.Errorf("responses stream: %+v", rs)
	}
	for _, typ := range []string{"response.created", "response.output_text.delta", "response.completed"} {
		if !containsString(rs.Types, typ) {
			t.Errorf("responses stream lacks %s: %v", typ, rs.Types)
		}
	}
	if r := res.Responses; r.Error != "" || r.Status != "completed" || !strings.Contains(r.Text, nonce+"-responses-plain") {
		t.Errorf("responses: %+v", r)
	}
	// Node's requests went upstream with the proxy's Codex identity, not
	// the SDK's headers.
	up := upstreamRequest(t, fake, nonce+"-chat")
	if ua := up.Header.Get("User-Agent"); strings.Contains(ua, "OpenAI/JS") || up.Header.Get("X-Stainless-Lang") != "" {
		t.Errorf("client headers leaked upstream: %v", up.Header)
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
