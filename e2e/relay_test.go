package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
)

// relay is a second Caddy, stock directives only, running the relay recipe
// of testdata/relay.Caddyfile.tmpl.
type relay struct {
	url  string
	logs *syncBuffer
}

// startRelay renders the relay template in front of upstream (an origin
// such as http://127.0.0.1:1234) and runs it with the same caddy binary,
// with RELAY_TOKEN=token in its environment (unset when token is "").
func startRelay(t *testing.T, upstream, token string) *relay {
	t.Helper()
	bin := caddyBinary(t)
	dir := t.TempDir()
	port := freePort(t)
	r := &relay{url: fmt.Sprintf("http://127.0.0.1:%d", port), logs: &syncBuffer{}}

	tmpl, err := template.ParseFiles(filepath.Join("testdata", "relay.Caddyfile.tmpl"))
	if err != nil {
		t.Fatal(err)
	}
	var site strings.Builder
	if err := tmpl.Execute(&site, map[string]string{"Address": r.url, "Bind": "127.0.0.1", "Upstream": upstream}); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf("{\n\tadmin 127.0.0.1:%d\n\thttp_port %d\n\thttps_port %d\n\tstorage file_system %s\n\tskip_install_trust\n\tgrace_period 5s\n}\n\n%s",
		freePort(t), port, freePort(t), filepath.Join(dir, "data"), site.String())
	caddyfile := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(caddyfile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", caddyfile, "--adapter", "caddyfile")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RELAY_TOKEN=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if token != "" {
		cmd.Env = append(cmd.Env, "RELAY_TOKEN="+token)
	}
	cmd.Env = append(cmd.Env, "XDG_DATA_HOME="+filepath.Join(dir, "xdg-data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "xdg-config"))
	cmd.Stdout, cmd.Stderr = r.logs, r.logs
	exited := startProcess(t, "relay caddy", cmd, r.logs)

	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("the relay caddy exited:\n%s", r.logs.String())
		default:
		}
		if resp, err := http.Get(r.url + "/"); err == nil {
			resp.Body.Close()
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("the relay did not become ready:\n%s", r.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRelay runs the relay recipe of docs/configuration.md: the proxy sends all upstream
// traffic to a second, plugin-free Caddy that checks X-Relay-Token and
// forwards to the backend. A proxy with the wrong token is refused by the
// relay, and so is anyone without it.
func TestRelay(t *testing.T) {
	t.Parallel()
	const secret = "relay-secret-0123456789"
	fake := newFake(t, codextest.Options{})
	rl := startRelay(t, fake.IssuerURL, secret)
	p, key := startProxySpec(t, fake, proxySpec{
		extra: fmt.Sprintf("relay %s {\n\t\t\ttoken %s\n\t\t}", rl.url, secret),
		sites: []site{{name: "wrong-token", extra: fmt.Sprintf("relay %s {\n\t\t\ttoken not-the-secret\n\t\t}", rl.url)}},
	})

	// A chat (streamed, over HTTPS) and the model list go through the relay.
	c := p.openaiClient(t, p.httpsURL, key, p.httpsClient(t))
	cc, err := streamText(withTimeout(t), c, "via the relay relay-nonce")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cc.Choices[0].Message.Content, "relay-nonce") || cc.Choices[0].FinishReason != "stop" {
		t.Fatalf("chat through the relay: %+v", cc)
	}
	up := upstreamRequest(t, fake, "relay-nonce")
	if up.Header.Get("X-Forwarded-For") == "" {
		t.Errorf("the request did not come through the relay: %v", up.Header)
	}
	if v := up.Header.Get("X-Relay-Token"); v != "" {
		t.Errorf("the relay passed its secret on upstream")
	}
	if up.Header.Get("ChatGPT-Account-ID") != "acc-ada" || !strings.HasPrefix(up.Header.Get("Authorization"), "Bearer ") {
		t.Errorf("the relay dropped the user's credentials: %v", up.Header)
	}
	fake.ResetRequests()
	models, err := c.Models.List(withTimeout(t))
	if err != nil || len(models.Data) == 0 {
		t.Fatalf("models through the relay: %v", err)
	}
	if got := fake.RequestsTo("/models"); len(got) != 1 || got[0].Query.Get("client_version") == "" {
		t.Errorf("the model catalog was not fetched through the relay (query kept): %+v", got)
	}

	// The proxy with the wrong token: the relay refuses and nothing reaches
	// the backend.
	fake.ResetRequests()
	resp := postJSON(t, p.sites["wrong-token"]+"/v1/chat/completions", key, `{"model":"gpt-5.5","messages":[{"role":"user","content":"hi"}]}`)
	if resp.status < 400 || !strings.Contains(string(resp.body), "403") {
		t.Errorf("proxy with the wrong relay token: %d %s", resp.status, resp.body)
	}
	t.Logf("client sees, with the wrong relay token: %d %s", resp.status, resp.body)

	// Anyone else: no token or a wrong one is a 403 from the relay itself.
	for name, tok := range map[string]string{"no token": "", "wrong token": "guess", "token prefix": secret[:10]} {
		req, _ := http.NewRequest(http.MethodPost, rl.url+"/responses", strings.NewReader(`{}`))
		if tok != "" {
			req.Header.Set("X-Relay-Token", tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: the relay answered %d, want 403", name, resp.StatusCode)
		}
	}
	if n := len(fake.Requests()); n != 0 {
		t.Errorf("%d requests reached the backend past a refusing relay", n)
	}
}

// TestRelayWithoutSecret: a relay started without RELAY_TOKEN must not
// become an open relay for requests with an empty X-Relay-Token.
func TestRelayWithoutSecret(t *testing.T) {
	t.Parallel()
	fake := newFake(t, codextest.Options{})
	rl := startRelay(t, fake.IssuerURL, "")
	for name, hdr := range map[string][]string{"no header": nil, "empty header": {""}, "some token": {"x"}} {
		req, _ := http.NewRequest(http.MethodPost, rl.url+"/responses", strings.NewReader(`{}`))
		if hdr != nil {
			req.Header["X-Relay-Token"] = hdr
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("%s: the unconfigured relay answered %d, want 503", name, resp.StatusCode)
		}
	}
	if n := len(fake.Requests()); n != 0 {
		t.Errorf("%d requests went through a relay without a secret", n)
	}
}
