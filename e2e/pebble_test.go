package e2e

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
)

// pebbleVersion is the Pebble that .ci/run installs (go install …@v2.10.3);
// its test certificates come from the module cache.
const pebbleVersion = "v2.10.3"

const pebbleHint = "go install github.com/letsencrypt/pebble/v2/cmd/pebble@" + pebbleVersion +
	" github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv@" + pebbleVersion + " (.ci/run does)"

// lookGoBin finds a tool on PATH or in $(go env GOPATH)/bin.
func lookGoBin(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, dir := range filepath.SplitList(strings.TrimSpace(string(out))) {
			if p := filepath.Join(dir, "bin", name); fileExists(p) {
				return p
			}
		}
	}
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// TestAutomaticHTTPSWithPebble: Caddy obtains a certificate for a custom
// domain (proxy.test) from an ACME CA (Pebble) through a real challenge —
// Pebble resolves proxy.test with pebble-challtestsrv's DNS to 127.0.0.1 and
// validates on Caddy's ports — and an OpenAI client that trusts only
// Pebble's root completes a chat at https://proxy.test.
func TestAutomaticHTTPSWithPebble(t *testing.T) {
	t.Parallel()
	caddyBinary(t) // skip first when there is no caddy
	// Pebble validates challenges on the ports Caddy serves.
	httpPort, httpsPort := freePort(t), freePort(t)
	ca := startPebble(t, httpPort, httpsPort)
	acmeAddr, minica, pebbleRoot, pebbleLogs := ca.acmeAddr, ca.minica, ca.root, ca.logs

	fake := newFake(t, codextest.Options{})
	p, key := startProxySpec(t, fake, proxySpec{
		httpPort:  httpPort,
		httpsPort: httpsPort,
		global:    fmt.Sprintf("acme_ca https://%s/dir\n\tacme_ca_root %s\n\temail ops@proxy.test", acmeAddr, minica),
		domain:    "proxy.test",
	})

	// The client resolves proxy.test to 127.0.0.1 and trusts Pebble's root
	// only (not Caddy's internal CA).
	site := fmt.Sprintf("proxy.test:%d", httpsPort)
	var d net.Dialer
	client := tlsClient(t, pebbleRoot, func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr == site {
			addr = fmt.Sprintf("127.0.0.1:%d", httpsPort)
		}
		return d.DialContext(ctx, network, addr)
	})
	var leaf *x509.Certificate
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := client.Get("https://" + site + "/v1/models")
		if err == nil {
			resp.Body.Close()
			leaf = resp.TLS.PeerCertificates[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no trusted certificate for %s after 90 s: %v\ncaddy:\n%s\npebble:\n%s", site, err, p.logs.String(), pebbleLogs.String())
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err := leaf.VerifyHostname("proxy.test"); err != nil {
		t.Fatal(err)
	}

	c := newOpenAIClient("https://"+site, key, client)
	cc, err := streamText(withTimeout(t), c, "over acme pebble-nonce")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cc.Choices[0].Message.Content, "pebble-nonce") {
		t.Fatalf("chat at https://%s: %+v", site, cc)
	}

	// A real challenge was solved (no PEBBLE_VA_ALWAYS_VALID).
	logs := p.logs.String()
	solved := ""
	for _, ch := range []string{"tls-alpn-01", "http-01"} {
		if strings.Contains(logs, `"challenge_type":"`+ch+`"`) {
			solved = ch
		}
	}
	if solved == "" {
		t.Errorf("caddy's log shows no ACME challenge:\n%s", logs)
	}
	t.Logf("certificate for proxy.test obtained from Pebble through %s", solved)
	if !strings.Contains(logs, "certificate obtained successfully") {
		t.Errorf("caddy's log does not show the certificate obtained")
	}
	// And TLS with the local CA's trust alone fails for proxy.test: the
	// certificate is Pebble's, not Caddy's internal one.
	local := p.httpsClient(t)
	local.Transport.(*http.Transport).DialContext = client.Transport.(*http.Transport).DialContext
	if resp, err := local.Get("https://" + site + "/v1/models"); err == nil {
		resp.Body.Close()
		t.Errorf("proxy.test is served with a certificate from Caddy's internal CA")
	}
}

// pebbleCA is a running Pebble ACME CA with the DNS it resolves through.
type pebbleCA struct {
	acmeAddr string      // host:port of the ACME server (directory at /dir)
	minica   string      // path of the root Pebble's own HTTPS chains to
	root     []byte      // PEM of the root Pebble issues from
	logs     *syncBuffer // Pebble's output
}

// issued counts the certificates Pebble issued so far.
func (ca *pebbleCA) issued() int {
	return strings.Count(ca.logs.String(), "Issued certificate serial")
}

// startPebble starts pebble-challtestsrv, answering 127.0.0.1 for every
// name, and Pebble, validating challenges on httpPort and httpsPort; both
// stop when the test ends. Missing tools skip (fail in CI).
func startPebble(t *testing.T, httpPort, httpsPort int) *pebbleCA {
	t.Helper()
	pebble, challtestsrv := lookGoBin("pebble"), lookGoBin("pebble-challtestsrv")
	if pebble == "" || challtestsrv == "" {
		needTool(t, "pebble and pebble-challtestsrv", pebbleHint)
	}
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatalf("go env GOMODCACHE: %v", err)
	}
	certs := filepath.Join(strings.TrimSpace(string(out)), "github.com", "letsencrypt", "pebble", "v2@"+pebbleVersion, "test", "certs")
	minica := filepath.Join(certs, "pebble.minica.pem")
	if !fileExists(minica) {
		needTool(t, "Pebble's test certificates ("+certs+")", pebbleHint)
	}
	dir := t.TempDir()

	// DNS: every A query answers 127.0.0.1.
	dnsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	dnsLogs := &syncBuffer{}
	dns := exec.Command(challtestsrv, "-dnsserver", dnsAddr, "-management", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		"-doh", "", "-http01", "", "-https01", "", "-tlsalpn01", "", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "")
	dns.Stdout, dns.Stderr = dnsLogs, dnsLogs
	startProcess(t, "pebble-challtestsrv", dns, dnsLogs)

	acmeAddr, mgmtAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg, _ := json.MarshalIndent(map[string]any{"pebble": map[string]any{
		"listenAddress":                  acmeAddr,
		"managementListenAddress":        mgmtAddr,
		"certificate":                    filepath.Join(certs, "localhost", "cert.pem"),
		"privateKey":                     filepath.Join(certs, "localhost", "key.pem"),
		"httpPort":                       httpPort,
		"tlsPort":                        httpsPort,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
		"retryAfter":                     map[string]int{"authz": 1, "order": 1},
		"keyAlgorithm":                   "ecdsa",
		"profiles": map[string]any{"default": map[string]any{
			"description": "default", "validityPeriod": 7776000,
		}},
	}}, "", "  ")
	cfgPath := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	pebbleLogs := &syncBuffer{}
	pb := exec.Command(pebble, "-config", cfgPath, "-dnsserver", dnsAddr)
	pb.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0")
	pb.Stdout, pb.Stderr = pebbleLogs, pebbleLogs
	startProcess(t, "pebble", pb, pebbleLogs)

	// Pebble's own server certificate is signed by minica; the roots it
	// issues from are new at every start and served on the management port.
	minicaPEM, err := os.ReadFile(minica)
	if err != nil {
		t.Fatal(err)
	}
	mgmt := tlsClient(t, minicaPEM, nil)
	var pebbleRoot []byte
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := mgmt.Get("https://" + mgmtAddr + "/roots/0")
		if err == nil {
			pebbleRoot, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble did not start: %v\n%s", err, pebbleLogs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}

	return &pebbleCA{acmeAddr: acmeAddr, minica: minica, root: pebbleRoot, logs: pebbleLogs}
}
