package caddymodule

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/usemysub/caddy-codex-proxy/ops"
)

func TestCLIKeyPolicy(t *testing.T) {
	dir := t.TempDir()
	vaultPath := filepath.Join(dir, "data", "vault.db")
	cfg := writeCaddyfile(t, dir, "off", "\t\tvault "+vaultPath)
	auth := writeFile(t, dir, "auth.json", authJSON(t, "ada@example.com", "plus"))
	mustRun(t, "provision", "--config", cfg, "--email", "ada@example.com", "--auth-file", auth)

	out, errOut := mustRun(t, "keys", "create", "-c", cfg, "--email", "ada@example.com", "--label", "ci",
		"--expires", "7d", "--models", "gpt-5.4-mini,GPT-5.5-codex", "--rpm", "10", "--concurrency", "4",
		"--tokens-per-day", "100_000", "--tokens-per-week", "1000000", "--max-effort", "high")
	if !keyLine.MatchString(out) {
		t.Fatalf("keys create with a policy: stdout %q, stderr %s", out, errOut)
	}
	list := func() ops.KeysResult {
		t.Helper()
		js, _ := mustRun(t, "keys", "list", "-c", cfg, "--email", "ada@example.com", "--json")
		var res ops.KeysResult
		if err := json.Unmarshal([]byte(js), &res); err != nil {
			t.Fatalf("%v\n%s", err, js)
		}
		return res
	}
	res := list()
	var ci ops.KeyView
	for _, k := range res.Keys {
		if k.Label == "ci" {
			ci = k
		}
	}
	p := ci.Policy
	if strings.Join(p.Models, ",") != "gpt-5.4-mini,gpt-5.5" || p.RPM != 10 || p.Concurrency != 4 || p.TokensPerDay != 100_000 ||
		p.TokensPerWeek != 1_000_000 || p.MaxEffort != "high" || time.Until(p.Expires) < 6*24*time.Hour {
		t.Fatalf("policy in keys list --json: %+v", p)
	}
	if ci.Usage == nil || ci.Usage.TokensToday.Limit != 100_000 || ci.Usage.RequestsPerMinute.Limit != 10 {
		t.Fatalf("usage in keys list --json: %+v", ci.Usage)
	}
	table, _ := mustRun(t, "keys", "list", "-c", cfg, "--email", "ada@example.com")
	if !strings.Contains(table, "10 rpm") || !strings.Contains(table, "100000 tokens/day") {
		t.Fatalf("keys list table:\n%s", table)
	}

	// Update changes only the flags given; 0, never and '' clear.
	_, errOut = mustRun(t, "keys", "update", "-c", cfg, "--email", "ada@example.com", "--id", ci.ID, "--rpm", "0", "--expires", "never", "--models", "")
	if !strings.Contains(errOut, "updated key") {
		t.Fatalf("update stderr: %s", errOut)
	}
	for _, k := range list().Keys {
		if k.ID == ci.ID {
			if k.Policy.RPM != 0 || !k.Policy.Expires.IsZero() || len(k.Policy.Models) != 0 || k.Policy.TokensPerDay != 100_000 || k.Policy.MaxEffort != "high" {
				t.Fatalf("after update: %+v", k.Policy)
			}
		}
	}
	_, errOut = mustRun(t, "keys", "update", "-c", cfg, "--email", "ada@example.com", "--id", ci.ID, "--reset-usage")
	if !strings.Contains(errOut, "reset the usage") {
		t.Fatalf("reset stderr: %s", errOut)
	}

	for _, bad := range [][]string{
		{"--rpm", "lots"},
		{"--expires", "2001-01-01"},
		{"--max-effort", "turbo"},
		{"--models", "GPT 5"},
		{}, // nothing to change
	} {
		args := append([]string{"keys", "update", "-c", cfg, "--email", "ada@example.com", "--id", ci.ID}, bad...)
		if _, stderr, err := runCLI(t, "", args...); err == nil {
			t.Fatalf("%v accepted; stderr %s", bad, stderr)
		}
	}
	if _, _, err := runCLI(t, "", "keys", "update", "-c", cfg, "--email", "ada@example.com", "--id", "nope", "--rpm", "1"); err == nil {
		t.Fatal("unknown key id accepted")
	}
}

func TestAdminKeyPolicy(t *testing.T) {
	pool := caddy.NewUsagePool()
	v := poolVault(t, pool, filepath.Join(t.TempDir(), "vault.db"))
	h := serveAdmin(adminAPI{pool: pool})
	if _, err := v.CreateUser("ada@example.com", "Ada"); err != nil {
		t.Fatal(err)
	}
	var k ops.CreatedKey
	rec := call(t, h, "POST", "/codex_proxy/keys", ops.KeyRequest{Email: "ada@example.com", Policy: map[string]string{"rpm": "5"}}, &k)
	if rec.Code != http.StatusCreated || k.Policy.RPM != 5 {
		t.Fatalf("create: %d %+v", rec.Code, k.Key)
	}
	rec = call(t, h, "POST", "/codex_proxy/keys", ops.KeyRequest{Email: "ada@example.com", Policy: map[string]string{"rpm": "-5"}}, nil)
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("bad policy on create: %d", rec.Code)
	}
	var up ops.KeyUpdateResult
	rec = call(t, h, "POST", "/codex_proxy/keys/"+k.ID+"/policy", ops.KeyUpdateRequest{Email: "ada@example.com", Policy: map[string]string{"tokens-per-day": "1000"}}, &up)
	if rec.Code != http.StatusOK || up.Key.Policy.RPM != 5 || up.Key.Policy.TokensPerDay != 1000 || up.Key.Usage == nil {
		t.Fatalf("update: %d %+v", rec.Code, up)
	}
	rec = call(t, h, "POST", "/codex_proxy/keys/"+k.ID+"/policy", ops.KeyUpdateRequest{Email: "ada@example.com", Policy: map[string]string{"colour": "red"}}, nil)
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("unknown field: %d", rec.Code)
	}
	rec = call(t, h, "POST", "/codex_proxy/keys/nope/policy", ops.KeyUpdateRequest{Email: "ada@example.com", Policy: map[string]string{"rpm": "1"}}, nil)
	if rec.Code != http.StatusNotFound {
		t.Fatalf("unknown key: %d", rec.Code)
	}
	rec = call(t, h, "POST", "/codex_proxy/keys/"+k.ID+"/reset-usage?email=ada@example.com", nil, &up)
	if rec.Code != http.StatusOK || up.Key.UsageReset.IsZero() {
		t.Fatalf("reset: %d %+v", rec.Code, up)
	}
	if rec := call(t, h, "GET", "/codex_proxy/keys/"+k.ID+"/policy", nil, nil); rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("GET policy: %d", rec.Code)
	}
}
