package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/usemysub/caddy-codex-proxy/internal/pgtest"
)

// TestCertificatesInACluster: two Caddy instances with
// `storage codex_postgres` on one PostgreSQL, started at the same moment
// and serving the same site proxy.test on their own ports, obtain one
// certificate from the ACME CA (Pebble) between them and both serve it.
// Pebble validates on the first instance's ports only, so whichever
// instance orders, the challenge answer travels through the shared
// storage; the lock keeps the second instance from ordering too.
//
// The config has no local-CA option (tls internal, skip_install_trust):
// Caddy creates its local CA without a lock, so two fresh instances
// starting together can see its certificate stored but not yet its key
// (docs/clusters.md#certificates-in-a-cluster).
func TestCertificatesInACluster(t *testing.T) {
	t.Parallel()
	bin := caddyBinary(t)
	dsn := pgtest.Start(t).NewDB(t)

	type instance struct {
		name                string
		httpPort, httpsPort int
		cmd                 *exec.Cmd
		logs                *syncBuffer
		exited              <-chan struct{}
	}
	a := &instance{name: "caddy-a", httpPort: freePort(t), httpsPort: freePort(t)}
	b := &instance{name: "caddy-b", httpPort: freePort(t), httpsPort: freePort(t)}
	ca := startPebble(t, a.httpPort, a.httpsPort)

	for _, in := range []*instance{a, b} {
		dir := t.TempDir()
		caddyfile := fmt.Sprintf(`{
	admin 127.0.0.1:%d
	http_port %d
	https_port %d
	storage codex_postgres {env.CERT_DATABASE_URL}
	acme_ca https://%s/dir
	acme_ca_root %s
	email ops@proxy.test
	grace_period 1s
}

proxy.test:%d {
	bind 127.0.0.1
	respond "%s"
}
`, freePort(t), in.httpPort, in.httpsPort, ca.acmeAddr, ca.minica, in.httpsPort, in.name)
		path := filepath.Join(dir, "Caddyfile")
		if err := os.WriteFile(path, []byte(caddyfile), 0o600); err != nil {
			t.Fatal(err)
		}
		in.logs = &syncBuffer{}
		in.cmd = exec.Command(bin, "run", "--config", path, "--adapter", "caddyfile")
		in.cmd.Env = append(os.Environ(), "CERT_DATABASE_URL="+dsn,
			"XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
		in.cmd.Stdout, in.cmd.Stderr = in.logs, in.logs
	}
	// Both at once: they race for the same certificate. b first, so that
	// it usually wins and the challenge, which Pebble checks on a's ports,
	// is answered by a from the shared storage.
	for _, in := range []*instance{b, a} {
		in.exited = startProcess(t, in.name, in.cmd, in.logs)
	}

	// Each instance serves proxy.test with a certificate Pebble signed.
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca.root) {
		t.Fatal("bad Pebble root")
	}
	leafOf := func(in *instance) *x509.Certificate {
		t.Helper()
		deadline := time.Now().Add(45 * time.Second)
		for {
			select {
			case <-in.exited:
				t.Fatalf("%s exited:\n%s", in.name, in.logs.String())
			default:
			}
			d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 2 * time.Second}, Config: &tls.Config{ServerName: "proxy.test", RootCAs: roots}}
			conn, err := d.DialContext(context.Background(), "tcp", fmt.Sprintf("127.0.0.1:%d", in.httpsPort))
			if err == nil {
				leaf := conn.(*tls.Conn).ConnectionState().PeerCertificates[0]
				conn.Close()
				return leaf
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s serves no certificate from Pebble after 45 s: %v\n%s logs:\n%s\npebble:\n%s",
					in.name, err, in.name, in.logs.String(), ca.logs.String())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	var wg sync.WaitGroup
	leaves := make([]*x509.Certificate, 2)
	for i, in := range []*instance{a, b} {
		wg.Add(1)
		go func() { defer wg.Done(); leaves[i] = leafOf(in) }()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if leaves[0].SerialNumber.Cmp(leaves[1].SerialNumber) != 0 {
		t.Errorf("the instances serve different certificates: serial %x and %x", leaves[0].SerialNumber, leaves[1].SerialNumber)
	}
	if n := ca.issued(); n != 1 {
		t.Errorf("Pebble issued %d certificates for one site, want 1:\n%s", n, ca.logs.String())
	}
	obtained, waited := 0, 0
	for _, in := range []*instance{a, b} {
		logs := in.logs.String()
		if strings.Contains(logs, "certificate obtained successfully") {
			obtained++
			if in == b {
				t.Logf("%s ordered the certificate; %s answered Pebble's challenge from the shared storage", b.name, a.name)
			} else {
				t.Logf("%s ordered the certificate", in.name)
			}
		}
		// The other one either took the lock after the first and found
		// the certificate stored, or started late enough to find it
		// before asking for the lock.
		if strings.Contains(logs, "certificate already exists in storage") {
			waited++
			t.Logf("%s waited for the lock, then found the certificate in storage", in.name)
		}
	}
	if obtained != 1 {
		t.Errorf("%d instances logged obtaining the certificate, want 1", obtained)
	}
	if waited == 0 {
		t.Logf("no instance waited on the lock: one started after the other had stored the certificate")
	}

	// The certificate is the one stored in PostgreSQL.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var key string
	var pemBytes []byte
	if err := conn.QueryRow(ctx, `SELECT key, value FROM certmagic_data WHERE key LIKE 'certificates/%/proxy.test/proxy.test.crt'`).Scan(&key, &pemBytes); err != nil {
		t.Fatalf("the certificate is not in PostgreSQL: %v", err)
	}
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		t.Fatalf("%s holds no PEM", key)
	}
	stored, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	if stored.SerialNumber.Cmp(leaves[0].SerialNumber) != 0 {
		t.Errorf("%s holds serial %x, the instances serve %x", key, stored.SerialNumber, leaves[0].SerialNumber)
	}
	t.Logf("one certificate (serial %x) for proxy.test, stored at %s, served by both instances", leaves[0].SerialNumber, key)
}
