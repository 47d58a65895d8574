package pgtest

import (
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestStartRestart starts a real cluster, checks it answers SQL with psql,
// restarts it and checks again: the harness the cluster tests rely on.
func TestStartRestart(t *testing.T) {
	s := Start(t)
	dsn := s.NewDB(t)
	if !strings.Contains(dsn, "127.0.0.1:"+strconv.Itoa(s.Port)) {
		t.Fatalf("DSN %q does not name the loopback port %d", dsn, s.Port)
	}
	psql := func() string {
		t.Helper()
		out, err := exec.Command("psql", dsn, "-tAc", "select 40+2").CombinedOutput()
		if err != nil {
			t.Fatalf("psql: %v: %s\n%s", err, out, s.Log())
		}
		return strings.TrimSpace(string(out))
	}
	if got := psql(); got != "42" {
		t.Fatalf("select 40+2 = %q", got)
	}
	s.Stop()
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(s.Port), time.Second); err == nil {
		c.Close()
		t.Fatal("the port still accepts connections after Stop")
	}
	s.Start()
	if got := psql(); got != "42" {
		t.Fatalf("after restart: select 40+2 = %q", got)
	}
}
