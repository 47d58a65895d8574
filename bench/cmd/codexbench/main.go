// Command codexbench measures the codex_proxy Caddy module against stock
// Caddy reverse_proxy and the fake Codex backend, in one run, on loopback.
//
// It starts fakecodex in its fast pre-rendered mode, one Caddy process per
// target and protocol (so peak RSS is per target), provisions the proxy's
// user with the real `caddy codex-proxy provision` CLI, and then runs
// alternating rounds of a closed-loop load against:
//
//	a  the fake upstream directly
//	b  Caddy reverse_proxy (flush_interval -1) to the fake
//	c  codex_proxy /v1/responses, streaming
//	d  codex_proxy /v1/chat/completions, streaming
//	e  codex_proxy /v1/chat/completions, non-stream
//	f  many concurrent slow streams through b and d
//	g  codex_proxy /v1/messages (Anthropic), streaming, beside d
//	w  codex_proxy /v1/responses turns over a WebSocket (HTTP/1.1), beside c
//
// over HTTP/1.1 (h1) and HTTPS with HTTP/2 (h2, tls internal). It reads
// every body to its end, checks that the stream ended properly, and writes
// a Markdown report (bench-results/results.md) plus CPU and allocation
// profiles of c and d. ./xcaddy.sh bench builds everything and runs it;
// ./xcaddy.sh bench --smoke is the short CI variant.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// config is the command line.
type config struct {
	caddyBin, fakeBin, outDir string
	altCaddy                  string
	smoke                     bool
	events                    int
	delay                     time.Duration
	concurrency               int
	duration, warmup, latency time.Duration
	rounds                    int
	targets, protos           []string
	slowTargets, slowProtos   []string
	slowStreams               int
	slowDuration, slowEvery   time.Duration
	slowRamp                  time.Duration
	profile                   time.Duration
	profileProtos             []string
	profileTargets            []string
	pin, serverCPUs           string
	clientCPUs                string
	keep                      bool
	wrkConns                  []int  // -wrk: the wrk cross-check at these connection counts
	wrkScriptDir              string // where post.lua is
}

func main() {
	code, err := run()
	if err != nil {
		fmt.Fprintln(os.Stderr, "codexbench:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func parseFlags(args []string) (*config, error) {
	fs := flag.NewFlagSet("codexbench", flag.ContinueOnError)
	c := &config{}
	fs.StringVar(&c.caddyBin, "caddy", "./caddy", "Caddy binary built with the codex_proxy module")
	fs.StringVar(&c.altCaddy, "alt-caddy", "", "a second Caddy build (say, with a candidate fix): adds targets c', d', e' (and f via d') served by it, measured in the same rounds")
	fs.StringVar(&c.fakeBin, "fakecodex", "", "fakecodex binary (go build ./codex/codextest/cmd/fakecodex)")
	fs.StringVar(&c.outDir, "out", "bench-results", "directory for results.md, profiles and logs")
	fs.BoolVar(&c.smoke, "smoke", false, "CI smoke mode: every target for about a second, small counts; fails only on errors")
	fs.IntVar(&c.events, "events", 200, "text deltas in the fake's pre-rendered stream (the stream has 8 more events)")
	fs.DurationVar(&c.delay, "delay", 0, "gap between the fake's events in targets a-e")
	fs.IntVar(&c.concurrency, "concurrency", 16, "concurrent requests in the throughput windows")
	fs.DurationVar(&c.duration, "duration", 4*time.Second, "length of one throughput window (per target, per round)")
	fs.DurationVar(&c.latency, "latency-duration", 2*time.Second, "length of one latency window at concurrency 1 (per target, per round)")
	fs.DurationVar(&c.warmup, "warmup", time.Second, "warm-up per target before the first round (not counted)")
	fs.IntVar(&c.rounds, "rounds", 3, "rounds; each round visits every target, in a rotated order")
	targets := fs.String("targets", "a,b,c,d,e,g,w,f", "targets to run (a-g, w)")
	protos := fs.String("protos", "h1,h2", "protocols for a-e: h1 (HTTP/1.1) and/or h2 (HTTPS, HTTP/2)")
	slowTargets := fs.String("slow-targets", "b,d", "proxies f goes through (b and/or d)")
	slowProtos := fs.String("slow-protos", "h1,h2", "protocols for f")
	fs.IntVar(&c.slowStreams, "slow-streams", 2000, "f: concurrent slow streams")
	fs.DurationVar(&c.slowDuration, "slow-duration", 60*time.Second, "f: how long each slow stream lasts")
	fs.DurationVar(&c.slowEvery, "slow-interval", time.Second, "f: gap between events of a slow stream (at most; short streams pace faster to fit the fake's minimum of 9 events)")
	fs.DurationVar(&c.slowRamp, "slow-ramp", 4*time.Second, "f: the streams are opened evenly over this time")
	fs.DurationVar(&c.profile, "profile", 10*time.Second, "length of the CPU and allocation profiles of the -profile-targets (0: none)")
	profileProtos := fs.String("profile-protos", "h1", "protocols to profile over")
	profileTargets := fs.String("profile-targets", "c,d", "targets to profile (b-e; b is a useful baseline)")
	fs.StringVar(&c.pin, "pin", "auto", "auto: pin with taskset when there are 2+ CPUs; off: no pinning")
	fs.StringVar(&c.serverCPUs, "server-cpus", "", "CPU list for the servers under test (default: the last allowed CPU)")
	fs.StringVar(&c.clientCPUs, "client-cpus", "", "CPU list for the load generator and upstream fake (default: the other CPUs)")
	fs.BoolVar(&c.keep, "keep", false, "keep the working directory (Caddyfiles, vaults, logs)")
	wrkConns := fs.String("wrk", "", "cross-check with wrk instead of the Go load generator, at these connection counts (\"16,64\"); HTTP/1.1, targets b,c,d unless -targets says otherwise; writes wrk.md (bench/wrk.sh)")
	fs.StringVar(&c.wrkScriptDir, "wrk-script-dir", "bench/wrk", "directory holding the wrk script post.lua")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if c.smoke {
		smoke := map[string]func(){
			"concurrency":      func() { c.concurrency = 4 },
			"duration":         func() { c.duration = time.Second },
			"latency-duration": func() { c.latency = 500 * time.Millisecond },
			"warmup":           func() { c.warmup = 300 * time.Millisecond },
			"rounds":           func() { c.rounds = 1 },
			"slow-streams":     func() { c.slowStreams = 50 },
			"slow-duration":    func() { c.slowDuration = 3 * time.Second },
			"slow-ramp":        func() { c.slowRamp = 500 * time.Millisecond },
			"profile":          func() { c.profile = 0 },
		}
		for name, apply := range smoke {
			if !set[name] {
				apply()
			}
		}
	}
	var err error
	if *wrkConns != "" {
		for _, f := range strings.Split(*wrkConns, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 || n > 10_000 {
				return nil, fmt.Errorf("-wrk: %q is not a connection count", f)
			}
			c.wrkConns = append(c.wrkConns, n)
		}
		if !set["targets"] {
			*targets = "b,c,d"
		}
		*protos = "h1" // wrk speaks HTTP/1.1 only
		c.profile, c.latency = 0, 0
	}
	if c.targets, err = list(*targets, "a", "b", "c", "d", "e", "f", "g", "w"); err != nil {
		return nil, fmt.Errorf("-targets: %w", err)
	}
	if c.wrkConns != nil && has(c.targets, "w") {
		return nil, errSocketWrk
	}
	if c.protos, err = list(*protos, "h1", "h2"); err != nil {
		return nil, fmt.Errorf("-protos: %w", err)
	}
	if c.slowTargets, err = list(*slowTargets, "b", "d"); err != nil {
		return nil, fmt.Errorf("-slow-targets: %w", err)
	}
	if c.slowProtos, err = list(*slowProtos, "h1", "h2"); err != nil {
		return nil, fmt.Errorf("-slow-protos: %w", err)
	}
	if c.profileProtos, err = list(*profileProtos, "h1", "h2"); err != nil {
		return nil, fmt.Errorf("-profile-protos: %w", err)
	}
	if c.profileTargets, err = list(*profileTargets, "b", "c", "d", "e", "g", "w"); err != nil {
		return nil, fmt.Errorf("-profile-targets: %w", err)
	}
	switch {
	case c.fakeBin == "":
		return nil, errors.New("-fakecodex is required")
	case c.events < 1 || c.events > 1_000_000:
		return nil, errors.New("-events must be 1..1000000")
	case c.concurrency < 1 || c.concurrency > 10_000:
		return nil, errors.New("-concurrency must be 1..10000")
	case c.rounds < 1 || c.rounds > 100:
		return nil, errors.New("-rounds must be 1..100")
	case c.duration <= 0 || c.duration > time.Hour || c.latency < 0 || c.latency > time.Hour || c.warmup < 0 || c.warmup > time.Hour:
		return nil, errors.New("window lengths must be positive and at most an hour")
	case c.slowStreams < 1 || c.slowStreams > 100_000:
		return nil, errors.New("-slow-streams must be 1..100000")
	case c.slowDuration < 100*time.Millisecond || c.slowDuration > 2*time.Hour || c.slowEvery <= 0 || c.slowRamp < 0 || c.slowRamp > time.Hour:
		return nil, errors.New("-slow-duration must be 100ms..2h, -slow-interval positive, -slow-ramp at most 1h")
	case c.profile < 0 || c.profile > 10*time.Minute:
		return nil, errors.New("-profile must be 0..10m")
	}
	return c, nil
}

// list splits a comma-separated flag and checks every item.
func list(s string, allowed ...string) ([]string, error) {
	var out []string
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		ok := false
		for _, a := range allowed {
			ok = ok || a == item
		}
		if !ok {
			return nil, fmt.Errorf("unknown %q (known: %s)", item, strings.Join(allowed, ","))
		}
		out = append(out, item)
	}
	return out, nil
}

func has(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func run() (int, error) {
	cfg, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return 0, nil
	}
	if err != nil {
		return 2, err
	}
	pin, err := setupPinning(cfg.pin, cfg.serverCPUs, cfg.clientCPUs)
	if err != nil {
		return 1, err
	}
	for _, p := range []*string{&cfg.caddyBin, &cfg.fakeBin, &cfg.outDir, &cfg.altCaddy} {
		if *p == "" {
			continue
		}
		if *p, err = filepath.Abs(*p); err != nil {
			return 1, err
		}
	}
	if err := os.MkdirAll(cfg.outDir, 0o755); err != nil {
		return 1, err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	work, err := os.MkdirTemp("", "codexbench-")
	if err != nil {
		return 1, err
	}
	b := &bench{cfg: cfg, pin: pin, work: work, ps: &procs{}, started: time.Now()}
	defer func() {
		b.ps.stopAll()
		if cfg.keep {
			fmt.Fprintf(os.Stderr, "kept the working directory %s\n", work)
		} else {
			os.RemoveAll(work)
		}
	}()
	if err := b.run(ctx); err != nil {
		return 1, err
	}
	if ctx.Err() != nil {
		return 130, errors.New("interrupted")
	}
	if n := b.totalErrors() + int(b.wrkErrors()); n > 0 {
		return 1, fmt.Errorf("%d failed requests (see %s)", n, filepath.Join(cfg.outDir, "results.md"))
	}
	return 0, nil
}
