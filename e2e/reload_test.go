package e2e

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"

	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
)

// newEncKey is the key the rotation moves to.
const newEncKey = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

// setKeys rewrites every encryption_key line of the Caddyfile.
func (p *proxy) setKeys(t *testing.T, keys ...string) {
	t.Helper()
	b, err := os.ReadFile(p.caddyfile)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		if f := strings.Fields(l); len(f) > 0 && f[0] == "encryption_key" {
			lines[i] = "\t\tencryption_key " + strings.Join(keys, " ")
		}
	}
	if err := os.WriteFile(p.caddyfile, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
}

// reload runs `caddy reload` with the Caddyfile and returns its output.
func (p *proxy) reload() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.bin, "reload", "--config", p.caddyfile, "--adapter", "caddyfile", "--address", p.admin)
	cmd.Env = p.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// stop stops Caddy the way an operator does (SIGINT) and waits for it.
func (p *proxy) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("caddy did not stop")
	}
}

// traffic keeps chat streams (some slow, so they span reloads) in flight
// until stopped, and reports how many ran and what failed.
type traffic struct {
	stopc chan struct{}
	wg    sync.WaitGroup
	n     atomic.Int64
	mu    sync.Mutex
	errs  []error
}

func startTraffic(t *testing.T, c openai.Client, workers int) *traffic {
	tr := &traffic{stopc: make(chan struct{})}
	for w := range workers {
		tr.wg.Add(1)
		go func() {
			defer tr.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-tr.stopc:
					return
				default:
				}
				text := "rotate"
				if (w+i)%2 == 0 {
					text = "slow " + codextest.Marker(codextest.ScenarioSlow)
				}
				cc, err := streamText(withTimeout(t), c, text)
				if err == nil && (len(cc.Choices) == 0 || cc.Choices[0].FinishReason == "") {
					err = errors.New("stream ended without a finish reason")
				}
				tr.n.Add(1)
				if err != nil {
					tr.mu.Lock()
					tr.errs = append(tr.errs, err)
					tr.mu.Unlock()
				}
			}
		}()
	}
	return tr
}

// stop ends the traffic and fails the test if any request failed.
func (tr *traffic) stop(t *testing.T, phase string) {
	t.Helper()
	close(tr.stopc)
	tr.wg.Wait()
	if tr.n.Load() == 0 {
		t.Fatalf("%s: no request ran", phase)
	}
	for _, err := range tr.errs {
		t.Errorf("%s: a request failed: %v", phase, err)
	}
	if t.Failed() {
		t.FailNow()
	}
}

// waitLog waits until Caddy's log holds s n times.
func (p *proxy) waitLog(t *testing.T, s string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(p.logs.String(), s) < n {
		if time.Now().After(deadline) {
			t.Fatalf("caddy did not log %q %d times", s, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestKeyRotationByReload follows docs/operations.md's rotation recipe with
// `caddy reload` while requests are in flight: dropping the only key in use
// is refused and changes nothing; [new old] re-encrypts in the background;
// then [new] alone is accepted; and a restart with [new] reads every
// account. No request fails on the way.
func TestKeyRotationByReload(t *testing.T) {
	t.Parallel()
	fake := newFake(t, codextest.Options{SlowDelay: 100 * time.Millisecond})
	p := newProxy(t, fake, proxySpec{})
	p.setKeys(t, encKey)
	adaKey, _ := p.provision(t, "ada@example.com", p.authFile(t, fake, "acc-ada", "ada@example.com", "plus"))
	bobKey, _ := p.provision(t, "bob@example.com", p.authFile(t, fake, "acc-bob", "bob@example.com", "pro"))
	p.start(t)
	ada := p.openaiClient(t, p.httpURL, adaKey, nil)
	bob := p.openaiClient(t, p.httpURL, bobKey, nil)

	tr := startTraffic(t, ada, 3)
	time.Sleep(300 * time.Millisecond)

	// Dropping the key that seals both accounts: refused, saying why.
	p.setKeys(t, newEncKey)
	out, err := p.reload()
	if err == nil || !strings.Contains(out, "still encrypts 2 linked ChatGPT account(s)") {
		t.Fatalf("a reload dropping the key in use: err=%v\n%s", err, out)
	}
	t.Logf("refused: %s", out)

	// The recipe: new key first, old key after it.
	p.setKeys(t, newEncKey, encKey)
	if out, err := p.reload(); err != nil {
		t.Fatalf("reload with [new old]: %v\n%s", err, out)
	}
	p.waitLog(t, `"reencrypted":2`, 1)

	p.setKeys(t, newEncKey)
	if out, err := p.reload(); err != nil {
		t.Fatalf("reload with [new]: %v\n%s", err, out)
	}
	time.Sleep(300 * time.Millisecond)
	tr.stop(t, "across the reloads")
	t.Logf("%d requests across the reloads", tr.n.Load())
	if _, err := streamText(withTimeout(t), bob, "bob after the rotation"); err != nil {
		t.Fatalf("bob after the rotation: %v", err)
	}

	// A restart with the new key alone: every account still decrypts.
	p.stop(t)
	if strings.Contains(p.logs.String(), "cannot be decrypted") {
		t.Fatalf("a bundle could not be decrypted:\n%s", p.logs.String())
	}
	p.logs = &syncBuffer{}
	p.start(t)
	for name, c := range map[string]openai.Client{"ada": ada, "bob": bob} {
		if _, err := streamText(withTimeout(t), c, name+" after the restart"); err != nil {
			t.Fatalf("%s after the restart: %v", name, err)
		}
	}
	if strings.Contains(p.logs.String(), "cannot be decrypted") {
		t.Fatalf("a bundle could not be decrypted after the restart:\n%s", p.logs.String())
	}
}

// TestReloadAppliesSettings: a reload's api_key_pepper takes effect (old
// API keys stop working, as after a restart, and the log says so), and so
// does a new vault path, which the CLI then reaches through the admin API.
func TestReloadAppliesSettings(t *testing.T) {
	t.Parallel()
	fake := newFake(t, codextest.Options{})
	p, key := startProxy(t, fake, "")
	c := p.openaiClient(t, p.httpURL, key, nil)
	if _, err := streamText(withTimeout(t), c, "before"); err != nil {
		t.Fatal(err)
	}
	edit := func(old, new string) {
		t.Helper()
		cfg, _ := os.ReadFile(p.caddyfile)
		if !strings.Contains(string(cfg), old) {
			t.Fatalf("the Caddyfile has no %q", old)
		}
		if err := os.WriteFile(p.caddyfile, []byte(strings.ReplaceAll(string(cfg), old, new)), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := p.reload(); err != nil {
			t.Fatalf("reload: %v\n%s", err, out)
		}
	}
	wantRejected := func(c openai.Client, what string) {
		t.Helper()
		_, err := streamText(withTimeout(t), c, "after")
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 401 {
			t.Fatalf("%s: %v", what, err)
		}
	}

	edit("api_key_pepper {env.API_KEY_PEPPER}", "api_key_pepper another-pepper-0123456789")
	wantRejected(c, "a key made under the old pepper")
	p.waitLog(t, "api_key_pepper changed", 1)
	key2, _ := p.provision(t, "ada@example.com", "")
	c2 := p.openaiClient(t, p.httpURL, key2, nil)
	if _, err := streamText(withTimeout(t), c2, "new pepper"); err != nil {
		t.Fatalf("a key made under the new pepper: %v", err)
	}

	newVault := filepath.Join(p.dir, "vault2", "vault.db")
	edit(filepath.Join(p.dir, "vault", "vault.db"), newVault)
	if _, err := os.Stat(newVault); err != nil {
		t.Fatalf("the new vault path was not opened: %v", err)
	}
	wantRejected(c2, "a key of the old vault")
	key3, stderr := p.provision(t, "ada@example.com", p.authFile(t, fake, "acc-ada2", "ada@example.com", "plus"))
	if !strings.Contains(stderr, "using the admin API") {
		t.Fatalf("provision did not use the admin API:\n%s", stderr)
	}
	if _, err := streamText(withTimeout(t), p.openaiClient(t, p.httpURL, key3, nil), "new vault"); err != nil {
		t.Fatal(err)
	}
}

// TestValidateWhileRunning: `caddy validate` and `caddy adapt` on the
// running instance's Caddyfile succeed beside it; they open no vault.
func TestValidateWhileRunning(t *testing.T) {
	t.Parallel()
	fake := newFake(t, codextest.Options{})
	p, key := startProxy(t, fake, "")
	for _, args := range [][]string{
		{"validate", "--config", p.caddyfile, "--adapter", "caddyfile"},
		{"adapt", "--config", p.caddyfile, "--adapter", "caddyfile"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd := exec.CommandContext(ctx, p.bin, args...)
		cmd.Env = p.env
		start := time.Now()
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("caddy %s beside a running caddy: %v\n%s", args[0], err, out)
		}
		t.Logf("caddy %s took %v", args[0], time.Since(start).Round(time.Millisecond))
		if strings.Contains(string(out), "locked") {
			t.Fatalf("caddy %s: %s", args[0], out)
		}
	}
	// The running instance is untouched.
	if _, err := streamText(withTimeout(t), p.openaiClient(t, p.httpURL, key, nil), "still here"); err != nil {
		t.Fatal(err)
	}
}
