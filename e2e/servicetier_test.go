package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
)

// TestNodeServiceTier runs the openai SDK 7 (e2e/node/tiers.mjs) through
// the built binary: service_tier "fast" and "priority" reach the backend
// as priority, "default" as no tier, a model the Caddyfile gives the Fast
// tier gets it when the request names none, a key created with
// --service-tier deny sends the default, and a model without the Fast tier
// answers the SDK a 400 unsupported_service_tier on param service_tier.
func TestNodeServiceTier(t *testing.T) {
	t.Parallel()
	caddyBinary(t)
	node := nodeBinary(t)
	needNodeModule(t, "openai")
	fake := newFake(t, codextest.Options{})
	p, key := startProxy(t, fake, "service_tier gpt-5.3-codex priority\n\t\tservice_tier gpt-5.5 default")
	denyKey, _ := p.cli(t, "keys", "create", "--email", "ada@example.com", "--label", "no-fast", "--service-tier", "deny")

	const nonce = "t1er"
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "tiers.mjs")
	cmd.Dir = nodeDir(t)
	cmd.Env = append(os.Environ(), "OPENAI_BASE_URL="+p.httpsURL+"/v1", "OPENAI_API_KEY="+key,
		"DENY_KEY="+strings.TrimSpace(denyKey), "NODE_EXTRA_CA_CERTS="+p.rootCA, "NONCE="+nonce)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node tiers.mjs: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	type failure struct {
		Status      int
		Code, Param string
		Message     string
	}
	var res map[string]struct {
		Text  string
		Error *failure
	}
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &res); err != nil {
		t.Fatalf("node output: %v\n%s", err, stdout.String())
	}
	// sentTier is the service_tier of the one upstream request whose input
	// carries the case's text ("" when it sent none).
	sentTier := func(name string) string {
		t.Helper()
		var found []codextest.Request
		for _, r := range fake.RequestsTo("/responses") {
			if bytes.Contains(r.Body, []byte(nonce+"-"+name+`"`)) {
				found = append(found, r)
			}
		}
		if len(found) != 1 {
			t.Fatalf("%s reached the backend %d times", name, len(found))
		}
		tier, _ := found[0].JSON["service_tier"].(string)
		return tier
	}
	for name, want := range map[string]string{
		"chat_fast":          "priority",
		"responses_priority": "priority",
		"chat_default":       "",
		"chat_model_default": "priority",
		"deny_fast":          "",
	} {
		if r := res[name]; r.Error != nil || r.Text == "" {
			t.Errorf("%s: %+v", name, r)
			continue
		}
		if got := sentTier(name); got != want {
			t.Errorf("%s: service_tier %q reached the backend, want %q", name, got, want)
		}
	}
	refused := res["refused"].Error
	if refused == nil || refused.Status != 400 || refused.Code != "unsupported_service_tier" || refused.Param != "service_tier" ||
		!strings.Contains(refused.Message, "Fast tier") {
		t.Fatalf("Fast tier on a model without it: %+v", res["refused"])
	}
}
