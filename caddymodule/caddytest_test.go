package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// TestInCaddy runs the directive inside a real in-process Caddy (caddytest):
// Caddyfile adapted, handler provisioned into a server, the vault shared
// through the usage pool, a chat served to the official client.
func TestInCaddy(t *testing.T) {
	fake := codextest.New(t)
	tok := fake.AddAccount("acc-ct", "ct@example.com", "plus")
	path := filepath.Join(t.TempDir(), "vault.db")
	tester := caddytest.NewTester(t)
	tester.InitServer(fmt.Sprintf(`{
	skip_install_trust
	admin localhost:2999
	http_port 9080
	https_port 9443
	grace_period 1ns
}
http://localhost:9080 {
	codex_proxy {
		vault %s
		encryption_key 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
		api_key_pepper caddytest-pepper-0123456789
		upstream %s
		oauth_issuer %s
	}
	respond "not the API"
}`, path, fake.URL, fake.IssuerURL), "caddyfile")

	// Borrow the vault Caddy opened, the way the admin API does.
	pooled, loaded, err := vaults.LoadOrNew(path, func() (caddy.Destructor, error) {
		return nil, errors.New("caddy did not open the vault")
	})
	if err != nil || !loaded {
		t.Fatalf("vault not in the pool: loaded=%v err=%v", loaded, err)
	}
	v := pooled.(*pooledVault).Vault
	u, err := v.CreateUser("ct@example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := v.PutTokens(u.ID, vault.TokenBundle{IDToken: tok.IDToken, AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken}); err != nil {
		t.Fatal(err)
	}
	key, _, err := v.CreateKey(u.ID, "caddytest")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vaults.Delete(path); err != nil {
		t.Fatal(err)
	}

	// The dashboard serves its own pages ("/" is its landing page); other
	// paths outside /v1/ go to the next handler.
	tester.AssertGetResponse("http://localhost:9080/elsewhere", 200, "not the API")
	c := openai.NewClient(option.WithBaseURL("http://localhost:9080/v1/"), option.WithAPIKey(key),
		option.WithHTTPClient(tester.Client), option.WithMaxRetries(0))
	cc, err := c.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model:    "gpt-5.5-low",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("be brief"), openai.UserMessage("hi")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if cc.Choices[0].Message.Content == "" || cc.Model != "gpt-5.5-low" {
		t.Fatalf("completion: %s", cc.RawJSON())
	}
	up := fake.RequestsTo("/responses")
	if len(up) != 1 || up[0].JSON["model"] != "gpt-5.5" {
		t.Fatalf("upstream saw %+v", up)
	}
	if r, ok := up[0].JSON["reasoning"].(map[string]any); !ok || r["effort"] != "low" {
		t.Fatalf("effort suffix not mapped: %v", up[0].JSON["reasoning"])
	}
}
