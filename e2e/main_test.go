// Package e2e drives a real Caddy built from this tree (./xcaddy.sh build)
// against the in-repo fake Codex backend, over real HTTP and TLS, with real
// OpenAI clients. ./xcaddy.sh test runs it with CODEX_PROXY_CADDY set to the
// binary; a plain `go test ./...` skips it and says why.
//
// Users and keys are provisioned the way an operator does it: with
// `caddy codex-proxy provision --auth-file <auth.json>` (before Caddy starts
// or, through the admin API, while it runs); the key is read from stdout.
package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
)

const (
	encKey = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	pepper = "e2e-pepper-0123456789abcdef"
)

// inCI reports whether the suite runs in CI, where every tool the tests
// need must be installed (.ci/run does it): a missing one fails instead of
// skipping.
func inCI() bool { return os.Getenv("CI") != "" && os.Getenv("CI") != "false" }

// needTool skips (or, in CI, fails) when a tool is missing.
func needTool(t *testing.T, what, hint string) {
	t.Helper()
	if inCI() {
		t.Fatalf("%s is missing in CI: %s", what, hint)
	}
	t.Skipf("%s is not installed: %s", what, hint)
}

// proxy is a Caddy with the codex_proxy module, started or about to be.
type proxy struct {
	dir       string
	caddyfile string
	bin       string
	env       []string
	admin     string
	httpPort  int
	httpsPort int
	httpURL   string            // plain HTTP site
	httpsURL  string            // https://localhost with tls internal
	sites     map[string]string // extra plain HTTP sites by name
	rootCA    string
	cmd       *exec.Cmd
	exited    <-chan struct{}
	logs      *syncBuffer
}

// site is an extra plain-HTTP site of a proxy config, with its own
// codex_proxy block sharing the vault.
type site struct {
	name     string
	upstream string // "" is the fake's URL
	extra    string // lines added to this site's codex_proxy block (not proxySpec.extra)
}

// proxySpec shapes the Caddyfile startProxy writes.
type proxySpec struct {
	// upstream replaces the fake's URL in the main sites' blocks.
	upstream string
	// extra is added to the codex_proxy blocks of the main sites (and of
	// the domain site).
	extra string
	// global is added to the global options.
	global string
	// sites are extra plain-HTTP sites.
	sites []site
	// domain, when set, adds the site <domain>:<https port> (automatic
	// HTTPS through whatever issuer global sets up).
	domain string
	// httpPort and httpsPort fix Caddy's ports (Pebble validates on them);
	// free ports when zero.
	httpPort, httpsPort int
}

func caddyBinary(t *testing.T) string {
	t.Helper()
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

// Ports handed out by freePort come from below Linux's ephemeral range
// (32768-60999), so an outgoing connection cannot take one between the
// check and the server binding it, and never twice in one test binary.
const (
	portLow  = 20000
	portHigh = 32000
)

var (
	portsMu  sync.Mutex
	portsOut = map[int]bool{}
)

// freePort returns a loopback port free for TCP and UDP (Caddy's HTTP/3
// and the mock DNS use UDP too).
func freePort(t *testing.T) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 1000 {
		port := portLow + rand.IntN(portHigh-portLow)
		if portsOut[port] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		portsOut[port] = true
		return port
	}
	t.Fatal("no free loopback port")
	return 0
}

// newFake starts the fake backend on a loopback port for the test.
func newFake(t *testing.T, o codextest.Options) *codextest.Server {
	t.Helper()
	o.Addr = "127.0.0.1:0"
	fake, err := codextest.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	return fake
}

// startProxy writes a Caddyfile, provisions ada@example.com through the CLI
// with Caddy stopped, starts Caddy and returns it with ada's key.
func startProxy(t *testing.T, fake *codextest.Server, extra string) (*proxy, string) {
	t.Helper()
	return startProxySpec(t, fake, proxySpec{extra: extra})
}

// startProxySpec is startProxy with a shaped config.
func startProxySpec(t *testing.T, fake *codextest.Server, spec proxySpec) (*proxy, string) {
	t.Helper()
	p := newProxy(t, fake, spec)
	key, _ := p.provision(t, "ada@example.com", p.authFile(t, fake, "acc-ada", "ada@example.com", "plus"))
	p.start(t)
	return p, key
}

// newProxy writes the Caddyfile; nothing runs yet.
func newProxy(t *testing.T, fake *codextest.Server, spec proxySpec) *proxy {
	t.Helper()
	bin := caddyBinary(t)
	dir := t.TempDir()
	p := &proxy{dir: dir, bin: bin, logs: &syncBuffer{}, sites: map[string]string{}}
	p.env = append(os.Environ(), "TOKEN_ENCRYPTION_KEY="+encKey, "API_KEY_PEPPER="+pepper,
		"XDG_DATA_HOME="+filepath.Join(dir, "xdg-data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "xdg-config"))
	p.httpPort, p.httpsPort = spec.httpPort, spec.httpsPort
	if p.httpPort == 0 {
		p.httpPort = freePort(t)
	}
	if p.httpsPort == 0 {
		p.httpsPort = freePort(t)
	}
	plainPort := freePort(t)
	p.admin = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p.httpURL = fmt.Sprintf("http://127.0.0.1:%d", plainPort)
	p.httpsURL = fmt.Sprintf("https://localhost:%d", p.httpsPort)
	p.rootCA = filepath.Join(dir, "data", "pki", "authorities", "local", "root.crt")
	vaultPath := filepath.Join(dir, "vault", "vault.db")

	block := func(upstream, extra string) string {
		if upstream == "" {
			upstream = fake.URL
		}
		return fmt.Sprintf(`codex_proxy {
		vault %s
		encryption_key {env.TOKEN_ENCRYPTION_KEY}
		api_key_pepper {env.API_KEY_PEPPER}
		upstream %s
		oauth_issuer %s
		keepalive 200ms
		%s
	}`, vaultPath, upstream, fake.IssuerURL, extra)
	}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, `{
	admin %s
	http_port %d
	https_port %d
	storage file_system %s
	skip_install_trust
	grace_period 30s
	%s
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
`, p.admin, p.httpPort, p.httpsPort, filepath.Join(dir, "data"), spec.global,
		p.httpsPort, block(spec.upstream, spec.extra), plainPort, block(spec.upstream, spec.extra))
	for _, s := range spec.sites {
		port := freePort(t)
		p.sites[s.name] = fmt.Sprintf("http://127.0.0.1:%d", port)
		fmt.Fprintf(&cfg, "\nhttp://127.0.0.1:%d {\n\tbind 127.0.0.1\n\t%s\n}\n", port, block(s.upstream, s.extra))
	}
	if spec.domain != "" {
		fmt.Fprintf(&cfg, "\n%s:%d {\n\tbind 127.0.0.1\n\t%s\n}\n", spec.domain, p.httpsPort, block(spec.upstream, spec.extra))
	}
	p.caddyfile = filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(p.caddyfile, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// start runs `caddy run` and waits until both main sites answer.
func (p *proxy) start(t *testing.T) {
	t.Helper()
	p.cmd = exec.Command(p.bin, "run", "--config", p.caddyfile, "--adapter", "caddyfile")
	p.cmd.Env = p.env
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	p.exited = startProcess(t, "caddy", p.cmd, p.logs)
	p.waitReady(t)
}

// startProcess starts cmd and stops it (SIGINT, then SIGKILL) when the test
// ends, showing its output if the test failed. The channel is closed when
// the process exits.
func startProcess(t *testing.T, name string, cmd *exec.Cmd, logs *syncBuffer) <-chan struct{} {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Signal(os.Interrupt)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, logs.String())
		}
	})
	return exited
}

// waitReady waits until both sites answer.
func (p *proxy) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			t.Fatalf("caddy exited:\n%s", p.logs.String())
		default:
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

// authFile mints a fresh login for the account at the fake and writes it
// as a Codex CLI ~/.codex/auth.json.
func (p *proxy) authFile(t *testing.T, fake *codextest.Server, accountID, email, plan string) string {
	t.Helper()
	tok := fake.AddAccount(accountID, email, plan)
	return writeAuthJSON(t, p.dir, accountID, tok)
}

// writeAuthJSON writes tok in the shape of the Codex CLI's auth.json.
func writeAuthJSON(t *testing.T, dir, accountID string, tok codextest.Tokens) string {
	t.Helper()
	b, err := json.MarshalIndent(map[string]any{
		"auth_mode":      "chatgpt",
		"OPENAI_API_KEY": nil,
		"tokens": map[string]any{
			"id_token":      tok.IDToken,
			"access_token":  tok.AccessToken,
			"refresh_token": tok.RefreshToken,
			"account_id":    accountID,
		},
		"last_refresh": time.Now().UTC().Format(time.RFC3339Nano),
	}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.CreateTemp(dir, "auth-*.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// cli runs `caddy codex-proxy <args> --config <Caddyfile>` with Caddy's
// environment and returns stdout and stderr; a failure fails the test.
func (p *proxy) cli(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	stdout, stderr, err := p.tryCLI(args...)
	if err != nil {
		t.Fatalf("caddy codex-proxy %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout, stderr)
	}
	return stdout, stderr
}

func (p *proxy) tryCLI(args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.bin, append(append([]string{"codex-proxy"}, args...), "--config", p.caddyfile)...)
	cmd.Env = p.env
	cmd.Dir = p.dir
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// provision runs `caddy codex-proxy provision` and returns the key it
// printed (stdout holds the key alone) and its stderr.
func (p *proxy) provision(t *testing.T, email, authFile string) (key, stderr string) {
	t.Helper()
	args := []string{"provision", "--email", email}
	if authFile != "" {
		args = append(args, "--auth-file", authFile)
	}
	stdout, stderr := p.cli(t, args...)
	key = strings.TrimSpace(stdout)
	if !strings.HasPrefix(key, "cpk_") || strings.ContainsAny(key, " \n") {
		t.Fatalf("provision printed %q on stdout, want the key alone\nstderr:\n%s", stdout, stderr)
	}
	return key, stderr
}

// httpsClient trusts Caddy's internal root, as a client told where the root
// certificate is would.
func (p *proxy) httpsClient(t *testing.T) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(p.rootCA)
	if err != nil {
		t.Fatal(err)
	}
	return tlsClient(t, pem, nil)
}

// tlsClient trusts the PEM roots; dial, when set, replaces the dialer.
func tlsClient(t *testing.T, pem []byte, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("bad root certificate")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	tr.ForceAttemptHTTP2 = true
	if dial != nil {
		tr.DialContext = dial
	}
	return &http.Client{Transport: tr}
}

// openaiClient returns an official Go client for base ("…/v1/").
func (p *proxy) openaiClient(t *testing.T, base, key string, httpClient *http.Client) openai.Client {
	return newOpenAIClient(base, key, httpClient)
}

func newOpenAIClient(base, key string, httpClient *http.Client) openai.Client {
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

// syncBuffer collects a process's output; safe to read while it writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// hasFunctionCallOutput reports whether a Responses request carries a tool
// result, i.e. is the second leg of a tool-call round trip.
func hasFunctionCallOutput(req map[string]any) bool {
	return len(functionCallOutputs(req)) > 0
}

// functionCallOutputs returns the function_call_output items of a request.
func functionCallOutputs(req map[string]any) []map[string]any {
	var out []map[string]any
	input, _ := req["input"].([]any)
	for _, it := range input {
		if m, ok := it.(map[string]any); ok && m["type"] == "function_call_output" {
			out = append(out, m)
		}
	}
	return out
}

// toolRoundTrip answers a request with a tool result in plain text and
// leaves the others to their marker.
func toolRoundTrip(r codextest.Request) codextest.Scenario {
	if hasFunctionCallOutput(r.JSON) {
		return codextest.ScenarioPlain
	}
	return ""
}

// upstreamRequest finds the Responses request the fake received whose body
// contains nonce.
func upstreamRequest(t *testing.T, fake *codextest.Server, nonce string) codextest.Request {
	t.Helper()
	var found []codextest.Request
	for _, r := range fake.RequestsTo("/responses") {
		if bytes.Contains(r.Body, []byte(nonce)) {
			found = append(found, r)
		}
	}
	if len(found) == 0 {
		t.Fatalf("the fake received no Responses request containing %q", nonce)
	}
	return found[len(found)-1]
}
