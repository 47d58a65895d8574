package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// wrkRun is one wrk window against one instance.
type wrkRun struct {
	conns      int
	rps        float64
	requests   int64
	errors     int64 // socket errors, non-200 and bodies without the end marker
	serverCPU  time.Duration
	genBusy    int64
	genTotal   int64
	errSamples []string
}

// wrkMarker is what the end of a good body holds, for the Lua check.
func wrkMarker(k checkKind) string {
	switch k {
	case checkResponses:
		return "response.completed"
	case checkChat:
		return "data: [DONE]"
	case checkMessages:
		return "message_stop"
	default:
		return `"finish_reason"`
	}
}

var (
	wrkReqs    = regexp.MustCompile(`(?m)^\s*(\d+) requests in`)
	wrkRPS     = regexp.MustCompile(`(?m)^Requests/sec:\s*([0-9.]+)`)
	wrkSockErr = regexp.MustCompile(`(?m)^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	wrkNon200  = regexp.MustCompile(`(?m)^non-200: (\d+)`)
	wrkBadBody = regexp.MustCompile(`(?m)^bad-body: (\d+)`)
)

// runWrk is the -wrk cross-check: the same Caddy processes (pinned as in
// the bench), loaded by wrk instead of the Go load generator, at each
// connection count, targets alternating round by round. wrk runs as a
// child of this process, so it inherits the load generator's CPUs.
func (b *bench) runWrk(ctx context.Context) error {
	cfg := b.cfg
	wrkBin, err := exec.LookPath("wrk")
	if err != nil {
		return errors.New("wrk not found: install it (bench/wrk.sh does: apt-get install -y wrk)")
	}
	script, err := filepath.Abs(filepath.Join(cfg.wrkScriptDir, "post.lua"))
	if err != nil {
		return err
	}
	if _, err := os.Stat(script); err != nil {
		return fmt.Errorf("the wrk script: %w", err)
	}
	bodies := map[string]string{}
	for _, inst := range b.insts {
		f := filepath.Join(b.work, "wrk-body-"+fileName(inst.target, inst.proto)+".json")
		if err := os.WriteFile(f, inst.spec.body, 0o600); err != nil {
			return err
		}
		bodies[inst.name()] = f
	}
	for _, inst := range b.insts {
		if cfg.warmup > 0 && ctx.Err() == nil {
			if r := runClosed(ctx, inst.client, &inst.spec, cfg.concurrency, cfg.warmup, false); r.errors > 0 {
				return fmt.Errorf("%s warm-up: %d errors, e.g. %s", inst.name(), r.errors, r.errSamples[0])
			}
		}
	}
	b.wrk = map[string][]wrkRun{}
	n := len(b.insts)
	for round := 0; round < cfg.rounds && ctx.Err() == nil; round++ {
		for _, conns := range cfg.wrkConns {
			for k := 0; k < n && ctx.Err() == nil; k++ {
				inst := b.insts[(k+round)%n]
				r, err := b.wrkOnce(ctx, wrkBin, script, bodies[inst.name()], inst, conns)
				if err != nil {
					return fmt.Errorf("%s: %w", inst.name(), err)
				}
				b.logf("wrk %s -c%d: %.0f req/s, %d errors", inst.name(), conns, r.rps, r.errors)
				b.wrk[inst.name()] = append(b.wrk[inst.name()], r)
			}
		}
	}
	return nil
}

// wrkOnce runs one wrk window and measures the server's CPU over it.
func (b *bench) wrkOnce(ctx context.Context, wrkBin, script, bodyFile string, inst *instance, conns int) (wrkRun, error) {
	args := []string{"-t1", "-c" + strconv.Itoa(conns), "-d" + b.cfg.duration.String(), "--latency", "-s", script, inst.spec.url,
		"--", bodyFile, wrkMarker(inst.spec.kind)}
	names := make([]string, 0, len(inst.spec.header))
	for name := range inst.spec.header {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		args = append(args, name+": "+inst.spec.header.Get(name))
	}
	pid := inst.server.pid()
	s0, _ := cpuTicks(pid)
	g0, t0 := cpuSetTicks(b.genCPUs())
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, wrkBin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	s1, _ := cpuTicks(pid)
	g1, t1 := cpuSetTicks(b.genCPUs())
	if err != nil {
		return wrkRun{}, fmt.Errorf("wrk: %w: %s", err, out.String())
	}
	text := out.String()
	r := wrkRun{conns: conns, serverCPU: time.Duration(s1-s0) * time.Second / clockTicks, genBusy: g1 - g0, genTotal: t1 - t0}
	m := wrkRPS.FindStringSubmatch(text)
	if m == nil {
		return r, fmt.Errorf("no Requests/sec in the wrk output: %s", text)
	}
	r.rps, _ = strconv.ParseFloat(m[1], 64)
	if m := wrkReqs.FindStringSubmatch(text); m != nil {
		r.requests, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := wrkSockErr.FindStringSubmatch(text); m != nil {
		for _, v := range m[1:] {
			n, _ := strconv.ParseInt(v, 10, 64)
			r.errors += n
		}
		r.errSamples = append(r.errSamples, strings.TrimSpace(m[0]))
	}
	for _, re := range []*regexp.Regexp{wrkNon200, wrkBadBody} {
		if m := re.FindStringSubmatch(text); m != nil {
			n, _ := strconv.ParseInt(m[1], 10, 64)
			if n > 0 {
				r.errors += n
				r.errSamples = append(r.errSamples, strings.TrimSpace(m[0]))
			}
		} else {
			return r, fmt.Errorf("the Lua script did not report (%s): %s", re, text)
		}
	}
	return r, nil
}

// wrkSummary is the median of a target's runs at one connection count.
type wrkSummary struct {
	rps, cpuPer1k, busy float64
	errors              int64
	runs                int
}

func (b *bench) wrkSummary(name string, conns int) (wrkSummary, bool) {
	var rps, cpu, busy []float64
	var s wrkSummary
	for _, r := range b.wrk[name] {
		if r.conns != conns {
			continue
		}
		rps = append(rps, r.rps)
		if r.requests > 0 {
			cpu = append(cpu, r.serverCPU.Seconds()*1000/float64(r.requests))
		}
		if r.genTotal > 0 {
			busy = append(busy, float64(r.genBusy)/float64(r.genTotal))
		}
		s.errors += r.errors
		s.runs++
	}
	if s.runs == 0 {
		return s, false
	}
	s.rps, s.cpuPer1k, s.busy = median(rps), median(cpu), median(busy)
	return s, true
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	sort.Float64s(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// reportWrk writes wrk.md and prints it.
func (b *bench) reportWrk() error {
	cfg := b.cfg
	var w bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&w, format, args...) }
	cpus, model, kernel := machine()
	p("# codex_proxy wrk cross-check\n\n")
	p("- date: %s (took %s)\n", b.started.Format("2006-01-02 15:04:05 MST"), time.Since(b.started).Round(time.Second))
	p("- command: `%s`\n", command())
	p("- machine: %d CPUs, %s, Linux %s\n", cpus, model, kernel)
	p("- caddy: %s (`%s`)\n", b.caddyVersion(), cfg.caddyBin)
	p("- pinning: %s\n", b.pin.note)
	p("- load: `wrk -t1 -c<N> -d%s -s bench/wrk/post.lua` (POST, whole bodies read, non-200 and bodies without their end marker counted as errors), %d round(s), targets alternating; figures are medians over the rounds\n",
		cfg.duration, cfg.rounds)
	p("- upstream: fakecodex fast mode, %d text deltas = %d events, %d bytes per stream\n\n", cfg.events, cfg.events+8, b.streamSize)
	var bad []string
	for _, conns := range cfg.wrkConns {
		p("## wrk -t1 -c%d\n\n", conns)
		p("| target | req/s | × b | CPU s / 1k req | × b | load-gen CPUs busy | errors |\n|---|--:|--:|--:|--:|--:|--:|\n")
		base, haveBase := b.wrkSummary("b-h1", conns)
		for _, inst := range b.insts {
			s, ok := b.wrkSummary(inst.name(), conns)
			if !ok {
				continue
			}
			rb, cb := "–", "–"
			if haveBase && base.rps > 0 {
				rb = ratio(s.rps, base.rps)
				cb = ratio(s.cpuPer1k, base.cpuPer1k)
				if s.busy > maxGenBusy || base.busy > maxGenBusy {
					rb += " (invalid)"
				}
			}
			busy := fmt.Sprintf("%.0f%%", 100*s.busy)
			if s.busy > maxGenBusy {
				busy += " (invalid)"
				bad = append(bad, fmt.Sprintf("%s at -c%d (%.0f%%)", inst.target, conns, 100*s.busy))
			}
			p("| %s. %s | %.0f | %s | %.3f | %s | %s | %d |\n", inst.target, describe(inst.target), s.rps, rb, s.cpuPer1k, cb, busy, s.errors)
		}
		p("\n")
	}
	if len(bad) > 0 {
		p("**INVALID: the load generator's CPUs were more than %.0f%% busy for %s; those req/s ratios are not the proxies'.**\n\n", 100*maxGenBusy, strings.Join(bad, ", "))
	}
	var samples []string
	for _, inst := range b.insts {
		for _, r := range b.wrk[inst.name()] {
			for _, e := range r.errSamples {
				if !strings.HasPrefix(e, "Socket errors: connect 0, read 0, write 0, timeout 0") {
					samples = append(samples, fmt.Sprintf("- %s -c%d: %s", inst.name(), r.conns, e))
				}
			}
		}
	}
	if len(samples) > 0 {
		p("## Errors\n\n%s\n\n", strings.Join(samples, "\n"))
	}
	path := filepath.Join(cfg.outDir, "wrk.md")
	if err := os.WriteFile(path, w.Bytes(), 0o644); err != nil {
		return err
	}
	os.Stdout.Write(w.Bytes())
	fmt.Fprintf(os.Stderr, "==> wrote %s\n", path)
	if len(bad) > 0 {
		fmt.Fprintf(os.Stderr, "==> INVALID RATIOS: the load generator's CPUs were above %.0f%% busy for %s\n", 100*maxGenBusy, strings.Join(bad, ", "))
	}
	return nil
}

// wrkErrors counts failed wrk requests over every run.
func (b *bench) wrkErrors() int64 {
	var n int64
	for _, runs := range b.wrk {
		for _, r := range runs {
			n += r.errors
		}
	}
	return n
}
