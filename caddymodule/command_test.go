package caddymodule

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/usemysub/caddy-codex-proxy/ops"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// keyLine is all a key-printing command may write on standard output.
var keyLine = regexp.MustCompile(`^cpk_[A-Za-z0-9_-]{43}\n$`)

// runCLI runs `caddy codex-proxy <args>` in-process.
func runCLI(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	c := newCLI(&out, &errOut, strings.NewReader(stdin))
	c.OpenTimeout = 200 * time.Millisecond
	root := &cobra.Command{Use: "codex-proxy", SilenceUsage: true, SilenceErrors: true}
	c.Register(root)
	root.SetArgs(args)
	root.SetOut(&errOut)
	root.SetErr(&errOut)
	err = root.Execute()
	return out.String(), errOut.String(), err
}

// mustRun runs the CLI and fails the test on error.
func mustRun(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	stdout, stderr, err := runCLI(t, "", args...)
	if err != nil {
		t.Fatalf("codex-proxy %s: %v\nstderr: %s", strings.Join(args, " "), err, stderr)
	}
	return stdout, stderr
}

// writeCaddyfile writes a Caddyfile with one codex_proxy site and returns
// its path.
func writeCaddyfile(t *testing.T, dir, admin, handlerBody string) string {
	t.Helper()
	content := fmt.Sprintf("{\n\tadmin %s\n}\n\n:8080 {\n\tcodex_proxy {\n%s\n\t}\n}\n", admin, handlerBody)
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeFile writes data to a new file in dir.
func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// reopen opens a vault with the secrets generated beside it, as Caddy
// would, and closes it at the end of the test.
func reopen(t *testing.T, path string) *vault.Vault {
	t.Helper()
	key, pepper, generated, err := vault.LoadOrCreateSecrets(filepath.Dir(path))
	if err != nil || generated {
		t.Fatalf("generated secrets missing: %v generated=%v", err, generated)
	}
	v := openTestVault(t, path, key, pepper)
	t.Cleanup(func() { v.Close() })
	return v
}

// assertNoSecrets checks output shows no token and no pepper.
func assertNoSecrets(t *testing.T, dir string, outputs ...string) {
	t.Helper()
	generated, _ := os.ReadFile(filepath.Join(dir, vault.PepperFile)) // not loadOrCreateSecrets: it would create it
	pepper := strings.TrimSpace(string(generated))
	for _, o := range outputs {
		if strings.Contains(o, testRefreshToken) || (pepper != "" && strings.Contains(o, pepper)) || strings.Contains(o, testPepper) {
			t.Fatalf("output shows a secret:\n%s", o)
		}
	}
}

func TestCLIWithCaddyStopped(t *testing.T) {
	for _, admin := range []string{"off", "closed port"} {
		t.Run(admin, func(t *testing.T) {
			dir := t.TempDir()
			addr := admin
			if admin == "closed port" {
				addr = closedAddr(t)
			}
			vaultPath := filepath.Join(dir, "data", "vault.db")
			cfg := writeCaddyfile(t, dir, addr, "\t\tvault "+vaultPath)
			auth := writeFile(t, dir, "auth.json", authJSON(t, "ada@example.com", "plus"))

			out, errOut := mustRun(t, "provision", "--config", cfg, "--email", "ada@example.com",
				"--display-name", "Ada Lovelace", "--auth-file", auth, "--label", "laptop")
			if !keyLine.MatchString(out) {
				t.Fatalf("stdout is not the key alone: %q", out)
			}
			if !strings.Contains(errOut, "created user ada@example.com") || !strings.Contains(errOut, "generated an encryption key") {
				t.Fatalf("stderr: %s", errOut)
			}
			key := strings.TrimSpace(out)

			out2, errOut2 := mustRun(t, "keys", "create", "-c", cfg, "--email", "ada@example.com")
			if !keyLine.MatchString(out2) || out2 == out {
				t.Fatalf("keys create stdout: %q", out2)
			}
			usersOut, _ := mustRun(t, "users", "list", "--config", cfg)
			if !strings.Contains(usersOut, "ada@example.com") || !strings.Contains(usersOut, "Ada Lovelace") || !strings.Contains(usersOut, "plus") {
				t.Fatalf("users list:\n%s", usersOut)
			}
			var keys ops.KeysResult
			keysOut, _ := mustRun(t, "keys", "list", "--config", cfg, "--email", "ada@example.com", "--json")
			if err := json.Unmarshal([]byte(keysOut), &keys); err != nil || len(keys.Keys) != 2 {
				t.Fatalf("keys list --json: %v\n%s", err, keysOut)
			}
			assertNoSecrets(t, filepath.Dir(vaultPath), out, errOut, errOut2, usersOut, keysOut)
			if strings.Contains(keysOut, key) {
				t.Fatal("keys list shows a key")
			}

			// The first key (label laptop) is revoked; the second still works.
			first := keys.Keys[slices.IndexFunc(keys.Keys, func(k ops.KeyView) bool { return k.Label == "laptop" })]
			mustRun(t, "keys", "revoke", "--config", cfg, "--email", "ada@example.com", "--id", first.ID)

			v := reopen(t, vaultPath)
			if _, _, err := v.VerifyKey(key); !errors.Is(err, vault.ErrKeyInvalid) {
				t.Fatalf("revoked key: %v", err)
			}
			k, u, err := v.VerifyKey(strings.TrimSpace(out2))
			if err != nil || u.Email != "ada@example.com" || u.Name != "Ada Lovelace" || k.Disabled {
				t.Fatalf("second key: %v %+v %+v", err, u, k)
			}
			if ti, err := v.TokenInfo(u.ID); err != nil || ti.PlanType != "plus" {
				t.Fatalf("imported login: %v %+v", err, ti)
			}
		})
	}
}

func TestCLIUsersDisableEnable(t *testing.T) {
	dir := t.TempDir()
	vaultPath := filepath.Join(dir, "vault.db")
	cfg := writeCaddyfile(t, dir, "off", "\t\tvault "+vaultPath)
	out, _ := mustRun(t, "provision", "--config", cfg, "--email", "bob@example.com")
	_, errOut := mustRun(t, "users", "disable", "--config", cfg, "--email", "bob@example.com")
	if !strings.Contains(errOut, "disabled bob@example.com") {
		t.Fatalf("disable: %s", errOut)
	}
	usersOut, _ := mustRun(t, "users", "list", "--config", cfg, "--json")
	var users ops.UsersResult
	if err := json.Unmarshal([]byte(usersOut), &users); err != nil || len(users.Users) != 1 || !users.Users[0].Disabled || users.Users[0].ActiveKeys != 1 {
		t.Fatalf("users list: %v %s", err, usersOut)
	}
	if text, _ := mustRun(t, "users", "list", "--config", cfg); !strings.Contains(text, "bob@example.com (disabled)") {
		t.Fatalf("users list: %s", text)
	}
	stdout, errOut := mustRun(t, "users", "enable", "--config", cfg, "--email", "bob@example.com")
	if stdout != "" || !strings.Contains(errOut, "enabled bob@example.com") {
		t.Fatalf("enable: %q %s", stdout, errOut)
	}
	v := reopen(t, vaultPath)
	if u, err := v.UserByEmail("bob@example.com"); err != nil || u.Disabled {
		t.Fatalf("after enable: %+v %v", u, err)
	}
	if _, _, err := v.VerifyKey(strings.TrimSpace(out)); err != nil {
		t.Fatalf("key after enable: %v", err)
	}
}

func TestCLILockedVault(t *testing.T) {
	dir := t.TempDir()
	vaultPath := filepath.Join(dir, "vault.db")
	cfg := writeCaddyfile(t, dir, closedAddr(t), "\t\tvault "+vaultPath)
	key, pepper, _, err := vault.LoadOrCreateSecrets(dir)
	if err != nil {
		t.Fatal(err)
	}
	v := openTestVault(t, vaultPath, key, pepper) // stands in for a Caddy whose admin we cannot reach
	defer v.Close()

	start := time.Now()
	out, _, err := runCLI(t, "", "keys", "create", "--config", cfg, "--email", "ada@example.com")
	if err == nil || out != "" {
		t.Fatalf("succeeded on a locked vault: %q", out)
	}
	want := "the vault " + vaultPath + " is locked by another process — is Caddy running with a different admin address?"
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "admin endpoint") {
		t.Fatalf("error %q does not contain %q", err, want)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v; the open timeout is not applied", d)
	}
}

// fakeAdmin stands in for a running Caddy's admin endpoint, serving the
// real admin routes over pool.
type fakeAdmin struct {
	*httptest.Server
	mu      sync.Mutex
	paths   []string
	origins []string
}

func newFakeAdmin(t *testing.T, h http.Handler) *fakeAdmin {
	f := &fakeAdmin{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.paths = append(f.paths, r.Method+" "+r.URL.Path)
		f.origins = append(f.origins, r.Header.Get("Origin"))
		f.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeAdmin) addr() string { return strings.TrimPrefix(f.URL, "http://") }

func (f *fakeAdmin) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.paths)
}

func TestCLIUsesAdminAPIWhenCaddyRuns(t *testing.T) {
	dir := t.TempDir()
	vaultPath := filepath.Join(dir, "vault.db")
	pool := caddy.NewUsagePool()
	v := poolVault(t, pool, vaultPath) // open, and so locked: only the admin path can work
	admin := newFakeAdmin(t, serveAdmin(adminAPI{pool: pool}))
	cfg := writeCaddyfile(t, dir, admin.addr(), "\t\tvault "+vaultPath)
	auth := writeFile(t, dir, "auth.json", authJSON(t, "ada@example.com", "pro"))

	out, errOut := mustRun(t, "provision", "--config", cfg, "--email", "ada@example.com", "--auth-file", auth)
	if !keyLine.MatchString(out) || !strings.Contains(errOut, "using the admin API") {
		t.Fatalf("stdout %q\nstderr %s", out, errOut)
	}
	k, u, err := v.VerifyKey(strings.TrimSpace(out))
	if err != nil || u.Email != "ada@example.com" {
		t.Fatalf("key made through the admin API: %v", err)
	}
	if ti, err := v.TokenInfo(u.ID); err != nil || ti.PlanType != "pro" {
		t.Fatalf("login imported through the admin API: %v %+v", err, ti)
	}
	usersOut, _ := mustRun(t, "users", "list", "--config", cfg)
	if !strings.Contains(usersOut, "ada@example.com") {
		t.Fatalf("users list: %s", usersOut)
	}
	mustRun(t, "keys", "revoke", "--config", cfg, "--email", "ada@example.com", "--id", k.ID)
	if _, _, err := v.VerifyKey(strings.TrimSpace(out)); !errors.Is(err, vault.ErrKeyInvalid) {
		t.Fatalf("revoked through the admin API: %v", err)
	}
	_, errOut = mustRun(t, "users", "disable", "--config", cfg, "--email", "ada@example.com")
	if !strings.Contains(errOut, "disabled ada@example.com") {
		t.Fatalf("disable: %s", errOut)
	}
	_, _, err = runCLI(t, "", "keys", "list", "--config", cfg, "--email", "ghost@example.com")
	if err == nil || !strings.Contains(err.Error(), "no user with email ghost@example.com") {
		t.Fatalf("admin error not passed on: %v", err)
	}
	assertNoSecrets(t, dir, out, errOut, usersOut)

	reqs := admin.requests()
	for _, want := range []string{"GET /codex_proxy/vaults", "POST /codex_proxy/users", "POST /codex_proxy/keys", "DELETE /codex_proxy/keys/" + k.ID} {
		if !slices.Contains(reqs, want) {
			t.Fatalf("no %s in %q", want, reqs)
		}
	}
	for _, o := range admin.origins {
		if o != admin.URL {
			t.Fatalf("Origin %q, want %q (Caddy's admin checks it)", o, admin.URL)
		}
	}
}

func TestCLIFallsBackToFileWhenAdminLacksVault(t *testing.T) {
	for name, h := range map[string]http.Handler{
		"module without this vault": serveAdmin(adminAPI{pool: caddy.NewUsagePool()}),
		"no codex_proxy module":     http.NotFoundHandler(),
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			admin := newFakeAdmin(t, h)
			vaultPath := filepath.Join(dir, "vault.db")
			cfg := writeCaddyfile(t, dir, admin.addr(), "\t\tvault "+vaultPath)
			out, _ := mustRun(t, "provision", "--config", cfg, "--email", "ada@example.com")
			if !keyLine.MatchString(out) {
				t.Fatalf("stdout %q", out)
			}
			if reqs := admin.requests(); !slices.Equal(reqs, []string{"GET /codex_proxy/vaults"}) {
				t.Fatalf("admin requests %q", reqs)
			}
			if _, _, err := reopen(t, vaultPath).VerifyKey(strings.TrimSpace(out)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestCLISecretsFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	vaultPath := filepath.Join(dir, "vault.db")
	cfg := writeCaddyfile(t, dir, "off", "\t\tvault "+vaultPath+
		"\n\t\tencryption_key {env.CODEX_TEST_KEY}\n\t\tapi_key_pepper {env.CODEX_TEST_PEPPER}")

	t.Setenv("CODEX_TEST_KEY", "")
	t.Setenv("CODEX_TEST_PEPPER", testPepper)
	_, _, err := runCLI(t, "", "provision", "--config", cfg, "--email", "ada@example.com")
	if err == nil || !strings.Contains(err.Error(), "encryption_key is set in the config but expands to nothing") {
		t.Fatalf("unset env: %v", err)
	}

	t.Setenv("CODEX_TEST_KEY", testEncKey)
	out, errOut := mustRun(t, "provision", "--config", cfg, "--email", "ada@example.com")
	assertNoSecrets(t, dir, out, errOut)
	if _, err := os.Stat(filepath.Join(dir, vault.EncryptionKeyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("generated secrets although the config has them: %v", err)
	}
	v := openTestVault(t, vaultPath, testEncKey, testPepper)
	defer v.Close()
	if _, _, err := v.VerifyKey(strings.TrimSpace(out)); err != nil {
		t.Fatalf("key does not verify with the configured pepper: %v", err)
	}
}

func TestCLIAuthFileFromStdinAndBadFiles(t *testing.T) {
	dir := t.TempDir()
	vaultPath := filepath.Join(dir, "vault.db")
	cfg := writeCaddyfile(t, dir, "off", "\t\tvault "+vaultPath)

	bad := writeFile(t, dir, "bad.json", []byte(`{"OPENAI_API_KEY":"sk-123"}`))
	_, _, err := runCLI(t, "", "provision", "--config", cfg, "--email", "ada@example.com", "--auth-file", bad)
	if err == nil || !strings.Contains(err.Error(), "OpenAI API key") {
		t.Fatalf("api-key auth.json: %v", err)
	}
	if _, err := os.Stat(vaultPath); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a rejected auth.json still opened the vault")
	}

	out, errOut, err := runCLI(t, "\xef\xbb\xbf"+string(authJSON(t, "ada@example.com", "team")), "provision", "--config", cfg, "--email", "ada@example.com", "--auth-file", "-")
	if err != nil || !keyLine.MatchString(out) || !strings.Contains(errOut, "imported the ChatGPT login: team") {
		t.Fatalf("stdin auth.json: %v %q %s", err, out, errOut)
	}
}

func TestCLIConfigErrors(t *testing.T) {
	dir := t.TempDir()
	noHandler := writeFile(t, dir, "none.caddyfile", []byte("{\n\tadmin off\n}\n:8080 {\n\trespond ok\n}\n"))
	a, b := filepath.Join(dir, "a.db"), filepath.Join(dir, "b.db")
	two := writeFile(t, dir, "two.caddyfile", []byte(fmt.Sprintf(
		"{\n\tadmin off\n}\n:8080 {\n\tcodex_proxy {\n\t\tvault %s\n\t}\n}\n:8081 {\n\tcodex_proxy {\n\t\tvault %s\n\t}\n}\n", a, b)))

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no handler", []string{"users", "list", "--config", noHandler}, "no codex_proxy handler"},
		{"two vaults", []string{"users", "list", "--config", two}, "choose one with --vault"},
		{"unknown vault", []string{"users", "list", "--config", two, "--vault", filepath.Join(dir, "c.db")}, "no codex_proxy handler in the config uses the vault"},
		{"missing email", []string{"keys", "create", "--config", two}, `required flag(s) "email" not set`},
		{"stray argument", []string{"users", "list", "--config", two, "extra"}, "unknown command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := runCLI(t, "", tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) || out != "" {
				t.Fatalf("err %v, stdout %q; want an error containing %q", err, out, tc.want)
			}
		})
	}

	out, _ := mustRun(t, "provision", "--config", two, "--vault", b, "--email", "ada@example.com")
	if !keyLine.MatchString(out) {
		t.Fatalf("--vault: %q", out)
	}
	if _, err := os.Stat(a); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("--vault b touched a")
	}
}

// TestCommandRegistered pins the public command names and flags.
func TestCommandRegistered(t *testing.T) {
	reg, ok := caddycmd.Commands()["codex-proxy"]
	if !ok {
		t.Fatal("codex-proxy is not registered")
	}
	root := &cobra.Command{Use: "codex-proxy"}
	reg.CobraFunc(root)
	for _, tc := range []struct {
		path  []string
		flags []string
	}{
		{[]string{"provision"}, []string{"config", "adapter", "email", "display-name", "auth-file", "label"}},
		{[]string{"keys", "list"}, []string{"config", "adapter", "email"}},
		{[]string{"keys", "create"}, []string{"config", "adapter", "email", "label"}},
		{[]string{"keys", "revoke"}, []string{"config", "adapter", "email", "id"}},
		{[]string{"users", "list"}, []string{"config", "adapter"}},
		{[]string{"users", "disable"}, []string{"config", "adapter", "email"}},
		{[]string{"users", "enable"}, []string{"config", "adapter", "email"}},
	} {
		cmd, rest, err := root.Find(tc.path)
		if err != nil || len(rest) != 0 || cmd.Name() != tc.path[len(tc.path)-1] || cmd.RunE == nil {
			t.Fatalf("%v: not found (%v)", tc.path, err)
		}
		for _, f := range tc.flags {
			if cmd.Flags().Lookup(f) == nil {
				t.Errorf("%v has no --%s", tc.path, f)
			}
		}
	}
}
