package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"

	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
	"github.com/usemysub/caddy-codex-proxy/internal/pgtest"
)

// cluster is three codex_proxy instances on one PostgreSQL (vault and
// certificate storage in one database) behind a fourth Caddy balancing
// between them, as docs/clusters.md's recipe sets them up.
type cluster struct {
	bin   string
	pg    *pgtest.Server
	dsn   string
	fake  *codextest.Server
	nodes []*clusterNode
	lb    *clusterNode
}

// clusterNode is one Caddy process of the cluster (an instance or the
// balancer), which a test may stop, kill and start again.
type clusterNode struct {
	// owner is the test the cluster belongs to: processes started in a
	// subtest (a restart) must outlive it, so they are stopped when the
	// owner ends.
	owner     *testing.T
	name      string
	bin       string
	caddyfile string
	env       []string
	admin     string // host:port; "" for the balancer (admin off)
	url       string // http://127.0.0.1:port of its site
	logs      *syncBuffer
	cmd       *exec.Cmd
	exited    <-chan struct{}
}

// nodeCaddyfile is an instance's config: the same for every instance but
// for the ports, with the DSN and secrets from the environment.
const nodeCaddyfile = `{
	admin %s
	http_port %d
	https_port %d
	storage codex_postgres {env.CODEX_DATABASE_URL}
	grace_period 30s
}

http://127.0.0.1:%d {
	bind 127.0.0.1
	codex_proxy {
		vault          {env.CODEX_DATABASE_URL}
		encryption_key {env.TOKEN_ENCRYPTION_KEY}
		api_key_pepper {env.API_KEY_PEPPER}
		upstream       %s
		oauth_issuer   %s
		keepalive      200ms
	}
}
`

// balancerCaddyfile spreads requests over the instances round robin. A
// connection refused (an instance stopping or down) is retried on another
// instance for up to lb_try_duration; only dial errors are retried, so a
// generation is never sent twice. keepalive off: a request never lands on
// an idle connection the stopping instance is closing (that error is not
// a dial error, so it would not be retried). Active health checks take a
// stopped instance out within health_interval and put it back once it
// answers; flush_interval -1 streams events as they come.
const balancerCaddyfile = `{
	admin off
	http_port %d
	https_port %d
}

http://127.0.0.1:%d {
	bind 127.0.0.1
	reverse_proxy %s {
		lb_policy       round_robin
		lb_try_duration 10s
		lb_try_interval 100ms
		fail_duration   2s
		health_uri      /
		health_interval 250ms
		health_timeout  1s
		flush_interval  -1
		transport http {
			keepalive off
		}
	}
}
`

// newCluster starts PostgreSQL, writes the configs and provisions every
// user in users (email → its login at the fake) with the CLI, before any
// instance runs. It returns the cluster, not yet started, and each user's
// key.
func newCluster(t *testing.T, fake *codextest.Server, users map[string]codextest.Tokens) (*cluster, map[string]string) {
	t.Helper()
	c := &cluster{bin: caddyBinary(t), fake: fake}
	c.pg = pgtest.Start(t)
	c.dsn = c.pg.NewDB(t)
	var upstreams []string
	for _, name := range []string{"caddy-a", "caddy-b", "caddy-c"} {
		port := freePort(t)
		admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		cfg := fmt.Sprintf(nodeCaddyfile, admin, freePort(t), freePort(t), port, fake.URL, fake.IssuerURL)
		c.nodes = append(c.nodes, c.newNode(t, name, admin, port, cfg))
		upstreams = append(upstreams, fmt.Sprintf("127.0.0.1:%d", port))
	}
	lbPort := freePort(t)
	c.lb = c.newNode(t, "balancer", "", lbPort,
		fmt.Sprintf(balancerCaddyfile, freePort(t), freePort(t), lbPort, strings.Join(upstreams, " ")))

	keys := map[string]string{}
	for email, tok := range users {
		auth := writeAuthJSON(t, t.TempDir(), accountOf(email), tok)
		out, stderr := c.nodes[0].cli(t, "provision", "--email", email, "--auth-file", auth)
		key := strings.TrimSpace(out)
		if !strings.HasPrefix(key, "cpk_") {
			t.Fatalf("provision %s printed %q\n%s", email, out, stderr)
		}
		keys[email] = key
	}
	return c, keys
}

// accountOf is the fake ChatGPT account id the tests give a user.
func accountOf(email string) string { return "acc-" + strings.SplitN(email, "@", 2)[0] }

// newNode writes a node's Caddyfile in its own directory.
func (c *cluster) newNode(t *testing.T, name, admin string, port int, cfg string) *clusterNode {
	t.Helper()
	dir := t.TempDir()
	n := &clusterNode{owner: t, name: name, bin: c.bin, admin: admin, url: fmt.Sprintf("http://127.0.0.1:%d", port),
		caddyfile: filepath.Join(dir, "Caddyfile")}
	n.env = append(os.Environ(), "CODEX_DATABASE_URL="+c.dsn, "TOKEN_ENCRYPTION_KEY="+encKey, "API_KEY_PEPPER="+pepper,
		"XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
	if err := os.WriteFile(n.caddyfile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return n
}

// start starts the three instances together, then the balancer, and waits
// until each answers.
func (c *cluster) start(t *testing.T) {
	t.Helper()
	for _, n := range c.nodes {
		n.spawn(t)
	}
	for _, n := range c.nodes {
		n.waitReady(t)
	}
	c.lb.spawn(t)
	c.lb.waitReady(t)
}

// spawn runs `caddy run` without waiting.
func (n *clusterNode) spawn(t *testing.T) {
	t.Helper()
	n.logs = &syncBuffer{}
	n.cmd = exec.Command(n.bin, "run", "--config", n.caddyfile, "--adapter", "caddyfile")
	n.cmd.Env = n.env
	n.cmd.Stdout, n.cmd.Stderr = n.logs, n.logs
	n.exited = startProcess(n.owner, n.name, n.cmd, n.logs)
}

// start runs the node and waits until it answers.
func (n *clusterNode) start(t *testing.T) {
	t.Helper()
	n.spawn(t)
	n.waitReady(t)
}

// waitReady waits until the node's site answers HTTP.
func (n *clusterNode) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-n.exited:
			t.Fatalf("%s exited:\n%s", n.name, n.logs.String())
		default:
		}
		if resp, err := http.Get(n.url + "/"); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not answer within 30 s:\n%s", n.name, n.logs.String())
}

// stop stops the node gracefully with `caddy stop` (in-flight requests
// finish within grace_period) and waits for the process to exit.
func (n *clusterNode) stop(t *testing.T) {
	t.Helper()
	cmd := exec.Command(n.bin, "stop", "--config", n.caddyfile, "--adapter", "caddyfile")
	cmd.Env = n.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("caddy stop %s: %v\n%s", n.name, err, out)
	}
	select {
	case <-n.exited:
	case <-time.After(40 * time.Second):
		t.Fatalf("%s did not exit within 40 s of caddy stop", n.name)
	}
}

// kill ends the node with SIGKILL and waits for the process to be gone.
func (n *clusterNode) kill(t *testing.T) {
	t.Helper()
	if err := n.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-n.exited
}

// cli runs `caddy codex-proxy <args> --config <the node's Caddyfile>` with
// its environment; with a PostgreSQL vault it works on the database
// directly. A failure fails the test.
func (n *clusterNode) cli(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, n.bin, append(append([]string{"codex-proxy"}, args...), "--config", n.caddyfile)...)
	cmd.Env = n.env
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		t.Fatalf("caddy codex-proxy %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, o.String(), e.String())
	}
	return o.String(), e.String()
}

// client is an OpenAI client for the node's site.
func (n *clusterNode) client(key string) openai.Client { return newOpenAIClient(n.url, key, nil) }

// keyID returns the id of the user's only key.
func (n *clusterNode) keyID(t *testing.T, email string) string {
	t.Helper()
	out, _ := n.cli(t, "keys", "list", "--email", email, "--json")
	var res struct {
		Keys []struct {
			ID string `json:"id"`
		} `json:"keys"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Keys) != 1 {
		t.Fatalf("keys list --json for %s: %v\n%s", email, err, out)
	}
	return res.Keys[0].ID
}

// apiStatus returns the HTTP status and OpenAI error code of err; 200 and
// "" for nil.
func apiStatus(err error) (int, string) {
	if err == nil {
		return http.StatusOK, ""
	}
	var ae *openai.Error
	if errors.As(err, &ae) {
		return ae.StatusCode, ae.Code
	}
	return 0, err.Error()
}
