package e2e

import (
	"context"
	"encoding/csv"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
	"github.com/usemysub/caddy-codex-proxy/internal/pgtest"
	"github.com/usemysub/caddy-codex-proxy/vault"
	"github.com/usemysub/caddy-codex-proxy/vault/engine"
)

// TestMigrateVaultToPostgresAndBack: a single node's bbolt vault, filled
// through the real CLI and real requests, is backed up while Caddy runs,
// then moved to PostgreSQL with `vault migrate` and Caddy restarted on the
// DSN: the same API key and ChatGPT login serve a request, and the
// dashboard session opened before the move still shows the old request
// log, and the sign-up override set with the CLI is still in force. Moving back to a new bbolt file keeps all of that again. A second
// migration into the now non-empty database is refused.
func TestMigrateVaultToPostgresAndBack(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Start(t).NewDB(t)
	fake := newFake(t, codextest.Options{})
	p := newProxy(t, fake, proxySpec{extra: "mail log dev"})
	key, _ := p.provision(t, "ada@example.com", p.authFile(t, fake, "acc-ada", "ada@example.com", "plus"))
	p.start(t)
	boltPath := filepath.Join(p.dir, "vault", "vault.db")

	for range 3 {
		chatOnce(t, p, key)
	}
	// The operator's sign-up override moves with the rest.
	p.cli(t, "signup", "set", "domains", "example.com")
	dash := dashboardSignIn(t, p.httpURL, "ada@example.com")
	var before []string
	deadline := time.Now().Add(10 * time.Second)
	for len(before) < 3 && time.Now().Before(deadline) { // the log is written in batches
		before = requestIDs(t, dash, p.httpURL)
		time.Sleep(100 * time.Millisecond)
	}
	if len(before) != 3 {
		t.Fatalf("the dashboard shows %d requests before the move, want 3", len(before))
	}

	// Backup while running: through the admin API; the copy opens with ada.
	backup := filepath.Join(p.dir, "backup.db")
	_, stderr := p.cli(t, "vault", "backup", "--out", backup)
	if !strings.Contains(stderr, "through the admin API") || !strings.Contains(stderr, "1 users") {
		t.Fatalf("backup: %s", stderr)
	}
	bv, err := engine.Open(context.Background(), backup, vault.Options{EncryptionKeys: []string{encKey}, Pepper: pepper, OpenTimeout: time.Second})
	if err != nil {
		t.Fatalf("the backup does not open: %v", err)
	}
	if _, err := bv.UserByEmail("ada@example.com"); err != nil {
		t.Fatalf("the backup lacks ada: %v", err)
	}
	bv.Close()

	// A running Caddy holds the file: migrate says to stop it.
	_, _, err = p.tryCLI("vault", "migrate", "--from", boltPath, "--to", dsn)
	if err == nil {
		t.Fatal("migrated from a vault file Caddy holds")
	}

	p.stop(t)
	out, stderr := p.cli(t, "vault", "migrate", "--from", boltPath, "--to", dsn)
	if n := copiedLogs(t, out); n < 3 || !strings.Contains(stderr, "decrypted 1 of 1") {
		t.Fatalf("migrate to PostgreSQL:\n%s\n%s", out, stderr)
	}
	if _, stderr, err := p.tryCLI("vault", "migrate", "--from", boltPath, "--to", dsn); err == nil || !strings.Contains(stderr, "is not empty: it holds 1 users") {
		t.Fatalf("a second migration into the same database: %v\n%s", err, stderr)
	}

	p.useVault(t, "{env.VAULT_DSN}", "VAULT_DSN="+dsn)
	p.start(t)
	checkAfterMove(t, p, key, dash, before)

	p.stop(t)
	back := filepath.Join(p.dir, "vault-back", "vault.db")
	out, _ = p.cli(t, "vault", "migrate", "--from", dsn, "--to", back)
	if n := copiedLogs(t, out); n < 4 {
		t.Fatalf("migrate back to bbolt:\n%s", out)
	}
	p.useVault(t, back)
	p.start(t)
	checkAfterMove(t, p, key, dash, before)
}

// copiedLogs reads the request-log row of migrate's summary, which must
// say every record was copied and verified, and returns the count.
func copiedLogs(t *testing.T, summary string) int {
	t.Helper()
	m := regexp.MustCompile(`(?m)^request log\s+(\d+)\s+(\d+)\s+(\d+)$`).FindStringSubmatch(summary)
	if m == nil || m[1] != m[2] || m[2] != m[3] {
		t.Fatalf("migrate summary:\n%s", summary)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// checkAfterMove: the key and login serve a request, and the dashboard
// session from before the move shows the old requests.
func checkAfterMove(t *testing.T, p *proxy, key string, dash *http.Client, before []string) {
	t.Helper()
	chatOnce(t, p, key)
	if out, _ := p.cli(t, "signup", "show"); !strings.HasPrefix(out, "signup domains example.com") {
		t.Fatalf("the sign-up override after the move:\n%s", out)
	}
	after := requestIDs(t, dash, p.httpURL)
	for _, id := range before {
		if !slices.Contains(after, id) {
			t.Fatalf("request %s is missing from the dashboard after the move: %v", id, after)
		}
	}
}

// chatOnce sends one chat completion with key through the plain site.
func chatOnce(t *testing.T, p *proxy, key string) {
	t.Helper()
	c := p.openaiClient(t, p.httpURL, key, nil)
	res, err := c.Chat.Completions.New(withTimeout(t), chatParams("hello"))
	if err != nil || len(res.Choices) == 0 {
		t.Fatalf("chat: %v", err)
	}
}

// useVault points every codex_proxy block at location, with env added.
func (p *proxy) useVault(t *testing.T, location string, env ...string) {
	t.Helper()
	b, err := os.ReadFile(p.caddyfile)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^(\s*vault )\S+$`)
	cfg := re.ReplaceAllString(string(b), "${1}"+location)
	if err := os.WriteFile(p.caddyfile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p.env = append(p.env, env...)
}

var (
	csrfRE      = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	magicLinkRE = regexp.MustCompile(`https?://[^\s"<]+/login/confirm\?token=[A-Za-z0-9_\-]+`)
)

// dashboardSignIn signs in with the development magic link (mail log dev)
// and returns a client holding the session cookie.
func dashboardSignIn(t *testing.T, base, email string) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	page := getPage(t, c, base+"/login")
	page = postForm(t, c, base, "/login", url.Values{"email": {email}, "csrf": {csrfOf(t, page)}})
	link := magicLinkRE.FindString(page)
	if link == "" {
		t.Fatalf("no magic link in the page:\n%s", page)
	}
	page = getPage(t, c, link)
	tok := regexp.MustCompile(`name="token" value="([^"]+)"`).FindStringSubmatch(page)
	if tok == nil {
		t.Fatalf("no token in the confirm page:\n%s", page)
	}
	postForm(t, c, base, "/login/confirm", url.Values{"token": {tok[1]}, "csrf": {csrfOf(t, page)}})
	return c
}

// requestIDs reads the request ids of the signed-in user's request log
// from the dashboard's CSV export.
func requestIDs(t *testing.T, c *http.Client, base string) []string {
	t.Helper()
	resp, err := c.Get(base + "/requests.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("requests.csv: HTTP %d (signed out?)\n%s", resp.StatusCode, b)
	}
	rows, err := csv.NewReader(resp.Body).ReadAll()
	if err != nil || len(rows) == 0 || rows[0][1] != "request_id" {
		t.Fatalf("requests.csv: %v %v", err, rows)
	}
	var ids []string
	for _, r := range rows[1:] {
		ids = append(ids, r[1])
	}
	return ids
}

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no csrf field in the page:\n%s", page)
	}
	return m[1]
}

func getPage(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d\n%s", u, resp.StatusCode, b)
	}
	return string(b)
}

func postForm(t *testing.T, c *http.Client, base, path string, form url.Values) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: HTTP %d\n%s", path, resp.StatusCode, b)
	}
	return string(b)
}
