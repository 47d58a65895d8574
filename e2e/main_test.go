// Package e2e drives a real Caddy built from this tree (./xcaddy.sh build)
// against the in-repo fake Codex backend, over real HTTP and TLS, with real
// OpenAI clients. ./xcaddy.sh test runs it with CODEX_PROXY_CADDY set to the
// binary; a plain `go test ./...` skips it and says why.
package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

const (
	encKey = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	pepper = "e2e-pepper-0123456789abcdef"
)

// proxy is a running Caddy with the codex_proxy module.
type proxy struct {
	dir       string
	caddyfile string
	bin       string
	admin     string
	httpURL   string // plain HTTP site
	httpsURL  string // https://localhost with tls internal
	rootCA    string
	cmd       *exec.Cmd
	logs      *strings.Builder
}

func caddyBinary(t *testing.T) string {
	bin := os.Getenv("CODEX_PROXY_CADDY")
	if bin == "" {
		t.Skip("end-to-end tests need a built caddy: run ./xcaddy.sh test (sets CODEX_PROXY_CADDY)")
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startProxy provisions a vault with one user linked to an account of fake,
// writes a Caddyfile and starts Caddy. It returns the proxy and the user's key.
func startProxy(t *testing.T, fake *codextest.Server, extra string) (*proxy, string) {
	t.Helper()
	bin := caddyBinary(t)
	dir := t.TempDir()
	vaultPath := filepath.Join(dir, "vault.db")
	tok := fake.AddAccount("acc-e2e", "ada@example.com", "plus")
	v, err := vault.Open(vaultPath, vault.Options{EncryptionKeys: []string{encKey}, Pepper: pepper})
	if err != nil {
		t.Fatal(err)
	}
	u, err := v.CreateUser("ada@example.com", "Ada")
	if err != nil {
		t.Fatal(err)
	}
	if err := v.PutTokens(u.ID, vault.TokenBundle{IDToken: tok.IDToken, AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken}); err != nil {
		t.Fatal(err)
	}
	key, _, err := v.CreateKey(u.ID, "e2e")
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}

	p := &proxy{dir: dir, bin: bin, logs: &strings.Builder{}}
	adminPort, httpPort, httpsPort, plainPort := freePort(t), freePort(t), freePort(t), freePort(t)
	p.admin = fmt.Sprintf("127.0.0.1:%d", adminPort)
	p.httpURL = fmt.Sprintf("http://127.0.0.1:%d", plainPort)
	p.httpsURL = fmt.Sprintf("https://localhost:%d", httpsPort)
	p.rootCA = filepath.Join(dir, "data", "pki", "authorities", "local", "root.crt")
	block := fmt.Sprintf(`codex_proxy {
		vault %s
		encryption_key {env.TOKEN_ENCRYPTION_KEY}
		api_key_pepper {env.API_KEY_PEPPER}
		upstream %s
		oauth_issuer %s
		keepalive 200ms
		%s
	}`, vaultPath, fake.URL, fake.IssuerURL, extra)
	p.caddyfile = filepath.Join(dir, "Caddyfile")
	cfg := fmt.Sprintf(`{
	admin %s
	http_port %d
	https_port %d
	storage file_system %s
	skip_install_trust
	grace_period 30s
}

https://localhost:%d {
	bind 127.0.0.1
	tls internal
	%s
}

http://127.0.0.1:%d {
	bind 127.0.0.1
	%s
}
`, p.admin, httpPort, httpsPort, filepath.Join(dir, "data"), httpsPort, block, plainPort, block)
	if err := os.WriteFile(p.caddyfile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, "run", "--config", p.caddyfile, "--adapter", "caddyfile")
	p.cmd.Env = append(os.Environ(), "TOKEN_ENCRYPTION_KEY="+encKey, "API_KEY_PEPPER="+pepper,
		"XDG_DATA_HOME="+filepath.Join(dir, "xdg-data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "xdg-config"))
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("caddy output:\n%s", p.logs.String())
		}
	})
	p.waitReady(t)
	return p, key
}

// waitReady waits until both sites answer.
func (p *proxy) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if p.cmd.ProcessState != nil {
			t.Fatalf("caddy exited:\n%s", p.logs.String())
		}
		resp, err := http.Get(p.httpURL + "/v1/models")
		if err == nil {
			resp.Body.Close()
			if _, err := os.Stat(p.rootCA); err == nil {
				if resp, err := p.httpsClient(t).Get(p.httpsURL + "/v1/models"); err == nil {
					resp.Body.Close()
					return
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("caddy did not become ready:\n%s", p.logs.String())
}

// httpsClient trusts Caddy's internal root, as a client told where the root
// certificate is would.
func (p *proxy) httpsClient(t *testing.T) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(p.rootCA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("bad root certificate")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	tr.ForceAttemptHTTP2 = true
	return &http.Client{Transport: tr}
}

// openaiClient returns an official Go client for base ("…/v1/").
func (p *proxy) openaiClient(t *testing.T, base, key string, httpClient *http.Client) openai.Client {
	opts := []option.RequestOption{option.WithBaseURL(base + "/v1/"), option.WithAPIKey(key), option.WithMaxRetries(0)}
	if httpClient != nil {
		opts = append(opts, option.WithHTTPClient(httpClient))
	}
	return openai.NewClient(opts...)
}

func withTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
