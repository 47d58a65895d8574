package dashboard

import (
	"testing"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// link links the fake's ChatGPT account acc to the user as one more
// account and returns its id.
func (e *env) link(t *testing.T, userID, acc string) string {
	t.Helper()
	tok := e.fake.AddAccount(acc, acc+"@chatgpt.example", "plus")
	a, err := e.v.AddAccount(userID, vault.TokenBundle{IDToken: tok.IDToken, AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, Label: acc})
	if err != nil {
		t.Fatal(err)
	}
	return a.ID
}
