package caddymodule

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/usemysub/caddy-codex-proxy/ops"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// accountsScript runs the accounts commands against cfg: provision links
// the first account, accounts add a second, then order, policy, a key pin
// and remove. It returns the ids, first then second.
func accountsScript(t *testing.T, cfg, dir string) (first, second string) {
	t.Helper()
	plus := writeFile(t, dir, "plus.json", authJSON(t, "ada@example.com", "plus"))
	pro := writeFile(t, dir, "pro.json", authJSON(t, "ada-work@example.com", "pro"))
	mustRun(t, "provision", "--config", cfg, "--email", "ada@example.com", "--auth-file", plus)
	out, errOut := mustRun(t, "accounts", "add", "--config", cfg, "--email", "ada@example.com", "--auth-file", pro, "--label", "work")
	second = strings.TrimSpace(out)
	if len(second) != 12 || !strings.Contains(errOut, "position 2") {
		t.Fatalf("accounts add: stdout %q stderr %s", out, errOut)
	}
	var res ops.AccountsResult
	js, _ := mustRun(t, "accounts", "list", "--config", cfg, "--email", "ada@example.com", "--json")
	if err := json.Unmarshal([]byte(js), &res); err != nil || len(res.Accounts) != 2 || res.Policy != vault.PolicyPreferOrder {
		t.Fatalf("accounts list --json: %v\n%s", err, js)
	}
	first = res.Accounts[0].ID
	if res.Accounts[0].PlanType != "plus" || res.Accounts[1].ID != second || res.Accounts[1].Label != "work" {
		t.Fatalf("accounts: %+v", res.Accounts)
	}
	table, _ := mustRun(t, "accounts", "order", "--config", cfg, "--email", "ada@example.com", "--ids", second+","+first)
	if strings.Index(table, second) > strings.Index(table, first) || !strings.Contains(table, "work") {
		t.Fatalf("accounts order:\n%s", table)
	}
	if _, _, err := runCLI(t, "", "accounts", "order", "--config", cfg, "--email", "ada@example.com", "--ids", "nope"); err == nil {
		t.Fatal("order with an unknown id accepted")
	}
	if _, errOut := mustRun(t, "accounts", "policy", "--config", cfg, "--email", "ada@example.com", "most-remaining"); !strings.Contains(errOut, "most-remaining") {
		t.Fatalf("accounts policy: %s", errOut)
	}
	if _, _, err := runCLI(t, "", "accounts", "policy", "--config", cfg, "--email", "ada@example.com", "round-robin"); err == nil {
		t.Fatal("unknown policy accepted")
	}
	// A key pinned to an account; a pin to an unknown account is refused.
	var keys ops.KeysResult
	js, _ = mustRun(t, "keys", "list", "--config", cfg, "--email", "ada@example.com", "--json")
	if err := json.Unmarshal([]byte(js), &keys); err != nil || len(keys.Keys) != 1 {
		t.Fatalf("keys: %v %s", err, js)
	}
	if _, errOut := mustRun(t, "keys", "update", "--config", cfg, "--email", "ada@example.com", "--id", keys.Keys[0].ID, "--account", first); !strings.Contains(errOut, "account "+first) {
		t.Fatalf("keys update --account: %s", errOut)
	}
	if _, _, err := runCLI(t, "", "keys", "update", "--config", cfg, "--email", "ada@example.com", "--id", keys.Keys[0].ID, "--account", "nope"); err == nil || !strings.Contains(err.Error(), "no linked ChatGPT account") {
		t.Fatalf("pin to an unknown account: %v", err)
	}
	if _, errOut := mustRun(t, "accounts", "remove", "--config", cfg, "--email", "ada@example.com", "--id", second); !strings.Contains(errOut, "1 left") {
		t.Fatalf("accounts remove: %s", errOut)
	}
	if _, _, err := runCLI(t, "", "accounts", "remove", "--config", cfg, "--email", "ada@example.com", "--id", second); err == nil {
		t.Fatal("removing twice succeeded")
	}
	return first, second
}

func TestCLIAccountsWithCaddyStopped(t *testing.T) {
	dir := t.TempDir()
	vaultPath := filepath.Join(dir, "vault.db")
	cfg := writeCaddyfile(t, dir, "off", "\t\tvault "+vaultPath)
	first, _ := accountsScript(t, cfg, dir)
	v := reopen(t, vaultPath)
	u, _ := v.UserByEmail("ada@example.com")
	accts, err := v.Accounts(u.ID)
	if err != nil || len(accts) != 1 || accts[0].ID != first || u.AccountPolicy != vault.PolicyMostRemaining {
		t.Fatalf("after the script: %+v %v policy %q", accts, err, u.AccountPolicy)
	}
	keys, _ := v.ListKeys(u.ID)
	if keys[0].Policy.Account != first {
		t.Fatalf("pin: %q", keys[0].Policy.Account)
	}
}

func TestCLIAccountsThroughAdminAPI(t *testing.T) {
	dir := t.TempDir()
	vaultPath := filepath.Join(dir, "vault.db")
	pool := caddy.NewUsagePool()
	v := poolVault(t, pool, vaultPath)
	admin := newFakeAdmin(t, serveAdmin(adminAPI{pool: pool}))
	cfg := writeCaddyfile(t, dir, admin.addr(), "\t\tvault "+vaultPath)
	first, second := accountsScript(t, cfg, dir)
	u, _ := v.UserByEmail("ada@example.com")
	if accts, _ := v.Accounts(u.ID); len(accts) != 1 || accts[0].ID != first {
		t.Fatalf("accounts: %+v", accts)
	}
	reqs := admin.requests()
	for _, want := range []string{"POST /codex_proxy/accounts", "GET /codex_proxy/accounts", "POST /codex_proxy/accounts/order",
		"POST /codex_proxy/accounts/policy", "DELETE /codex_proxy/accounts/" + second} {
		if !slices.Contains(reqs, want) {
			t.Fatalf("no %s in %q", want, reqs)
		}
	}
}
