package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat;
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// proc is a child process the bench started (Caddy or a fake).
type proc struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
}

// procs tracks every child so all of them are stopped on the way out.
type procs struct {
	mu   sync.Mutex
	list []*proc
}

// start runs argv (through taskset when cpus is set) with its output in
// logPath.
func (ps *procs) start(name, cpus, logPath string, env []string, argv ...string) (*proc, error) {
	if cpus != "" {
		argv = append([]string{"taskset", "-c", cpus}, argv...)
	}
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	// Its own process group: a Ctrl-C in the terminal reaches the bench,
	// which stops the children in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: f, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	ps.mu.Lock()
	ps.list = append(ps.list, p)
	ps.mu.Unlock()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop interrupts the process and kills it after a grace period.
func (p *proc) stop() {
	if !p.exited() {
		_ = p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	p.log.Close()
}

// logTail returns the end of the process's output, for error messages.
func (p *proc) logTail(n int) string {
	b, err := os.ReadFile(p.log.Name())
	if err != nil {
		return ""
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// stopAll stops every child still running, newest first.
func (ps *procs) stopAll() {
	ps.mu.Lock()
	list := ps.list
	ps.list = nil
	ps.mu.Unlock()
	var wg sync.WaitGroup
	for i := len(list) - 1; i >= 0; i-- {
		wg.Add(1)
		go func(p *proc) { defer wg.Done(); p.stop() }(list[i])
	}
	wg.Wait()
}

// remove stops p and forgets it.
func (ps *procs) remove(p *proc) {
	p.stop()
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for i, q := range ps.list {
		if q == p {
			ps.list = append(ps.list[:i], ps.list[i+1:]...)
			break
		}
	}
}

// cpuTicks returns utime+stime of pid in clock ticks.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may contain spaces and parentheses: fields are
	// counted after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc/<pid>/stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// After ')': state(3) ... utime is field 14, stime 15 (1-based in proc(5)).
	if len(f) < 13 {
		return 0, errors.New("short /proc/<pid>/stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("bad utime/stime in /proc/<pid>/stat")
	}
	return ut + st, nil
}

// machineBusyTicks is the CPU time of the whole machine (all CPUs) outside
// idle and iowait, from /proc/stat.
func machineBusyTicks() int64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 8 || f[0] != "cpu" {
		return 0
	}
	var busy int64
	// user nice system idle iowait irq softirq steal ...
	for _, i := range []int{1, 2, 3, 6, 7} {
		v, _ := strconv.ParseInt(f[i], 10, 64)
		busy += v
	}
	return busy
}

// cpuSetTicks sums the busy (not idle or iowait) and total ticks of the
// given CPUs from their /proc/stat lines; nil means every CPU.
func cpuSetTicks(cpus []int) (busy, total int64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	want := make(map[string]bool, len(cpus))
	for _, c := range cpus {
		want["cpu"+strconv.Itoa(c)] = true
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 9 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" || (len(cpus) > 0 && !want[f[0]]) {
			continue
		}
		// user nice system idle iowait irq softirq steal ...
		for i := 1; i <= 8; i++ {
			v, _ := strconv.ParseInt(f[i], 10, 64)
			total += v
			if i != 4 && i != 5 {
				busy += v
			}
		}
	}
	return busy, total
}

// memKB returns VmRSS and VmHWM of pid in KiB.
func memKB(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		for _, f := range []struct {
			name string
			dst  *int64
		}{{"VmRSS:", &rss}, {"VmHWM:", &hwm}} {
			if rest, ok := strings.CutPrefix(line, f.name); ok {
				fs := strings.Fields(rest)
				if len(fs) > 0 {
					*f.dst, _ = strconv.ParseInt(fs[0], 10, 64)
				}
			}
		}
	}
	return rss, hwm, nil
}

// freePort returns a free loopback TCP port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// fake is a running fakecodex.
type fake struct {
	*proc
	URL          string `json:"url"`
	IssuerURL    string `json:"issuer_url"`
	AccountID    string `json:"account_id"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
}

// startFake runs fakecodex in fast mode and reads the JSON line it prints.
func (ps *procs) startFake(ctx context.Context, bin, name, dir, cpus string, events int, delay time.Duration, tls bool) (*fake, error) {
	logPath := filepath.Join(dir, name+".log")
	args := []string{bin, "-addr", "127.0.0.1:0", "-events", strconv.Itoa(events), "-delay", delay.String(), "-access-ttl", "48h"}
	if tls {
		args = append(args, "-tls")
	}
	p, err := ps.start(name, cpus, logPath, nil, args...)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		b, _ := os.ReadFile(logPath)
		if line, _, ok := bytes.Cut(b, []byte("\n")); ok {
			f := &fake{proc: p}
			if err := json.Unmarshal(line, f); err != nil {
				return nil, fmt.Errorf("%s: unexpected output %q", name, line)
			}
			return f, nil
		}
		if p.exited() {
			return nil, fmt.Errorf("%s exited: %s", name, p.logTail(2000))
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, fmt.Errorf("%s did not start: %s", name, p.logTail(2000))
}

// authJSON is a Codex CLI auth.json holding the fake's tokens.
func (f *fake) authJSON() []byte {
	b, _ := json.MarshalIndent(map[string]any{
		"OPENAI_API_KEY": nil,
		"tokens": map[string]string{
			"id_token":      f.IDToken,
			"access_token":  f.AccessToken,
			"refresh_token": f.RefreshToken,
			"account_id":    f.AccountID,
		},
		"last_refresh": time.Now().UTC().Format(time.RFC3339),
	}, "", "  ")
	return b
}

// hostPort is the fake's listen address.
func (f *fake) hostPort() string {
	s := strings.TrimPrefix(strings.TrimPrefix(f.IssuerURL, "http://"), "https://")
	return strings.TrimSuffix(s, "/")
}
