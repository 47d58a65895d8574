// Package pgtest starts a real PostgreSQL (Debian's packages) for tests: a
// fresh cluster in a temporary directory, listening on a loopback port,
// owned by an unprivileged user. Nothing is faked; the server is stopped and
// removed when the test ends.
//
// Without PostgreSQL installed, Start skips the test outside CI and fails it
// in CI (CI=true), where .ci/run must have installed it.
package pgtest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is a running PostgreSQL cluster.
type Server struct {
	// Port is the loopback TCP port it listens on.
	Port int
	// User is the superuser role the cluster was created with (trust
	// authentication on loopback).
	User string

	bin     string
	dir     string
	data    string
	runAs   string // "" when the test does not run as root
	mu      sync.Mutex
	running bool
	t       testing.TB
}

// inCI reports whether tests run in CI, where every tool must be present.
func inCI() bool { return os.Getenv("CI") != "" && os.Getenv("CI") != "false" }

// binDir finds the newest installed server's bin directory.
func binDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	var ok []string
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			ok = append(ok, d)
		}
	}
	if len(ok) == 0 {
		if p, err := exec.LookPath("initdb"); err == nil {
			return filepath.Dir(p), nil
		}
		return "", fmt.Errorf("no initdb under /usr/lib/postgresql/*/bin or on PATH")
	}
	sort.Slice(ok, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(ok[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(ok[j])))
		return vi < vj
	})
	return ok[len(ok)-1], nil
}

// Start creates and starts a cluster for t; it is stopped and deleted by
// t.Cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := binDir()
	if err != nil {
		if inCI() {
			t.Fatalf("PostgreSQL is missing in CI (.ci/run installs the postgresql package): %v", err)
		}
		t.Skipf("PostgreSQL is not installed (apt-get install postgresql): %v", err)
	}
	s := &Server{bin: bin, User: "codex", t: t}
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root.
		if _, err := user.Lookup("postgres"); err != nil {
			t.Fatalf("running as root needs the postgres user (from the postgresql package): %v", err)
		}
		s.runAs = "postgres"
	}
	s.dir, err = os.MkdirTemp("", "pgtest-")
	if err != nil {
		t.Fatal(err)
	}
	if s.runAs != "" {
		if out, err := exec.Command("chown", s.runAs, s.dir).CombinedOutput(); err != nil {
			t.Fatalf("chown %s: %v: %s", s.dir, err, out)
		}
	}
	s.data = filepath.Join(s.dir, "data")
	if out, err := s.run("initdb", "-D", s.data, "-A", "trust", "-U", s.User, "--no-sync", "-E", "UTF8"); err != nil {
		os.RemoveAll(s.dir)
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	s.Port = freePort(t)
	t.Cleanup(func() {
		s.Stop()
		os.RemoveAll(s.dir)
	})
	s.Start()
	return s
}

// run runs a server program as the cluster's owner.
func (s *Server) run(prog string, args ...string) ([]byte, error) {
	path := filepath.Join(s.bin, prog)
	var cmd *exec.Cmd
	if s.runAs != "" {
		cmd = exec.Command("runuser", append([]string{"-u", s.runAs, "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = s.dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

// Start starts the cluster (again, after Stop) on the same port and data.
func (s *Server) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return
	}
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off -c max_connections=200", s.Port, s.dir)
	if out, err := s.run("pg_ctl", "-D", s.data, "-o", opts, "-l", filepath.Join(s.dir, "log"), "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "log"))
		s.t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	s.running = true
}

// Stop stops the cluster (fast shutdown: open sessions are cut).
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return
	}
	if out, err := s.run("pg_ctl", "-D", s.data, "-m", "fast", "-w", "stop"); err != nil {
		s.t.Logf("pg_ctl stop: %v\n%s", err, out)
	}
	s.running = false
}

// Restart stops the cluster and starts it again after pause.
func (s *Server) Restart(pause time.Duration) {
	s.t.Helper()
	s.Stop()
	time.Sleep(pause)
	s.Start()
}

// DSN returns a libpq URL for database db (created by CreateDB, or
// "postgres").
func (s *Server) DSN(db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", s.User, s.Port, db)
}

// CreateDB creates a fresh database and returns its DSN.
func (s *Server) CreateDB(t testing.TB, name string) string {
	t.Helper()
	if out, err := s.run("createdb", "-h", "127.0.0.1", "-p", strconv.Itoa(s.Port), "-U", s.User, name); err != nil {
		t.Fatalf("createdb %s: %v\n%s", name, err, out)
	}
	return s.DSN(name)
}

// NewDB creates a database with a name unique within the cluster, derived
// from t's name, and returns its DSN.
func (s *Server) NewDB(t testing.TB) string {
	t.Helper()
	dbSeq.Lock()
	dbSeq.n++
	n := dbSeq.n
	dbSeq.Unlock()
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		if r >= 'A' && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return '_'
	}, t.Name())
	if len(name) > 40 {
		name = name[:40]
	}
	return s.CreateDB(t, fmt.Sprintf("t%d_%s", n, name))
}

var dbSeq struct {
	sync.Mutex
	n int
}

// Log returns the server's log so far, for failure messages.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "log"))
	return string(b)
}

// freePort asks the kernel for a free loopback port.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
