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

// anthropicResults is what e2e/node/anthropic-sdk.mjs prints.
type anthropicResults struct {
	SDK  string `json:"sdk"`
	Text struct {
		nodeError
		Type, Role, Model, Text string
		StopReason              string         `json:"stop_reason"`
		Usage                   map[string]int `json:"usage"`
	} `json:"text"`
	Stream struct {
		nodeError
		Events     []string       `json:"events"`
		Text       string         `json:"text"`
		FinalText  string         `json:"final_text"`
		StopReason string         `json:"stop_reason"`
		Usage      map[string]int `json:"usage"`
	} `json:"stream"`
	Tools struct {
		nodeError
		FirstStop string `json:"first_stop"`
		Call      struct {
			ID, Name string
			Input    map[string]string
		} `json:"call"`
		SecondStop string `json:"second_stop"`
		SecondText string `json:"second_text"`
	} `json:"tools"`
	CountTokens struct {
		nodeError
		InputTokens int `json:"input_tokens"`
	} `json:"count_tokens"`
	WrongKey struct {
		nodeError
		Class    string `json:"class"`
		Status   int    `json:"status"`
		Type     string `json:"type"`
		BodyType string `json:"body_type"`
	} `json:"wrong_key"`
}

// TestAnthropicSDK drives the proxy's Messages API with the Anthropic
// TypeScript SDK over HTTPS: a text answer, a stream, a tool round trip,
// count_tokens and a wrong key, with a Claude model name.
func TestAnthropicSDK(t *testing.T) {
	t.Parallel()
	caddyBinary(t)
	node := nodeBinary(t)
	needNodeModule(t, "@anthropic-ai/sdk")
	fake := newFake(t, codextest.Options{Script: toolRoundTrip})
	// The operator maps sonnet to gpt-5.4 at low effort (the default is
	// gpt-5.5 at medium).
	p, key := startProxy(t, fake, "claude_model *sonnet* gpt-5.4 low")

	const nonce = "anthr0"
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "anthropic-sdk.mjs")
	cmd.Dir = nodeDir(t)
	cmd.Env = append(os.Environ(), "ANTHROPIC_BASE_URL="+p.httpsURL, "ANTHROPIC_API_KEY="+key,
		"NODE_EXTRA_CA_CERTS="+p.rootCA, "NONCE="+nonce)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node anthropic-sdk.mjs: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	t.Logf("anthropic-sdk.mjs: %s", stdout.String())
	var res anthropicResults
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &res); err != nil {
		t.Fatalf("node output: %v\n%s", err, stdout.String())
	}
	if res.SDK != "1.17.0" {
		t.Errorf("@anthropic-ai/sdk %q", res.SDK)
	}

	t.Run("text", func(t *testing.T) {
		r := res.Text
		if r.Error != "" || r.Type != "message" || r.Role != "assistant" || r.Model != "claude-sonnet-4-5" ||
			!strings.Contains(r.Text, nonce+"-text") || r.StopReason != "end_turn" || r.Usage["output_tokens"] == 0 {
			t.Fatalf("%+v", r)
		}
		up := upstreamRequest(t, fake, nonce+"-text")
		if reasoning, _ := up.JSON["reasoning"].(map[string]any); up.JSON["model"] != "gpt-5.4" || reasoning["effort"] != "low" {
			t.Errorf("sonnet went upstream as %v at %v, not as claude_model says", up.JSON["model"], up.JSON["reasoning"])
		}
	})
	t.Run("stream", func(t *testing.T) {
		r := res.Stream
		if r.Error != "" || !strings.Contains(r.Text, nonce+"-stream") || r.Text != r.FinalText || r.StopReason != "end_turn" {
			t.Fatalf("%+v", r)
		}
		for _, want := range []string{"message_start", "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop"} {
			if !containsString(r.Events, want) {
				t.Errorf("no %s among %v", want, r.Events)
			}
		}
		if _, ok := r.Usage["cache_read_input_tokens"]; !ok || r.Usage["output_tokens"] == 0 {
			t.Errorf("usage %v", r.Usage)
		}
	})
	t.Run("tools", func(t *testing.T) {
		r := res.Tools
		if r.Error != "" || r.FirstStop != "tool_use" || r.Call.Name != "get_weather" || r.Call.ID == "" ||
			!strings.Contains(r.Call.Input["location"], nonce+"-tools") || r.SecondStop != "end_turn" || r.SecondText == "" {
			t.Fatalf("%+v", r)
		}
		outs := functionCallOutputs(upstreamRequest(t, fake, "sunny-21C-"+nonce).JSON)
		if len(outs) != 1 || outs[0]["call_id"] != r.Call.ID || outs[0]["output"] != "sunny-21C-"+nonce {
			t.Errorf("the tool result went upstream as %v", outs)
		}
	})
	t.Run("count_tokens", func(t *testing.T) {
		if r := res.CountTokens; r.Error != "" || r.InputTokens <= 0 {
			t.Fatalf("%+v", r)
		}
		for _, r := range fake.RequestsTo("/responses") {
			if bytes.Contains(r.Body, []byte("count these words")) {
				t.Fatal("count_tokens went upstream")
			}
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		if r := res.WrongKey; r.Class != "AuthenticationError" || r.Status != 401 || r.Type != "authentication_error" || r.BodyType != "error" {
			t.Fatalf("%+v", r)
		}
	})
}

// claudeBinary is Claude Code's native binary, which npm puts in the
// platform package (the wrapper's postinstall, which npm does not run
// unapproved, would only copy it).
func claudeBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(nodeDir(t), "node_modules", "@anthropic-ai", "claude-code-linux-x64", "claude")
	if _, err := os.Stat(bin); err != nil {
		needTool(t, "Claude Code (@anthropic-ai/claude-code)", "run `npm ci` in e2e/node (.ci/run does)")
	}
	return bin
}

// runClaude runs `claude -p prompt --output-format json` in dir against
// the proxy and returns its JSON result.
func runClaude(t *testing.T, bin, baseURL, key, dir, prompt string, extra ...string) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := append([]string{"-p", prompt, "--output-format", "json", "--max-turns", "3"}, extra...)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "ANTHROPIC_BASE_URL="+baseURL, "ANTHROPIC_API_KEY="+key,
		"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1", "DISABLE_AUTOUPDATER=1", "DISABLE_TELEMETRY=1", "DISABLE_ERROR_REPORTING=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var out map[string]any
	if jerr := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &out); jerr != nil || err != nil {
		t.Fatalf("claude: %v / %v\nstdout:\n%s\nstderr:\n%s", err, jerr, stdout.String(), stderr.String())
	}
	return out
}

// TestClaudeCode runs the Claude Code CLI through the proxy: a text
// answer, and a turn where it runs its Read tool on a file and sends the
// result back.
func TestClaudeCode(t *testing.T) {
	t.Parallel()
	caddyBinary(t)
	bin := claudeBinary(t)
	fake := newFake(t, codextest.Options{Script: toolRoundTrip, Default: codextest.ScenarioPlain})
	p, key := startProxy(t, fake, "")
	dir := t.TempDir()

	t.Run("text", func(t *testing.T) {
		out := runClaude(t, bin, p.httpURL, key, dir, "say hello cc-text-nonce")
		if out["is_error"] != false || !strings.Contains(out["result"].(string), "cc-text-nonce") {
			t.Fatalf("%v", out)
		}
		up := upstreamRequest(t, fake, "cc-text-nonce")
		if len(up.JSON["tools"].([]any)) == 0 {
			t.Errorf("Claude Code's tools did not go upstream")
		}
	})
	t.Run("tool", func(t *testing.T) {
		file := filepath.Join(dir, "notes.txt")
		if err := os.WriteFile(file, []byte("the secret word is cc-tool-result\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		args, _ := json.Marshal(map[string]string{"file_path": file})
		prompt := "read the notes cc-tool-nonce " + codextest.Marker(codextest.ScenarioToolCall) + " " + codextest.ToolMarker("Read", string(args))
		out := runClaude(t, bin, p.httpURL, key, dir, prompt)
		if out["is_error"] != false {
			t.Fatalf("%v", out)
		}
		var sent bool
		for _, r := range fake.RequestsTo("/responses") {
			for _, o := range functionCallOutputs(r.JSON) {
				if s, _ := json.Marshal(o["output"]); strings.Contains(string(s), "cc-tool-result") {
					sent = true
				}
			}
		}
		if !sent {
			t.Fatalf("Claude Code did not send the file it read back upstream: %v", out)
		}
	})
}
