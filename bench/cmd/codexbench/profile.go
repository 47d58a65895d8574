package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ourCode marks this project's functions in profiles.
const ourCode = "github.com/usemysub/caddy-codex-proxy/"

// profileFiles are the profiles of one target and what pprof says.
type profileFiles struct {
	target, proto      string
	cpuFile, allocFile string
	cpuTop, allocTop   string // flat top entries
	cpuOurs, allocOur  string // our functions, by cumulative share
	err                string
}

// profileAll captures a CPU and an allocation profile of each profiled
// target (c and d by default) through Caddy's admin endpoint while it is
// under load.
func (b *bench) profileAll(ctx context.Context) {
	secs := int(b.cfg.profile / time.Second)
	if secs < 1 {
		secs = 1
	}
	for _, proto := range b.cfg.profileProtos {
		for _, inst := range b.insts {
			if inst.proto != proto || !has(b.cfg.profileTargets, letter(inst.target)) || ctx.Err() != nil {
				continue
			}
			b.logf("profiling %s for %ds under load", inst.name(), secs)
			pf := profileFiles{target: inst.target, proto: proto,
				cpuFile:   filepath.Join(b.cfg.outDir, "cpu-"+fileName(inst.target, proto)+".pprof"),
				allocFile: filepath.Join(b.cfg.outDir, "allocs-"+fileName(inst.target, proto)+".pprof")}
			var wg sync.WaitGroup
			var load *result
			wg.Add(1)
			go func() {
				defer wg.Done()
				load = runClosed(ctx, inst.client, &inst.spec, b.cfg.concurrency, time.Duration(secs)*time.Second+1500*time.Millisecond, false)
			}()
			time.Sleep(500 * time.Millisecond)
			errs := make([]error, 2)
			var pw sync.WaitGroup
			for i, p := range []struct{ path, file string }{
				{fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs), pf.cpuFile},
				{fmt.Sprintf("/debug/pprof/allocs?seconds=%d", secs), pf.allocFile},
			} {
				pw.Add(1)
				go func() {
					defer pw.Done()
					errs[i] = fetchProfile(ctx, inst.admin, p.path, p.file, time.Duration(secs+30)*time.Second)
				}()
			}
			pw.Wait()
			wg.Wait()
			// Errors under profiling count like any other.
			inst.thr.errors += load.errors
			inst.thr.errSamples = append(inst.thr.errSamples, load.errSamples...)
			for _, err := range errs {
				if err != nil {
					pf.err = err.Error()
				}
			}
			if pf.err == "" {
				pf.cpuTop = pprofTop(pf.cpuFile, 14, false, "")
				pf.cpuOurs = pprofTop(pf.cpuFile, 14, true, "")
				pf.allocTop = pprofTop(pf.allocFile, 14, false, "alloc_space")
				pf.allocOur = pprofTop(pf.allocFile, 14, true, "alloc_space")
				for _, kind := range []struct{ file, idx, name string }{
					{pf.cpuFile, "", "cpu"}, {pf.allocFile, "alloc_space", "allocs"},
				} {
					full := pprofRaw(kind.file, kind.idx, "-top", "-nodecount=60")
					full += "\n\n" + pprofRaw(kind.file, kind.idx, "-top", "-cum", "-nodecount=80")
					_ = os.WriteFile(strings.TrimSuffix(kind.file, ".pprof")+".txt", []byte(full), 0o644)
				}
			}
			b.profiles = append(b.profiles, pf)
		}
	}
}

// fetchProfile saves one pprof endpoint of Caddy's admin API.
func fetchProfile(ctx context.Context, admin, path, file string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: HTTP %d: %s", path, resp.StatusCode, b)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, io.LimitReader(resp.Body, 256<<20)); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// goMemStats reads the runtime.MemStats that Caddy's /debug/pprof/heap
// prints in its text form ("# HeapInuse = 123").
func goMemStats(ctx context.Context, admin string) (map[string]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/debug/pprof/heap?debug=1", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	stats := map[string]int64{}
	for _, line := range strings.Split(string(body), "\n") {
		rest, ok := strings.CutPrefix(line, "# ")
		if !ok {
			continue
		}
		name, val, ok := strings.Cut(rest, " = ")
		if !ok {
			continue
		}
		// "Stack = inuse / sys" (and MSpan, MCache) carry two numbers.
		inuse, _, pair := strings.Cut(val, " / ")
		if v, err := strconv.ParseInt(strings.TrimSpace(inuse), 10, 64); err == nil {
			if pair {
				name += "Inuse"
			}
			stats[name] = v
		}
	}
	if len(stats) == 0 {
		return nil, fmt.Errorf("no memory statistics in /debug/pprof/heap?debug=1")
	}
	// And the number of goroutines: "goroutine profile: total 123".
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/debug/pprof/goroutine?debug=1", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		line, _ := bufio.NewReader(io.LimitReader(resp.Body, 4096)).ReadString('\n')
		resp.Body.Close()
		if n, ok := strings.CutPrefix(strings.TrimSpace(line), "goroutine profile: total "); ok {
			if v, err := strconv.ParseInt(n, 10, 64); err == nil {
				stats["Goroutines"] = v
			}
		}
	}
	return stats, nil
}

// pprofRaw runs go tool pprof on a profile.
func pprofRaw(file, sampleIndex string, args ...string) string {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "(go not in PATH: no pprof summary)"
	}
	argv := []string{"tool", "pprof"}
	if sampleIndex != "" {
		argv = append(argv, "-sample_index="+sampleIndex)
	}
	argv = append(argv, args...)
	argv = append(argv, file)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, goBin, argv...).Output()
	if err != nil {
		return fmt.Sprintf("(go tool pprof failed: %v)", err)
	}
	return string(out)
}

// pprofTop returns the summary lines and the n first entries of pprof's
// top listing; with ours, the cumulative listing restricted to this
// project's functions.
func pprofTop(file string, n int, ours bool, sampleIndex string) string {
	args := []string{"-top", "-nodecount=40"}
	if ours {
		args = []string{"-top", "-cum", "-nodecount=0"}
	}
	raw := pprofRaw(file, sampleIndex, args...)
	var head, rows []string
	inRows := false
	for _, line := range strings.Split(raw, "\n") {
		switch {
		case strings.HasPrefix(strings.TrimSpace(line), "flat  flat%"):
			inRows = true
			head = append(head, line)
		case !inRows:
			if strings.HasPrefix(line, "Duration:") || strings.HasPrefix(line, "Showing nodes") || strings.HasPrefix(line, "Type:") {
				head = append(head, line)
			}
		case strings.TrimSpace(line) == "":
		case ours && !strings.Contains(line, ourCode):
		case len(rows) < n:
			rows = append(rows, strings.ReplaceAll(line, ourCode, ""))
		}
	}
	if len(rows) == 0 && len(head) == 0 {
		return raw
	}
	return strings.Join(append(head, rows...), "\n")
}
