package e2e

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"

	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
)

// TestProvisionThroughCLI provisions users the way the README tells an
// operator to: `caddy codex-proxy provision --auth-file ~/.codex/auth.json`
// with Caddy stopped (the vault file is opened directly) and with Caddy
// running (the command goes through the admin API), then uses the printed
// keys; `keys revoke` makes a key useless at once, and a made-up key is
// refused.
func TestProvisionThroughCLI(t *testing.T) {
	t.Parallel()
	fake := newFake(t, codextest.Options{})
	p := newProxy(t, fake, proxySpec{})

	// Caddy stopped: the vault file is opened by the command itself.
	adaKey, stderr := p.provision(t, "ada@example.com", p.authFile(t, fake, "acc-ada", "ada@example.com", "plus"))
	if strings.Contains(stderr, "using the admin API") {
		t.Fatalf("provision with Caddy stopped claims to use the admin API:\n%s", stderr)
	}
	for _, want := range []string{"created user ada@example.com", "imported the ChatGPT login"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("provision (stopped) stderr lacks %q:\n%s", want, stderr)
		}
	}

	p.start(t)

	// Caddy running: the same command goes through its admin API, as the
	// running Caddy holds the vault's file lock.
	bobKey, stderr := p.provision(t, "bob@example.com", p.authFile(t, fake, "acc-bob", "bob@example.com", "pro"))
	if !strings.Contains(stderr, "using the admin API of the Caddy at "+p.admin) {
		t.Fatalf("provision with Caddy running did not use the admin API:\n%s", stderr)
	}
	// Provisioning an existing user again adds a key.
	adaKey2, stderr := p.provision(t, "ada@example.com", "")
	if !strings.Contains(stderr, "already exists") {
		t.Errorf("second provision of ada: %s", stderr)
	}
	if adaKey2 == adaKey {
		t.Fatal("provision printed the same key twice")
	}

	for name, key := range map[string]string{"ada (stopped)": adaKey, "bob (running)": bobKey, "ada again": adaKey2} {
		c := p.openaiClient(t, p.httpURL, key, nil)
		cc, err := streamText(withTimeout(t), c, "hi from "+name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := cc.Choices[0].Message.Content; !strings.Contains(got, "hi from "+name) {
			t.Fatalf("%s: got %q", name, got)
		}
	}
	// Each user's requests went out with their own ChatGPT account.
	accounts := map[string]bool{}
	for _, r := range fake.RequestsTo("/responses") {
		accounts[r.Header.Get("ChatGPT-Account-ID")] = true
	}
	if !accounts["acc-ada"] || !accounts["acc-bob"] {
		t.Fatalf("upstream accounts used: %v", accounts)
	}

	out, _ := p.cli(t, "users", "list", "--json")
	var users struct {
		Users []struct {
			Email      string `json:"email"`
			ActiveKeys int    `json:"active_keys"`
			ChatGPT    *struct {
				AccountID string `json:"account_id"`
			} `json:"chatgpt"`
		} `json:"users"`
	}
	if err := json.Unmarshal([]byte(out), &users); err != nil {
		t.Fatalf("users list --json: %v\n%s", err, out)
	}
	if len(users.Users) != 2 {
		t.Fatalf("users list: %s", out)
	}
	for _, u := range users.Users {
		if u.ChatGPT == nil {
			t.Errorf("%s has no linked login: %s", u.Email, out)
		}
	}

	// Revoke ada's first key through the CLI (admin API): it stops working,
	// her second key does not.
	out, _ = p.cli(t, "keys", "list", "--email", "ada@example.com", "--json")
	var keys struct {
		Keys []struct {
			ID     string `json:"id"`
			Prefix string `json:"prefix"`
		} `json:"keys"`
	}
	if err := json.Unmarshal([]byte(out), &keys); err != nil {
		t.Fatalf("keys list --json: %v\n%s", err, out)
	}
	revoked := ""
	for _, k := range keys.Keys {
		if k.Prefix != "" && strings.HasPrefix(adaKey, k.Prefix) {
			revoked = k.ID
		}
	}
	if revoked == "" || len(keys.Keys) != 2 {
		t.Fatalf("cannot tell ada's first key in: %s", out)
	}
	p.cli(t, "keys", "revoke", "--email", "ada@example.com", "--id", revoked)

	for name, key := range map[string]string{"revoked": adaKey, "made up": "cpk_" + strings.Repeat("x", 40), "not a proxy key": "sk-test"} {
		c := p.openaiClient(t, p.httpURL, key, nil)
		_, err := c.Chat.Completions.New(withTimeout(t), chatParams("x"))
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusUnauthorized || apiErr.Code != "invalid_api_key" {
			t.Fatalf("%s key: want 401 invalid_api_key, got %v", name, err)
		}
	}
	if _, err := streamText(withTimeout(t), p.openaiClient(t, p.httpsURL, adaKey2, p.httpsClient(t)), "still here"); err != nil {
		t.Fatalf("ada's other key after the revocation: %v", err)
	}
}
