package dashboard

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/codex"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// TestChatGPTAccounts: add a second account from the ChatGPT page, see
// both with their own windows, reorder, choose the policy, remove.
func TestChatGPTAccounts(t *testing.T) {
	var store *QuotaStore
	e := newEnv(t, func(c *Config) { store = NewVaultQuotaStore(c.Vault); c.Quotas = store })
	b := e.signIn("ada@example.com")
	u := e.user("ada@example.com")
	b.get("/chatgpt")
	r := b.post("/chatgpt/authjson", url.Values{"authjson": {string(authJSON(t, e, "acc-personal"))}})
	if r.status != http.StatusSeeOther || r.location != "/chatgpt?msg=linked" {
		t.Fatalf("first link: %d %q", r.status, r.location)
	}
	b.get("/chatgpt")
	r = b.post("/chatgpt/authjson", url.Values{"from": {"add"}, "authjson": {string(authJSON(t, e, "acc-work"))}})
	if r.status != http.StatusSeeOther || r.location != "/chatgpt?msg=added" {
		t.Fatalf("add: %d %q %s", r.status, r.location, r.body)
	}
	accts, err := e.v.Accounts(u.ID)
	if err != nil || len(accts) != 2 || accts[0].AccountID != "acc-personal" || accts[1].AccountID != "acc-work" {
		t.Fatalf("accounts: %+v %v", accts, err)
	}
	now := e.clock.Now()
	store.SetAccount(u.ID, accts[0].ID, &codex.RateLimits{Primary: &codex.RateWindow{UsedPercent: 97, WindowMinutes: 300, ResetAt: now.Add(time.Hour)}})
	store.SetAccount(u.ID, accts[1].ID, &codex.RateLimits{Primary: &codex.RateWindow{UsedPercent: 12, WindowMinutes: 300, ResetAt: now.Add(time.Hour)}})
	e.v.MarkExhausted(u.ID, accts[0].ID, now.Add(time.Hour))
	page := b.get("/chatgpt?msg=added")
	mustContain(t, page.body, "Your ChatGPT accounts", "Account added", `id="account-`+accts[0].ID+`"`, `id="account-`+accts[1].ID+`"`,
		"97% used", "12% used", "At its limit until", "Use later", "Use earlier", "Add another account")
	if strings.Index(page.body, "97% used") > strings.Index(page.body, "12% used") {
		t.Fatal("accounts not in their order")
	}
	// The overview shows both accounts' windows side by side.
	overview := b.get("/overview").body
	mustContain(t, overview, "Manage accounts", "97% used", "12% used", "at its limit",
		"acc-personal@chatgpt.example", "acc-work@chatgpt.example")
	// Each account's bar has its own element id and is labelled by its own
	// label, on both pages: two accounts' 5-hour windows must not share one.
	for _, body := range []string{page.body, overview} {
		for _, a := range accts {
			id := "quota-" + a.ID + "-primary"
			mustContain(t, body, `<meter id="`+id+`"`, `aria-labelledby="`+id+`-label"`, `<span id="`+id+`-label"`)
		}
	}
	// Move the work account first.
	r = b.post("/chatgpt/accounts/move", url.Values{"id": {accts[1].ID}, "dir": {"up"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("move: %d %s", r.status, r.body)
	}
	if got, _ := e.v.Accounts(u.ID); got[0].ID != accts[1].ID {
		t.Fatalf("after moving: %+v", got)
	}
	b.get("/chatgpt")
	if r = b.post("/chatgpt/accounts/move", url.Values{"id": {accts[1].ID}, "dir": {"up"}}); r.status != http.StatusBadRequest {
		t.Fatalf("moving the first up: %d", r.status)
	}
	b.get("/chatgpt")
	if r = b.post("/chatgpt/accounts/policy", url.Values{"policy": {"most-remaining"}}); r.status != http.StatusSeeOther {
		t.Fatalf("policy: %d", r.status)
	}
	if got, _ := e.v.User(u.ID); got.AccountPolicy != vault.PolicyMostRemaining {
		t.Fatalf("policy: %q", got.AccountPolicy)
	}
	// Another user cannot touch these accounts.
	m := e.signIn("mallory@example.com")
	m.get("/chatgpt")
	if r = m.post("/chatgpt/accounts/remove", url.Values{"id": {accts[0].ID}}); r.status != http.StatusNotFound {
		t.Fatalf("mallory removing ada's account: %d", r.status)
	}
	b.get("/chatgpt")
	if r = b.post("/chatgpt/accounts/remove", url.Values{"id": {accts[0].ID}}); r.status != http.StatusSeeOther {
		t.Fatalf("remove: %d", r.status)
	}
	if got, _ := e.v.Accounts(u.ID); len(got) != 1 || got[0].ID != accts[1].ID {
		t.Fatalf("after removing: %+v", got)
	}
	// Without the CSRF token, nothing happens.
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/chatgpt/accounts/remove", strings.NewReader("id="+accts[1].ID))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if r := b.do(req); r.status < 400 {
		t.Fatalf("remove without CSRF: %d", r.status)
	}
	if got, _ := e.v.Accounts(u.ID); len(got) != 1 {
		t.Fatal("removed without CSRF")
	}
}
