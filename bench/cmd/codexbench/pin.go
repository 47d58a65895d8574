package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// pinEnv carries the CPU split into the re-executed, pinned bench.
const pinEnv = "CODEXBENCH_PINNED"

// pinning is how the bench splits the machine: servers (Caddy, and the
// fake when it is the target) on serverCPUs, the load generator and the
// upstream fake on clientCPUs. Empty strings mean no pinning.
type pinning struct {
	serverCPUs, clientCPUs string
	note                   string
}

// setupPinning decides the CPU split and, the first time, re-executes the
// bench under taskset so every thread of the load generator is pinned.
// It returns only in the pinned process (or when pinning is off).
func setupPinning(mode, server, client string) (pinning, error) {
	if v := os.Getenv(pinEnv); v != "" {
		c, s, _ := strings.Cut(v, ";")
		return pinning{serverCPUs: s, clientCPUs: c,
			note: fmt.Sprintf("taskset: servers under test (Caddy; the fake for target a) on CPU %s, load generator and upstream fake on CPU %s", s, c)}, nil
	}
	if mode == "off" {
		return pinning{note: "no CPU pinning (-pin off)"}, nil
	}
	taskset, err := exec.LookPath("taskset")
	if err != nil {
		return pinning{note: "no CPU pinning: taskset not found"}, nil
	}
	cpus := allowedCPUs()
	if server == "" && client == "" {
		if len(cpus) < 2 {
			return pinning{note: "no CPU pinning: a single CPU"}, nil
		}
		server = strconv.Itoa(cpus[len(cpus)-1])
		var rest []string
		for _, c := range cpus[:len(cpus)-1] {
			rest = append(rest, strconv.Itoa(c))
		}
		client = strings.Join(rest, ",")
	}
	if server == "" || client == "" {
		return pinning{}, fmt.Errorf("-server-cpus and -client-cpus go together")
	}
	self, err := os.Executable()
	if err != nil {
		return pinning{}, err
	}
	args := append([]string{"taskset", "-c", client, self}, os.Args[1:]...)
	env := append(os.Environ(), pinEnv+"="+client+";"+server)
	return pinning{}, syscall.Exec(taskset, args, env)
}

// allowedCPUs lists the CPUs this process may run on.
func allowedCPUs() []int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
			return parseCPUList(strings.TrimSpace(rest))
		}
	}
	return nil
}

// parseCPUList parses "0-3,6,8-9".
func parseCPUList(s string) []int {
	var out []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(strings.TrimSpace(lo))
		if err != nil {
			continue
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(strings.TrimSpace(hi)); err != nil {
				continue
			}
		}
		for c := a; c <= b && c-a < 4096; c++ {
			out = append(out, c)
		}
	}
	return out
}
