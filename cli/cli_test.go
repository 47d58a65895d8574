package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/usemysub/caddy-codex-proxy/claims"
	"github.com/usemysub/caddy-codex-proxy/ops"
	"github.com/usemysub/caddy-codex-proxy/vault"
	"github.com/usemysub/caddy-codex-proxy/vault/bolt"
	"github.com/usemysub/caddy-codex-proxy/vault/engine"
)

const (
	testEncKey = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	testPepper = "pepper-for-tests-only-0123456789"
)

// keyLine is all a key-printing command may write on standard output.
var keyLine = regexp.MustCompile(`^cpk_[A-Za-z0-9_-]{43}\n$`)

// fakeHost stands in for caddymodule: one bbolt vault with fixed
// secrets, and optionally the admin endpoint of a "running Caddy".
type fakeHost struct {
	path     string
	admin    string
	endpoint ops.Endpoint
	locked   bool
}

func (h fakeHost) Locate(Selection) (Location, error) {
	return Location{
		Vault: h.path, Shown: h.path, Admin: h.admin, Endpoint: h.endpoint,
		Open: func(timeout time.Duration, _ io.Writer) (*vault.Vault, error) {
			if h.locked {
				return nil, fmt.Errorf("opening the vault %s: %w", h.path, vault.ErrLocked)
			}
			return engine.Open(context.Background(), h.path, vault.Options{EncryptionKeys: []string{testEncKey}, Pepper: testPepper, OpenTimeout: timeout})
		},
	}, nil
}
func (fakeHost) Expand(s string) string             { return s }
func (fakeHost) Describe(l string) (bool, string)   { return strings.HasPrefix(l, "postgres://"), l }
func (fakeHost) GeneratedKey(string) (string, bool) { return "", false }
func (fakeHost) OpenStore(_ context.Context, l string, d time.Duration) (vault.Store, error) {
	return bolt.Open(l, bolt.Options{Timeout: d})
}

// run runs `codex-proxy <args>` over h.
func run(t *testing.T, h Host, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	c := &CLI{Stdout: &out, Stderr: &errOut, Stdin: strings.NewReader(""), OpenTimeout: 200 * time.Millisecond, Host: h}
	root := &cobra.Command{Use: "codex-proxy", SilenceUsage: true, SilenceErrors: true}
	c.Register(root)
	root.SetArgs(args)
	root.SetOut(&errOut)
	root.SetErr(&errOut)
	err = root.Execute()
	return out.String(), errOut.String(), err
}

// TestHelpFromTheTree checks the help lists every command group once,
// accounts and vault included: it is generated from the tree.
func TestHelpFromTheTree(t *testing.T) {
	root := &cobra.Command{Use: "codex-proxy"}
	(&CLI{}).Register(root)
	var names []string
	for _, c := range root.Commands() {
		names = append(names, c.Name())
	}
	if want := []string{"accounts", "audit", "keys", "provision", "signup", "users", "vault"}; !slices.Equal(names, want) {
		t.Fatalf("commands %q, want %q", names, want)
	}
	if u := (&CLI{}).Usage(); u != "accounts|audit|keys|provision|signup|users|vault ..." {
		t.Fatalf("usage %q", u)
	}
	var help bytes.Buffer
	root.SetOut(&help)
	root.SetArgs([]string{"--help"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if c := strings.Count(help.String(), "\n  "+n+" "); c != 1 {
			t.Errorf("help lists %s %d times:\n%s", n, c, help.String())
		}
	}
	for group, subs := range map[string][]string{
		"users":    {"list", "disable", "enable"},
		"keys":     {"list", "create", "update", "revoke"},
		"accounts": {"add", "list", "remove", "order", "policy"},
		"vault":    {"migrate", "backup"},
		"signup":   {"show", "set", "clear"},
		"audit":    {"list"},
	} {
		for _, s := range subs {
			cmd, rest, err := root.Find([]string{group, s})
			if err != nil || len(rest) != 0 || cmd.Name() != s || cmd.RunE == nil {
				t.Errorf("%s %s: not found (%v)", group, s, err)
			}
		}
	}
}

// TestCommandsWithoutCaddy runs the commands over a fake host, on the file
// and through an admin API, with no Caddy in the test binary.
func TestCommandsWithoutCaddy(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vault.db")
	for _, mode := range []string{"file", "admin api"} {
		t.Run(mode, func(t *testing.T) {
			h := fakeHost{path: path}
			if mode == "admin api" {
				v, err := engine.Open(context.Background(), path, vault.Options{EncryptionKeys: []string{testEncKey}, Pepper: testPepper})
				if err != nil {
					t.Fatal(err)
				}
				defer v.Close()
				srv := httptest.NewServer(ops.NewAdminHandler(single{path, v}, nil))
				defer srv.Close()
				h.admin = strings.TrimPrefix(srv.URL, "http://")
				h.endpoint = ops.Endpoint{Network: "tcp", Address: h.admin}
				h.locked = true // only the admin API can work
			}
			email := strings.ReplaceAll(mode, " ", "") + "@example.com"
			out, errOut, err := run(t, h, "provision", "--email", email, "--display-name", "Ada")
			if err != nil || !keyLine.MatchString(out) || !strings.Contains(errOut, "created user "+email) {
				t.Fatalf("provision: %v %q %s", err, out, errOut)
			}
			if mode == "admin api" && !strings.Contains(errOut, "using the admin API of the Caddy at "+h.admin) {
				t.Fatalf("not through the admin API: %s", errOut)
			}
			js, _, err := run(t, h, "keys", "list", "--email", email, "--json")
			var keys ops.KeysResult
			if err != nil || json.Unmarshal([]byte(js), &keys) != nil || len(keys.Keys) != 1 {
				t.Fatalf("keys list: %v %s", err, js)
			}
			if _, errOut, err := run(t, h, "keys", "update", "--email", email, "--id", keys.Keys[0].ID, "--rpm", "10"); err != nil || !strings.Contains(errOut, "10 rpm") {
				t.Fatalf("keys update: %v %s", err, errOut)
			}
			if table, _, err := run(t, h, "keys", "list", "--email", email); err != nil || !strings.Contains(table, "10 rpm") {
				t.Fatalf("keys table: %v\n%s", err, table)
			}
			if table, _, err := run(t, h, "users", "list"); err != nil || !strings.Contains(table, email) || !strings.Contains(table, "not linked") {
				t.Fatalf("users list: %v\n%s", err, table)
			}
			if _, errOut, err := run(t, h, "users", "disable", "--email", email); err != nil || !strings.Contains(errOut, "disabled "+email) {
				t.Fatalf("disable: %v %s", err, errOut)
			}
			if _, _, err := run(t, h, "keys", "list", "--email", "ghost@example.com"); err == nil || err.Error() != "no user with email ghost@example.com" {
				t.Fatalf("unknown user: %v", err)
			}
			if _, _, err := run(t, h, "keys", "update", "--email", email, "--id", keys.Keys[0].ID); err == nil || !strings.Contains(err.Error(), "nothing to change") {
				t.Fatalf("update without changes: %v", err)
			}
			checkAuditCommand(t, h, email, mode == "admin api")
		})
	}
}

// single is an ops.Vaults with one vault.
type single struct {
	path string
	v    *vault.Vault
}

func (s single) Paths() []string                              { return []string{s.path} }
func (s single) Acquire(string) (*vault.Vault, func(), error) { return s.v, func() {}, nil }

// TestLockedVaultSaysWhy checks a held file, with no admin API holding it,
// names the cause and why the admin API was not used.
func TestLockedVaultSaysWhy(t *testing.T) {
	h := fakeHost{path: filepath.Join(t.TempDir(), "vault.db"), locked: true}
	out, _, err := run(t, h, "users", "list")
	want := "the vault " + h.path + " is locked by another process — is Caddy running with a different admin address? (the admin endpoint is off in the config)"
	if err == nil || err.Error() != want || out != "" {
		t.Fatalf("err %v, want %q", err, want)
	}
}

// TestAccountsCommandsWithoutCaddy links, orders and unlinks accounts.
func TestAccountsCommandsWithoutCaddy(t *testing.T) {
	dir := t.TempDir()
	h := fakeHost{path: filepath.Join(dir, "vault.db")}
	run(t, h, "provision", "--email", "ada@example.com")
	jwt := claims.Encode(claims.Claims{AccountID: "acc-pro", PlanType: "pro", Email: "ada@example.com", Expiry: time.Now().Add(time.Hour)})
	auth, _ := json.Marshal(map[string]any{"tokens": map[string]any{"id_token": jwt, "access_token": jwt, "refresh_token": "rt", "account_id": "acc-pro"}})
	file := filepath.Join(dir, "auth.json")
	if err := writeFile(file, auth); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := run(t, h, "accounts", "add", "--email", "ada@example.com", "--auth-file", file, "--label", "work")
	id := strings.TrimSpace(out)
	if err != nil || len(id) != 12 || !strings.Contains(errOut, "position 1") {
		t.Fatalf("accounts add: %v %q %s", err, out, errOut)
	}
	if table, errOut, err := run(t, h, "accounts", "list", "--email", "ada@example.com"); err != nil || !strings.Contains(table, id) || !strings.Contains(errOut, "policy: prefer-order") {
		t.Fatalf("accounts list: %v\n%s%s", err, table, errOut)
	}
	if _, errOut, err := run(t, h, "accounts", "policy", "--email", "ada@example.com", "most-remaining"); err != nil || !strings.Contains(errOut, "now uses most-remaining") {
		t.Fatalf("accounts policy: %v %s", err, errOut)
	}
	if _, _, err := run(t, h, "accounts", "order", "--email", "ada@example.com", "--ids", " , "); err == nil || err.Error() != "--ids names no account" {
		t.Fatalf("empty order: %v", err)
	}
	if _, errOut, err := run(t, h, "accounts", "remove", "--email", "ada@example.com", "--id", id); err != nil || !strings.Contains(errOut, "0 left") {
		t.Fatalf("accounts remove: %v %s", err, errOut)
	}
}

// writeFile writes a private file.
func writeFile(path string, data []byte) error { return os.WriteFile(path, data, 0o600) }

// checkAuditCommand reads back, with `audit list`, what the commands of
// TestCommandsWithoutCaddy did to email: as a table, JSON and CSV, each
// entry the CLI's with this process's OS user (through the admin API
// too, marked as via it).
func checkAuditCommand(t *testing.T, h Host, email string, viaAPI bool) {
	t.Helper()
	js, _, err := run(t, h, "audit", "list", "--user", email, "--since", "1h", "--json")
	var entries []vault.AuditEntry
	if err != nil || json.Unmarshal([]byte(js), &entries) != nil {
		t.Fatalf("audit list --json: %v %s", err, js)
	}
	var got []string
	for _, e := range entries {
		got = append(got, string(e.Action)+" "+e.Outcome)
		via := ""
		if viaAPI {
			via = vault.ActorAdminAPI
		}
		if e.Actor.Kind != vault.ActorCLI || e.Actor.Via != via || e.Actor.OSUser != osUser() || e.Target.Email != email {
			t.Fatalf("entry %+v: want the CLI via %q, os user %s", e, via, osUser())
		}
	}
	want := []string{"user.disabled ok", "key.policy-changed ok", "key.created ok", "user.created ok"}
	if !slices.Equal(got, want) {
		t.Fatalf("audit list: %q, want %q", got, want)
	}
	table, _, err := run(t, h, "audit", "list", "--action", "user.disabled")
	if err != nil || !strings.Contains(table, "user.disabled") || !strings.Contains(table, "(os user "+osUser()+")") || strings.Contains(table, "key.created") {
		t.Fatalf("audit list --action: %v\n%s", err, table)
	}
	csv, _, err := run(t, h, "audit", "list", "--limit", "2", "--csv")
	if lines := strings.Split(strings.TrimSpace(csv), "\n"); err != nil || len(lines) != 3 || !strings.HasPrefix(lines[0], "time,actor,") {
		t.Fatalf("audit list --csv --limit 2: %v\n%s", err, csv)
	}
	if _, _, err := run(t, h, "audit", "list", "--since", "yesterday"); err == nil || !strings.Contains(err.Error(), `--since: "yesterday" is neither a time`) {
		t.Fatalf("a bad --since: %v", err)
	}
}
