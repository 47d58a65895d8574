package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
)

// TestCodexCLIStatusUsage asks the real Codex CLI (0.171, `codex
// app-server`, the backend of its TUI) for the account's rate limits, what
// /status shows, with the proxy as a custom provider (env_key) and the
// ChatGPT base URL pointed at the proxy too. It asks nothing over the
// network: with an API key instead of a ChatGPT sign-in it refuses locally
// ("codex account authentication required to read rate limits"), so there
// is no usage path for the proxy to serve. If a release starts asking one,
// this fails and names the request, the cue to serve it (issue 23).
func TestCodexCLIStatusUsage(t *testing.T) {
	t.Parallel()
	caddyBinary(t)
	needNodeModule(t, "@openai/codex")
	nodeBinary(t)
	codexBin := filepath.Join(nodeDir(t), "node_modules", ".bin", "codex")
	fake := newFake(t, codextest.Options{})
	p, key := startProxy(t, fake, "")

	home := t.TempDir()
	codexHome := filepath.Join(home, ".codex")
	if err := os.MkdirAll(codexHome, 0o700); err != nil {
		t.Fatal(err)
	}
	// chatgpt_base_url is a top-level key: it must come before the first table.
	config := fmt.Sprintf("chatgpt_base_url = %q\n", p.httpURL+"/backend-api/") + fmt.Sprintf(codexConfig, p.httpURL, false)
	if err := os.WriteFile(filepath.Join(codexHome, "config.toml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, codexBin, "app-server")
	cmd.Dir = home
	cmd.Env = append(os.Environ(), nodePath(t), "CODEX_HOME="+codexHome, "HOME="+home, "CODEX_PROXY_API_KEY="+key, "NO_COLOR=1", "RUST_LOG=error")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	for _, line := range []string{
		`{"id":1,"method":"initialize","params":{"clientInfo":{"name":"usemysub-e2e","version":"1.0"}}}`,
		`{"method":"initialized"}`,
		`{"id":2,"method":"account/rateLimits/read"}`,
	} {
		if _, err := fmt.Fprintln(stdin, line); err != nil {
			t.Fatal(err)
		}
	}
	type rpcAnswer struct {
		ID     int             `json:"id"`
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	var answer rpcAnswer
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var a rpcAnswer
		if json.Unmarshal(sc.Bytes(), &a) == nil && a.ID == 2 {
			answer = a
			break
		}
	}
	if answer.ID != 2 {
		t.Fatalf("no answer to account/rateLimits/read: %v", sc.Err())
	}
	t.Logf("account/rateLimits/read: result %s error %+v", answer.Result, answer.Error)
	if answer.Error == nil || !strings.Contains(answer.Error.Message, "authentication required") {
		t.Errorf("Codex CLI answered account/rateLimits/read for a custom provider: result %s error %+v", answer.Result, answer.Error)
	}
	// Nothing reached the proxy for it: no request for /v1/usage or for a
	// path the proxy does not serve (the backend's /wham/usage or
	// /api/codex/usage).
	for _, line := range strings.Split(p.logs.String(), "\n") {
		if strings.Contains(line, "api request") && (strings.Contains(line, "usage") || strings.Contains(line, "unknown")) {
			t.Errorf("the Codex CLI asked the proxy for its usage: %s", line)
		}
	}
}
