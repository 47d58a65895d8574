package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Targets the report checks (issue 6).
const (
	goalCRatio     = 0.90 // c ≥ 0.90 × b requests/s
	goalDERatio    = 0.80 // d, e ≥ 0.80 × b requests/s
	goalTTFBDelta  = 500 * time.Microsecond
	goalKiBPerConn = 64.0 // f through d: RSS, and Go heap in use, per open stream (issue 25)
)

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

func mib(kb int64) string { return fmt.Sprintf("%.1f", float64(kb)/1024) }

func ratio(x, base float64) string {
	if base <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", x/base)
}

func pct(cpu, wall time.Duration) string {
	if wall <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f%%", 100*cpu.Seconds()/wall.Seconds())
}

func (b *bench) find(target, proto string) *instance {
	for _, i := range b.insts {
		if i.target == target && i.proto == proto {
			return i
		}
	}
	return nil
}

func (b *bench) findSlow(target, proto string) *slowRun {
	for _, s := range b.slow {
		if s.target == target && s.proto == proto {
			return s
		}
	}
	return nil
}

func protoName(p string) string {
	if p == "h2" {
		return "HTTPS + HTTP/2 (tls internal)"
	}
	return "HTTP/1.1, plain"
}

// machine describes the host.
func machine() (cpus int, model, kernel string) {
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "processor") {
				cpus++
			}
			if k, v, ok := strings.Cut(line, ":"); ok && model == "" && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(b))
	}
	return cpus, model, kernel
}

func (b *bench) caddyVersion() string {
	out, err := exec.Command(b.cfg.caddyBin, "version").Output()
	if err != nil {
		return "unknown"
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line)
}

// command is how the run was started, as the wrapper script reports it.
func command() string {
	if c := os.Getenv("CODEXBENCH_COMMAND"); c != "" {
		return c
	}
	return strings.Join(os.Args, " ")
}

// report writes results.md (smoke.md in smoke mode) and prints it.
func (b *bench) report() error {
	cfg := b.cfg
	var w bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&w, format, args...) }
	cpus, model, kernel := machine()

	p("# codex_proxy benchmark\n\n")
	if cfg.smoke {
		p("**Smoke run** (CI): short windows and small counts; the figures are not meaningful, only the error counts are.\n\n")
	}
	p("- date: %s (took %s)\n", b.started.Format("2006-01-02 15:04:05 MST"), time.Since(b.started).Round(time.Second))
	p("- command: `%s`\n", command())
	p("- machine: %d CPUs, %s, Linux %s, %s/%s; %s\n", cpus, model, kernel, runtime.GOOS, runtime.GOARCH, runtime.Version())
	p("- caddy: %s (`%s`)\n", b.caddyVersion(), cfg.caddyBin)
	p("- pinning: %s", b.pin.note)
	if b.pin.serverCPUs != "" {
		p(" (Go sizes GOMAXPROCS from the affinity mask, so a server on one CPU runs with GOMAXPROCS=1)")
	}
	p("\n")
	p("- upstream: fakecodex fast mode, %d text deltas = %d events, %d bytes per stream, %s between events\n",
		cfg.events, cfg.events+8, b.streamSize, cfg.delay)
	if slices.ContainsFunc(fastTargets, func(t string) bool { return has(cfg.targets, t) }) {
		p("- load: closed loop of %d concurrent requests, %d round(s) × %s per target, plus %s per target one request at a time for latency; %s warm-up per target; targets alternate (rotated order each round); one Caddy process per target and protocol\n",
			cfg.concurrency, cfg.rounds, cfg.duration, cfg.latency, cfg.warmup)
	}
	p("- checks: every body is read to its end; SSE must end with `response.completed` (a, b, c), `data: [DONE]` (d) or `message_stop` (g) and carry no error event; e must be a `chat.completion` with `finish_reason: stop`; w's turns (one WebSocket per worker, kept open, turns back to back, HTTP/1.1 only) must end with a `response.completed` frame and carry no error frame; any transport error, non-200 or wrong protocol counts as a failure\n")
	if cfg.altCaddy != "" {
		p("- alternative build (targets marked with a prime): `%s`\n", cfg.altCaddy)
	}
	p("- CPU: utime+stime of the server's own process (/proc/<pid>/stat) over the measured windows, as a share of one CPU; \"client CPU\" is the load generator plus the upstream fake; \"other CPU\" is everything else on the machine (/proc/stat), which should be near 0%% for trustworthy req/s. Peak RSS: VmHWM of the server process after the windows (before profiling). TTFB: first body byte\n\n")

	for _, proto := range cfg.protos {
		if len(b.insts) == 0 {
			break
		}
		base := b.find("b", proto)
		p("## Throughput, %s (%d concurrent)\n\n", protoName(proto), cfg.concurrency)
		if bad := b.invalidTargets(proto); len(bad) > 0 {
			p("**INVALID: the load generator's CPUs were more than %.0f%% busy while measuring %s, so the client may have set the pace; req/s and the × b ratios of those rows (and every ratio, when b is among them) are not the proxies'. Rerun on a quieter machine or give the load generator more CPUs (`-client-cpus`).**\n\n",
				100*maxGenBusy, strings.Join(bad, ", "))
		}
		p("| target | req/s | × b | CPU s / 1k req | × b | server CPU | client CPU | other CPU | load-gen CPUs busy | peak RSS MiB | TTFB p50 ms | TTFB p99 ms | TTLB p50 ms | TTLB p99 ms | errors |\n")
		p("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, i := range b.insts {
			if i.proto != proto {
				continue
			}
			r := &i.thr
			rb, cb := "–", "–"
			if base != nil {
				rb = ratio(r.rps(), base.thr.rps())
				cb = ratio(r.cpuPer1k(), base.thr.cpuPer1k())
				if r.invalid() || base.thr.invalid() {
					rb += " (invalid)"
				}
			}
			busy := fmt.Sprintf("%.0f%%", 100*r.genBusyShare())
			if r.invalid() {
				busy += " (invalid)"
			}
			p("| %s. %s | %.0f | %s | %.3f | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d |\n",
				i.target, describe(i.target), r.rps(), rb, r.cpuPer1k(), cb, pct(r.serverCPU, r.wall), pct(r.clientCPU, r.wall), pct(r.otherCPU, r.wall), busy,
				mib(i.hwmKB), ms(percentile(r.ttfb, 50)), ms(percentile(r.ttfb, 99)), ms(percentile(r.ttlb, 50)), ms(percentile(r.ttlb, 99)), r.errors)
		}
		p("\nCPU s / 1k req and its × b are the headline: they do not depend on how fast the load generator is. \"load-gen CPUs busy\" is the busy share of the CPUs the load generator runs on (all processes, /proc/stat); above %.0f%% the row is marked invalid.\n\n", 100*maxGenBusy)
		if cfg.latency > 0 {
			p("## Latency, %s (one request at a time)\n\n", protoName(proto))
			p("| target | req/s | TTFB p50 ms | TTFB p99 ms | TTLB p50 ms | TTLB p99 ms | Δ TTFB p50 vs b ms | Δ TTLB p50 vs b ms | CPU s / 1k req | errors |\n")
			p("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
			for _, i := range b.insts {
				if i.proto != proto {
					continue
				}
				r := &i.lat
				dt, dl := "–", "–"
				if base != nil {
					dt = fmt.Sprintf("%+.3f", float64(percentile(r.ttfb, 50)-percentile(base.lat.ttfb, 50))/1e6)
					dl = fmt.Sprintf("%+.3f", float64(percentile(r.ttlb, 50)-percentile(base.lat.ttlb, 50))/1e6)
				}
				p("| %s. %s | %.0f | %s | %s | %s | %s | %s | %s | %.3f | %d |\n",
					i.target, describe(i.target), r.rps(), ms(percentile(r.ttfb, 50)), ms(percentile(r.ttfb, 99)),
					ms(percentile(r.ttlb, 50)), ms(percentile(r.ttlb, 99)), dt, dl, r.cpuPer1k(), r.errors)
			}
			p("\n")
		}
	}

	if len(b.slow) > 0 {
		p("## f. %d concurrent slow streams (%s each, %d events, one every %s, opened over %s)\n\n",
			cfg.slowStreams, cfg.slowDuration, b.slowEvents+8, b.slowDelay, cfg.slowRamp)
		p("| via | protocol | streams ok | errors | max open | RSS before MiB | RSS during MiB | KiB / open stream | × b | peak RSS MiB | CPU s / 1k streams | TTFB p50 ms | TTFB p99 ms | TTLB p50 s | TTLB p99 s |\n")
		p("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, s := range b.slow {
			r := s.res
			per := perStream(r)
			rb := "–"
			if base := b.findSlow("b", s.proto); base != nil {
				rb = ratio(per, perStream(base.res))
			}
			p("| %s. %s | %s | %d | %d | %d | %s | %s | %.1f | %s | %s | %.3f | %s | %s | %.2f | %.2f |\n",
				s.target, describe(s.target), s.proto, r.requests, r.errors, r.maxOpen, mib(r.rssBeforeKB), mib(r.rssDuringKB), per, rb,
				mib(r.hwmKB), r.cpuPer1k(), ms(percentile(r.ttfb, 50)), ms(percentile(r.ttfb, 99)),
				percentile(r.ttlb, 50).Seconds(), percentile(r.ttlb, 99).Seconds())
		}
		p("\nWhere the memory of an open stream goes (Go runtime statistics halfway through, minus before, per open stream; `heap-f*.pprof` has the heap profile):\n\n")
		p("| via | protocol | RSS KiB | heap in use KiB | of which live objects KiB | goroutine stacks KiB | goroutines |\n|---|---|--:|--:|--:|--:|--:|\n")
		for _, s := range b.slow {
			r := s.res
			if r.statsBefore == nil || r.statsMid == nil || r.maxOpen == 0 {
				continue
			}
			d := func(k string) float64 { return float64(r.statsMid[k]-r.statsBefore[k]) / float64(r.maxOpen) }
			p("| %s | %s | %.1f | %.1f | %.1f | %.1f | %.2f |\n", s.target, s.proto, perStream(r), d("HeapInuse")/1024, d("HeapAlloc")/1024, d("StackInuse")/1024, d("Goroutines"))
		}
		p("\nKiB / open stream = (RSS while the most streams were open − RSS before) / streams open then. codex_proxy holds its headers until the first real output (4 bookkeeping events), so its TTFB here is about 4 event gaps.\n\n")
	}

	p("## Targets\n\n")
	p("| check | protocol | measured | goal | result |\n|---|---|--:|--:|---|\n")
	for _, proto := range cfg.protos {
		bi := b.find("b", proto)
		if bi == nil {
			continue
		}
		for _, g := range []struct {
			t    string
			goal float64
		}{{"c", goalCRatio}, {"d", goalDERatio}, {"e", goalDERatio}, {"c'", goalCRatio}, {"d'", goalDERatio}, {"e'", goalDERatio}} {
			i := b.find(g.t, proto)
			if i == nil {
				continue
			}
			got := i.thr.rps() / bi.thr.rps()
			res := verdict(got >= g.goal, fmt.Sprintf("short by %.0f%% of b", 100*(g.goal-got)))
			if i.thr.invalid() || bi.thr.invalid() {
				res = "INVALID (load generator CPUs over " + fmt.Sprintf("%.0f%%", 100*maxGenBusy) + " busy)"
			}
			p("| %s req/s ÷ b | %s | %.2f | ≥ %.2f | %s |\n", g.t, proto, got, g.goal, res)
			if g.t == "c" || g.t == "d" || g.t == "e" {
				cpu := i.thr.cpuPer1k() / bi.thr.cpuPer1k()
				p("| %s CPU per request ÷ b | %s | %.2f | – | (lower is better; valid whatever the load generator) |\n", g.t, proto, cpu)
			}
		}
		if cfg.latency > 0 {
			for _, t := range []string{"c", "d", "c'", "d'"} {
				i := b.find(t, proto)
				if i == nil {
					continue
				}
				d := percentile(i.lat.ttfb, 50) - percentile(bi.lat.ttfb, 50)
				p("| %s TTFB p50 − b | %s | %+.3f ms | ≤ +0.500 ms | %s |\n", t, proto, float64(d)/1e6,
					verdict(d <= goalTTFBDelta, fmt.Sprintf("over by %.3f ms", float64(d-goalTTFBDelta)/1e6)))
			}
		}
	}
	for _, proto := range cfg.protos {
		// The new front doors beside the dialect they compare with: no
		// goal of their own yet, the ratios say what they cost.
		for _, g := range [][2]string{{"g", "d"}, {"w", "c"}, {"g'", "d'"}, {"w'", "c'"}} {
			i, base := b.find(g[0], proto), b.find(g[1], proto)
			if i == nil || base == nil {
				continue
			}
			res := "–"
			if i.thr.invalid() || base.thr.invalid() {
				res = "INVALID (load generator CPUs over " + fmt.Sprintf("%.0f%%", 100*maxGenBusy) + " busy)"
			}
			p("| %s req/s ÷ %s | %s | %.2f | – | %s |\n", g[0], g[1], proto, i.thr.rps()/base.thr.rps(), res)
			p("| %s CPU per request ÷ %s | %s | %.2f | – | (lower is better) |\n", g[0], g[1], proto, i.thr.cpuPer1k()/base.thr.cpuPer1k())
		}
	}
	for _, s := range b.slow {
		if letter(s.target) != "d" {
			continue
		}
		per := perStream(s.res)
		p("| f via %s KiB RSS per open stream | %s | %.1f | ≤ %.0f | %s |\n", s.target, s.proto, per, goalKiBPerConn,
			verdict(per <= goalKiBPerConn, fmt.Sprintf("over by %.1f KiB", per-goalKiBPerConn)))
		if heap, ok := heapPerStream(s.res); ok {
			p("| f via %s KiB Go heap in use per open stream | %s | %.1f | ≤ %.0f | %s |\n", s.target, s.proto, heap, goalKiBPerConn,
				verdict(heap <= goalKiBPerConn, fmt.Sprintf("over by %.1f KiB", heap-goalKiBPerConn)))
		}
	}
	total := b.totalErrors()
	p("| failed requests, all targets | all | %d | 0 | %s |\n\n", total, verdict(total == 0, "FAILED REQUESTS"))

	var samples []string
	for _, i := range b.insts {
		for _, r := range []*result{&i.thr, &i.lat} {
			for _, s := range r.errSamples {
				samples = append(samples, fmt.Sprintf("- %s: %s", i.name(), s))
			}
		}
	}
	for _, s := range b.slow {
		for _, e := range s.res.errSamples {
			samples = append(samples, fmt.Sprintf("- f via %s over %s: %s", s.target, s.proto, e))
		}
	}
	if len(samples) > 0 {
		p("## Errors (first few per target)\n\n%s\n\n", strings.Join(samples, "\n"))
	}

	if len(b.profiles) > 0 {
		p("## Profiles (Caddy admin /debug/pprof, %s under the same load, not part of the figures above)\n\n", cfg.profile)
		for _, pf := range b.profiles {
			p("### %s over %s: `%s`, `%s`\n\n", pf.target, pf.proto, filepath.Base(pf.cpuFile), filepath.Base(pf.allocFile))
			if pf.err != "" {
				p("profile failed: %s\n\n", pf.err)
				continue
			}
			p("CPU, top by flat time:\n\n```\n%s\n```\n\nCPU, this project's functions by cumulative time:\n\n```\n%s\n```\n\n", pf.cpuTop, pf.cpuOurs)
			p("Allocations (alloc_space), top by flat bytes:\n\n```\n%s\n```\n\nAllocations, this project's functions by cumulative bytes:\n\n```\n%s\n```\n\n", pf.allocTop, pf.allocOur)
		}
		p("Full listings: `cpu-*.txt`, `allocs-*.txt`; explore with `go tool pprof -http=: bench-results/cpu-d-h1.pprof`.\n\n")
	}
	for _, n := range b.notes {
		p("- note: %s\n", n)
	}

	name := "results.md"
	if cfg.smoke {
		name = "smoke.md"
	}
	path := filepath.Join(cfg.outDir, name)
	if err := os.WriteFile(path, w.Bytes(), 0o644); err != nil {
		return err
	}
	os.Stdout.Write(w.Bytes())
	fmt.Fprintf(os.Stderr, "==> wrote %s\n", path)
	for _, proto := range cfg.protos {
		if bad := b.invalidTargets(proto); len(bad) > 0 {
			fmt.Fprintf(os.Stderr, "==> INVALID RATIOS over %s: the load generator's CPUs were above %.0f%% busy for %s; the req/s ratios are not the proxies' (CPU per request still is)\n",
				proto, 100*maxGenBusy, strings.Join(bad, ", "))
		}
	}
	return nil
}

// invalidTargets names the throughput rows of proto measured with the load
// generator's CPUs above maxGenBusy.
func (b *bench) invalidTargets(proto string) []string {
	var bad []string
	for _, i := range b.insts {
		if i.proto == proto && i.thr.invalid() {
			bad = append(bad, fmt.Sprintf("%s (%.0f%%)", i.target, 100*i.thr.genBusyShare()))
		}
	}
	return bad
}

// heapPerStream is the Go heap in use per open stream (halfway through,
// minus before), in KiB; ok is false without the statistics.
func heapPerStream(r *slowResult) (float64, bool) {
	if r.statsBefore == nil || r.statsMid == nil || r.maxOpen == 0 {
		return 0, false
	}
	return float64(r.statsMid["HeapInuse"]-r.statsBefore["HeapInuse"]) / 1024 / float64(r.maxOpen), true
}

func perStream(r *slowResult) float64 {
	if r.maxOpen == 0 {
		return 0
	}
	return float64(r.rssDuringKB-r.rssBeforeKB) / float64(r.maxOpen)
}

func verdict(ok bool, why string) string {
	if ok {
		return "met"
	}
	return "**missed**: " + why
}
