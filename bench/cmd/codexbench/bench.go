package main

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Secrets of the throw-away vaults; {env.*} placeholders in the Caddyfiles.
const (
	benchEncKey = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	benchPepper = "codexbench-pepper-0123456789abcdef"
	benchEmail  = "bench@example.com"
)

// targetNames describes the targets for the report.
var targetNames = map[string]string{
	"a": "fake upstream, direct",
	"b": "Caddy reverse_proxy → fake",
	"c": "codex_proxy /v1/responses, stream",
	"d": "codex_proxy /v1/chat/completions, stream",
	"e": "codex_proxy /v1/chat/completions, non-stream",
	"g": "codex_proxy /v1/messages (Anthropic), stream",
	"w": "codex_proxy /v1/responses over a WebSocket, turns",
}

// fastTargets are the throughput targets, in report order.
var fastTargets = []string{"a", "b", "c", "d", "e", "g", "w"}

// Request bodies. For a and b the body is what codex_proxy sends upstream
// (the fast fake does not parse it); c, d and e get client requests.
var (
	upstreamBody  = []byte(`{"model":"gpt-5.5","instructions":"","input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"Say hello to the benchmark."}]}],"tools":[],"tool_choice":"auto","parallel_tool_calls":false,"store":false,"stream":true,"include":[],"prompt_cache_key":"codexbench"}`)
	responsesBody = []byte(`{"model":"gpt-5.5","input":[{"role":"user","content":"Say hello to the benchmark."}],"stream":true}`)
	chatStream    = []byte(`{"model":"gpt-5.5","messages":[{"role":"user","content":"Say hello to the benchmark."}],"stream":true}`)
	chatJSON      = []byte(`{"model":"gpt-5.5","messages":[{"role":"user","content":"Say hello to the benchmark."}],"stream":false}`)
	messagesBody  = []byte(`{"model":"gpt-5.5","max_tokens":1000000,"messages":[{"role":"user","content":"Say hello to the benchmark."}],"stream":true}`)
	// socketFrame is one WebSocket turn: the /v1/responses body as a
	// response.create frame.
	socketFrame = []byte(`{"type":"response.create","model":"gpt-5.5","input":[{"role":"user","content":"Say hello to the benchmark."}]}`)
)

// bench is one run.
type bench struct {
	cfg     *config
	pin     pinning
	work    string
	ps      *procs
	started time.Time

	up, slowUp *fake // upstream fakes: fast (a-e) and slow (f)
	slowEvents int
	slowDelay  time.Duration
	streamSize int64 // bytes of the fast pre-rendered stream

	insts    []*instance // a-e, in report order
	slow     []*slowRun
	profiles []profileFiles
	notes    []string
	wrk      map[string][]wrkRun // -wrk runs by instance name
}

// instance is one target over one protocol, with its own server process.
type instance struct {
	target, proto string
	server        *proc // the measured process: Caddy, or the fake for a
	admin         string
	client        *http.Client
	spec          spec
	thr, lat      result
	hwmKB         int64
}

func (i *instance) name() string { return i.target + "-" + i.proto }

// fileName is name() without the prime of alternative-build targets.
func fileName(target, proto string) string {
	return strings.ReplaceAll(target, "'", "-alt") + "-" + proto
}

// letter is the target without the alternative-build prime.
func letter(target string) string { return target[:1] }

func isAlt(target string) bool { return strings.HasSuffix(target, "'") }

// describe names a target for the report.
func describe(target string) string {
	if isAlt(target) {
		return targetNames[letter(target)] + " (-alt-caddy)"
	}
	return targetNames[target]
}

// slowRun is target f through one proxy over one protocol.
type slowRun struct {
	target, proto string
	res           *slowResult
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "==> "+format+"\n", args...)
}

func (b *bench) run(ctx context.Context) error {
	cfg := b.cfg
	checkNoFile(cfg.slowStreams, b)
	b.logf("%s", b.pin.note)
	var err error
	b.up, err = b.ps.startFake(ctx, cfg.fakeBin, "fake-upstream", b.work, "", cfg.events, cfg.delay, false)
	if err != nil {
		return err
	}
	b.logf("fake upstream at %s (%d deltas, %d events, delay %s)", b.up.URL, cfg.events, cfg.events+8, cfg.delay)

	fast := 0
	for _, t := range fastTargets {
		if has(cfg.targets, t) {
			fast++
		}
	}
	if fast > 0 {
		for _, proto := range cfg.protos {
			for _, t := range fastTargets {
				if !has(cfg.targets, t) || t == "w" && proto == "h2" {
					continue // the client's WebSocket upgrade is HTTP/1.1's
				}
				ts := []string{t}
				if cfg.altCaddy != "" && t >= "c" {
					ts = append(ts, t+"'")
				}
				for _, t := range ts {
					inst, err := b.startInstance(ctx, t, proto)
					if err != nil {
						return err
					}
					b.insts = append(b.insts, inst)
				}
			}
		}
		if cfg.wrkConns != nil {
			if err := b.runWrk(ctx); err != nil {
				return err
			}
			for _, inst := range b.insts {
				b.ps.remove(inst.server)
			}
			return b.reportWrk()
		}
		if err := b.measure(ctx); err != nil {
			return err
		}
		// Peak RSS of the measured windows, before profiling adds its own.
		for _, inst := range b.insts {
			_, inst.hwmKB, _ = memKB(inst.server.pid())
		}
		if cfg.profile > 0 {
			b.profileAll(ctx)
		}
		for _, inst := range b.insts {
			b.ps.remove(inst.server)
		}
	}
	if has(cfg.targets, "f") && ctx.Err() == nil {
		if err := b.runSlowAll(ctx); err != nil {
			return err
		}
	}
	return b.report()
}

// checkNoFile warns when the open-file limit is too low for f.
func checkNoFile(streams int, b *bench) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return
	}
	if need := uint64(2*streams + 1024); rl.Max < need {
		b.notes = append(b.notes, fmt.Sprintf("open-file limit %d is below the %d that %d streams need; raise ulimit -n", rl.Max, need, streams))
		b.logf("warning: %s", b.notes[len(b.notes)-1])
	}
}

// startInstance starts the server for one target and protocol and checks
// that it answers.
func (b *bench) startInstance(ctx context.Context, target, proto string) (*instance, error) {
	inst := &instance{target: target, proto: proto}
	major := 1
	if proto == "h2" {
		major = 2
	}
	bin := b.cfg.caddyBin
	if isAlt(target) {
		bin = b.cfg.altCaddy
	}
	switch letter(target) {
	case "a":
		// A fake of its own, on the server CPU, measured like Caddy.
		f, err := b.ps.startFake(ctx, b.cfg.fakeBin, "fake-a-"+proto, b.work, b.pin.serverCPUs, b.cfg.events, b.cfg.delay, proto == "h2")
		if err != nil {
			return nil, err
		}
		inst.server = f.proc
		inst.client = newClient(proto, nil, b.cfg.concurrency)
		inst.spec = upstreamSpec(f.URL, f, major, b.cfg.events)
	case "b":
		ci, err := b.startCaddy(ctx, "caddy-"+fileName(target, proto), bin, proto, b.up, false)
		if err != nil {
			return nil, err
		}
		inst.server, inst.admin, inst.client = ci.proc, ci.admin, ci.client
		inst.spec = upstreamSpec(ci.base+"/backend-api/codex", b.up, major, b.cfg.events)
	default:
		ci, err := b.startCaddy(ctx, "caddy-"+fileName(target, proto), bin, proto, b.up, true)
		if err != nil {
			return nil, err
		}
		inst.server, inst.admin, inst.client = ci.proc, ci.admin, ci.client
		inst.spec = proxySpec(letter(target), ci.base, ci.key, major, b.cfg.events)
	}
	// One request proves the path end to end before anything is timed.
	w := newWorker(&inst.spec)
	defer w.close()
	if _, _, n, err := w.do(ctx, inst.client, &inst.spec, requestTimeout, nil); err != nil {
		return nil, fmt.Errorf("%s: first request failed: %w\n%s", inst.name(), err, inst.server.logTail(3000))
	} else if target == "a" || target == "b" {
		b.streamSize = n
	}
	b.logf("%s ready: %s (pid %d)", inst.name(), describe(target), inst.server.pid())
	return inst, nil
}

// upstreamSpec is a Codex backend request straight to a fake (a) or
// through reverse_proxy (b).
func upstreamSpec(base string, f *fake, major, events int) spec {
	h := http.Header{}
	h.Set("Authorization", "Bearer "+f.AccessToken)
	h.Set("ChatGPT-Account-ID", f.AccountID)
	h.Set("Content-Type", "application/json")
	h.Set("Accept", "text/event-stream")
	return spec{url: base + "/responses", header: h, body: upstreamBody, kind: checkResponses, minEvents: events, protoMajor: major}
}

// proxySpec is a client request to codex_proxy.
func proxySpec(target, base, key string, major, events int) spec {
	h := http.Header{}
	h.Set("Authorization", "Bearer "+key)
	h.Set("Content-Type", "application/json")
	s := spec{header: h, minEvents: events, protoMajor: major}
	switch target {
	case "c":
		s.url, s.body, s.kind = base+"/v1/responses", responsesBody, checkResponses
		h.Set("Accept", "text/event-stream")
	case "d":
		s.url, s.body, s.kind = base+"/v1/chat/completions", chatStream, checkChat
		h.Set("Accept", "text/event-stream")
	case "g":
		s.url, s.body, s.kind = base+"/v1/messages", messagesBody, checkMessages
		h.Set("Accept", "text/event-stream")
		h.Set("anthropic-version", "2023-06-01")
	case "w":
		s.url, s.body, s.kind = "ws"+strings.TrimPrefix(base, "http")+"/v1/responses", socketFrame, checkSocket
	default:
		s.url, s.body, s.kind = base+"/v1/chat/completions", chatJSON, checkChatJSON
	}
	return s
}

// caddyInst is a running Caddy.
type caddyInst struct {
	proc   *proc
	admin  string
	base   string
	key    string
	client *http.Client
}

// startCaddy writes a Caddyfile with one site (plain HTTP for h1, HTTPS
// with tls internal for h2) that either reverse-proxies to up or serves
// codex_proxy with up as its upstream; for codex_proxy it provisions the
// user with the real CLI first. Caddy runs pinned to the server CPUs.
func (b *bench) startCaddy(ctx context.Context, name, bin, proto string, up *fake, codexProxy bool) (*caddyInst, error) {
	dir := filepath.Join(b.work, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var ports [4]int
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	adminAddr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	vaultPath := filepath.Join(dir, "vault.db")
	handler := fmt.Sprintf("reverse_proxy %s {\n\t\tflush_interval -1\n\t}", up.hostPort())
	if codexProxy {
		handler = fmt.Sprintf(`codex_proxy {
		vault %s
		encryption_key {env.TOKEN_ENCRYPTION_KEY}
		api_key_pepper {env.API_KEY_PEPPER}
		upstream %s
		oauth_issuer %s
	}`, vaultPath, up.URL, up.IssuerURL)
	}
	site := fmt.Sprintf("http://127.0.0.1:%d {\n\tbind 127.0.0.1\n\t%s\n}\n", ports[3], handler)
	base := fmt.Sprintf("http://127.0.0.1:%d", ports[3])
	if proto == "h2" {
		site = fmt.Sprintf("https://localhost:%d {\n\tbind 127.0.0.1\n\ttls internal\n\t%s\n}\n", ports[3], handler)
		base = fmt.Sprintf("https://localhost:%d", ports[3])
	}
	caddyfile := filepath.Join(dir, "Caddyfile")
	cfgText := fmt.Sprintf(`{
	admin %s
	http_port %d
	https_port %d
	storage file_system %s
	skip_install_trust
	persist_config off
	auto_https disable_redirects
	servers {
		protocols h1 h2
	}
}

%s`, adminAddr, ports[1], ports[2], filepath.Join(dir, "data"), site)
	if err := os.WriteFile(caddyfile, []byte(cfgText), 0o600); err != nil {
		return nil, err
	}
	env := []string{
		"TOKEN_ENCRYPTION_KEY=" + benchEncKey,
		"API_KEY_PEPPER=" + benchPepper,
		"XDG_DATA_HOME=" + filepath.Join(dir, "xdg-data"),
		"XDG_CONFIG_HOME=" + filepath.Join(dir, "xdg-config"),
	}
	ci := &caddyInst{admin: adminAddr, base: base}
	if codexProxy {
		key, err := b.provision(ctx, bin, dir, caddyfile, env, up)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		ci.key = key
	}
	p, err := b.ps.start(name, b.pin.serverCPUs, filepath.Join(dir, "caddy.log"), env,
		bin, "run", "--config", caddyfile, "--adapter", "caddyfile")
	if err != nil {
		return nil, err
	}
	ci.proc = p
	if err := ci.waitReady(ctx, proto, filepath.Join(dir, "data", "pki", "authorities", "local", "root.crt"), codexProxy, b.cfg.concurrency); err != nil {
		return nil, fmt.Errorf("%s: %w\n%s", name, err, p.logTail(3000))
	}
	return ci, nil
}

// provision runs `caddy codex-proxy provision` with an auth.json made of
// the fake's tokens and returns the API key it prints.
func (b *bench) provision(ctx context.Context, bin, dir, caddyfile string, env []string, up *fake) (string, error) {
	auth := filepath.Join(dir, "auth.json")
	if err := os.WriteFile(auth, up.authJSON(), 0o600); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "codex-proxy", "provision", "--config", caddyfile, "--adapter", "caddyfile",
		"--email", benchEmail, "--auth-file", auth, "--label", "codexbench")
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("provision: %w\n%s", err, stderr.String())
	}
	key := strings.TrimSpace(string(out))
	if !strings.HasPrefix(key, "cpk_") {
		return "", fmt.Errorf("provision printed %q, not a cpk_ key\n%s", key, stderr.String())
	}
	return key, nil
}

// waitReady waits until the site answers (for h2, once the local root
// exists and the client trusts it).
func (ci *caddyInst) waitReady(ctx context.Context, proto, rootCA string, codexProxy bool, conns int) error {
	deadline := time.Now().Add(30 * time.Second)
	var last error
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if ci.proc.exited() {
			return fmt.Errorf("caddy exited")
		}
		if ci.client == nil {
			var roots *x509.CertPool
			if proto == "h2" {
				pem, err := os.ReadFile(rootCA)
				if err != nil {
					time.Sleep(100 * time.Millisecond)
					continue
				}
				roots = x509.NewCertPool()
				if !roots.AppendCertsFromPEM(pem) {
					return fmt.Errorf("bad root certificate %s", rootCA)
				}
			}
			ci.client = newClient(proto, roots, conns)
		}
		last = ci.probe(ctx, codexProxy)
		if last == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("not ready after 30s: %w", last)
}

func (ci *caddyInst) probe(ctx context.Context, codexProxy bool) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	url := ci.base + "/"
	if codexProxy {
		url = ci.base + "/v1/models"
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if codexProxy {
		req.Header.Set("Authorization", "Bearer "+ci.key)
	}
	resp, err := ci.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if codexProxy && resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /v1/models: HTTP %d: %s", resp.StatusCode, body)
	}
	return nil
}

// clientTicks is the CPU of the load generator plus the upstream fake.
func (b *bench) clientTicks() int64 {
	self, _ := cpuTicks(os.Getpid())
	var up int64
	if b.up != nil {
		up, _ = cpuTicks(b.up.pid())
	}
	return self + up
}

// genCPUs are the CPUs the load generator runs on: its pinned set, or
// every CPU this process may use when the bench is not pinned.
func (b *bench) genCPUs() []int {
	if b.pin.clientCPUs != "" {
		return parseCPUList(b.pin.clientCPUs)
	}
	return allowedCPUs()
}

// window runs one measured window against inst and adds it to dst.
func (b *bench) window(ctx context.Context, inst *instance, dst *result, conc int, dur time.Duration) {
	pid := inst.server.pid()
	s0, _ := cpuTicks(pid)
	c0 := b.clientTicks()
	m0 := machineBusyTicks()
	g0, t0 := cpuSetTicks(b.genCPUs())
	r := runClosed(ctx, inst.client, &inst.spec, conc, dur, true)
	s1, _ := cpuTicks(pid)
	c1 := b.clientTicks()
	m1 := machineBusyTicks()
	g1, t1 := cpuSetTicks(b.genCPUs())
	r.genBusy, r.genTotal = g1-g0, t1-t0
	r.serverCPU = time.Duration(s1-s0) * time.Second / clockTicks
	r.clientCPU = time.Duration(c1-c0) * time.Second / clockTicks
	if other := (m1 - m0) - (s1 - s0) - (c1 - c0); other > 0 {
		r.otherCPU = time.Duration(other) * time.Second / clockTicks
	}
	dst.merge(r)
	if r.errors > 0 {
		b.logf("%s: %d errors, e.g. %s", inst.name(), r.errors, r.errSamples[0])
	}
}

// measure warms every instance up, then runs the rounds: in each round
// every target gets a throughput window, then a latency window, in an
// order rotated by one target per round so no target always goes first.
func (b *bench) measure(ctx context.Context) error {
	cfg := b.cfg
	if cfg.warmup > 0 {
		for _, inst := range b.insts {
			r := runClosed(ctx, inst.client, &inst.spec, cfg.concurrency, cfg.warmup, false)
			if r.errors > 0 {
				inst.thr.errors += r.errors
				inst.thr.errSamples = append(inst.thr.errSamples, r.errSamples...)
				b.logf("%s warm-up: %d errors, e.g. %s", inst.name(), r.errors, r.errSamples[0])
			}
		}
	}
	n := len(b.insts)
	for round := 0; round < cfg.rounds && ctx.Err() == nil; round++ {
		order := make([]*instance, 0, n)
		for i := 0; i < n; i++ {
			order = append(order, b.insts[(i+round)%n])
		}
		b.logf("round %d/%d: throughput (%d concurrent, %s per target)", round+1, cfg.rounds, cfg.concurrency, cfg.duration)
		for _, inst := range order {
			b.window(ctx, inst, &inst.thr, cfg.concurrency, cfg.duration)
		}
		if cfg.latency > 0 {
			b.logf("round %d/%d: latency (1 at a time, %s per target)", round+1, cfg.rounds, cfg.latency)
			for _, inst := range order {
				b.window(ctx, inst, &inst.lat, 1, cfg.latency)
			}
		}
	}
	return ctx.Err()
}

// runSlowAll runs f: many slow streams through each chosen proxy, each on
// a fresh Caddy so its RSS before the streams is a clean baseline.
func (b *bench) runSlowAll(ctx context.Context) error {
	cfg := b.cfg
	// The fake's stream has deltas+8 events; pace them one per interval
	// over the duration (short smoke streams pace faster).
	frames := int(cfg.slowDuration/cfg.slowEvery) + 1
	b.slowEvents = max(1, frames-8)
	b.slowDelay = cfg.slowDuration / time.Duration(b.slowEvents+7)
	var err error
	b.slowUp, err = b.ps.startFake(ctx, cfg.fakeBin, "fake-slow", b.work, "", b.slowEvents, b.slowDelay, false)
	if err != nil {
		return err
	}
	slowTargets := cfg.slowTargets
	if cfg.altCaddy != "" && has(slowTargets, "d") {
		slowTargets = append(slowTargets[:len(slowTargets):len(slowTargets)], "d'")
	}
	for _, proto := range cfg.slowProtos {
		for _, t := range slowTargets {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			name := "caddy-f" + fileName(t, proto)
			bin := cfg.caddyBin
			if isAlt(t) {
				bin = cfg.altCaddy
			}
			ci, err := b.startCaddy(ctx, name, bin, proto, b.slowUp, letter(t) == "d")
			if err != nil {
				return err
			}
			major := 1
			if proto == "h2" {
				major = 2
			}
			var s spec
			if t == "b" {
				s = upstreamSpec(ci.base+"/backend-api/codex", b.slowUp, major, b.slowEvents)
			} else {
				s = proxySpec("d", ci.base, ci.key, major, b.slowEvents)
			}
			pid := ci.proc.pid()
			time.Sleep(time.Second) // let the start-up garbage settle
			rssBefore, _, _ := memKB(pid)
			statsBefore, _ := goMemStats(ctx, ci.admin)
			t0, _ := cpuTicks(pid)
			// Halfway through, a heap profile and the Go memory statistics
			// say what the open streams hold.
			mid := make(chan struct{})
			var statsMid map[string]int64
			go func() {
				defer close(mid)
				select {
				case <-time.After(cfg.slowRamp + cfg.slowDuration/2):
				case <-ctx.Done():
					return
				}
				statsMid, _ = goMemStats(ctx, ci.admin)
				_ = fetchProfile(ctx, ci.admin, "/debug/pprof/heap", filepath.Join(cfg.outDir, "heap-f"+fileName(t, proto)+".pprof"), time.Minute)
			}()
			b.logf("f via %s over %s: %d streams × %s (%d events, one every %s), opened over %s",
				t, proto, cfg.slowStreams, cfg.slowDuration, b.slowEvents+8, b.slowDelay, cfg.slowRamp)
			res := runSlow(ctx, ci.client, &s, cfg.slowStreams, cfg.slowRamp, cfg.slowDuration+cfg.slowRamp+time.Minute, pid)
			<-mid
			res.statsBefore, res.statsMid = statsBefore, statsMid
			t1, _ := cpuTicks(pid)
			_, hwm, _ := memKB(pid)
			res.rssBeforeKB, res.hwmKB = rssBefore, hwm
			res.serverCPU = time.Duration(t1-t0) * time.Second / clockTicks
			if res.errors > 0 {
				b.logf("f via %s over %s: %d errors, e.g. %s", t, proto, res.errors, res.errSamples[0])
			}
			b.slow = append(b.slow, &slowRun{target: t, proto: proto, res: res})
			b.ps.remove(ci.proc)
		}
	}
	b.ps.remove(b.slowUp.proc)
	return nil
}

// totalErrors counts failed requests over every target.
func (b *bench) totalErrors() int {
	n := 0
	for _, inst := range b.insts {
		n += inst.thr.errors + inst.lat.errors
	}
	for _, s := range b.slow {
		n += s.res.errors
	}
	return n
}
