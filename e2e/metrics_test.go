package e2e

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
)

// scrape reads one series from the admin endpoint's /metrics; -1 when it
// is missing.
func scrape(t *testing.T, p *proxy, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + p.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	return -1
}

// TestReloadKeepsMetrics: caddy reload does not reset the proxy's
// counters, and the dropped request-log counter is exported.
func TestReloadKeepsMetrics(t *testing.T) {
	t.Parallel()
	fake := newFake(t, codextest.Options{})
	p, key := startProxy(t, fake, "")
	c := p.openaiClient(t, p.httpURL, key, nil)
	const requests = `caddy_codex_proxy_requests_total{model="gpt-5.5",route="chat_completions",status="200"}`
	for range 2 {
		if _, err := c.Chat.Completions.New(withTimeout(t), chatParams("count me")); err != nil {
			t.Fatal(err)
		}
	}
	if got := scrape(t, p, requests); got != 2 {
		t.Fatalf("before reload: %v requests counted, want 2", got)
	}
	if got := scrape(t, p, "caddy_codex_proxy_request_log_dropped_total"); got != 0 {
		t.Fatalf("dropped request-log records: %v, want 0", got)
	}

	cfg, _ := os.ReadFile(p.caddyfile)
	if err := os.WriteFile(p.caddyfile, []byte(strings.ReplaceAll(string(cfg), "keepalive 200ms", "keepalive 250ms")), 0o600); err != nil {
		t.Fatal(err)
	}
	reload := exec.Command(p.bin, "reload", "--config", p.caddyfile, "--adapter", "caddyfile", "--address", p.admin)
	reload.Env = p.cmd.Env
	if out, err := reload.CombinedOutput(); err != nil {
		t.Fatalf("reload: %v\n%s", err, out)
	}
	if got := scrape(t, p, requests); got != 2 {
		t.Fatalf("after reload: %v requests counted, want the 2 from before", got)
	}
	if _, err := c.Chat.Completions.New(withTimeout(t), chatParams("and me")); err != nil {
		t.Fatal(err)
	}
	if got := scrape(t, p, requests); got != 3 {
		t.Fatalf("after reload and one more: %v, want 3", got)
	}
}
