package dashboard

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/keypolicy"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

func TestKeyDetailPolicyAndReset(t *testing.T) {
	e := newEnv(t)
	b := e.signIn("ada@example.com")
	u := e.user("ada@example.com")
	_, k, err := e.v.CreateKey(u.ID, "ci")
	if err != nil {
		t.Fatal(err)
	}
	// Two requests today, one of them failed.
	e.v.LogRequest(vault.LogRecord{Time: time.Now(), UserID: u.ID, KeyID: k.ID, RequestID: "r1", Model: "gpt-5.5", Status: 200, InputTokens: 600, OutputTokens: 400})
	e.v.LogRequest(vault.LogRecord{Time: time.Now(), UserID: u.ID, KeyID: k.ID, RequestID: "r2", Model: "gpt-5.5", Status: 502, ErrorCode: "upstream_error"})
	deadline := time.Now().Add(5 * time.Second)
	for {
		recs, _ := e.v.RecentRequests(u.ID, time.Time{}, 10, vault.StatusAll)
		if len(recs) == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}

	r := b.get("/keys/detail?id=" + k.ID)
	if r.status != http.StatusOK {
		t.Fatalf("detail: %d", r.status)
	}
	mustContain(t, r.body, "Usage now", `id="tokens-today">1,000`, "By day", "<td>2</td><td>1</td><td>1,000</td>", "Save limits", "Reset usage")

	// A bad value is refused with the form as submitted, nothing saved.
	r = b.post("/keys/policy", url.Values{"id": {k.ID}, "rpm": {"lots"}, "models": {"gpt-5.4-mini"}})
	if r.status != http.StatusBadRequest {
		t.Fatalf("bad policy: %d", r.status)
	}
	mustContain(t, r.body, "Not saved", `value="lots"`, `value="gpt-5.4-mini"`)
	if got, _ := e.v.GetKey(u.ID, k.ID); !got.Policy.IsZero() {
		t.Fatalf("bad form saved %+v", got.Policy)
	}

	// A good one is saved (empty fields set no limit) and applies.
	r = b.post("/keys/policy", url.Values{"id": {k.ID}, "tokens-per-day": {"1000"}, "models": {"gpt-5.4*"}, "max-effort": {"high"}, "expires": {"30d"}})
	if r.status != http.StatusSeeOther || r.location != "/keys/detail?id="+k.ID+"&msg=policy" {
		t.Fatalf("save: %d %q %s", r.status, r.location, r.body)
	}
	got, _ := e.v.GetKey(u.ID, k.ID)
	if got.Policy.TokensPerDay != 1000 || got.Policy.MaxEffort != "high" || len(got.Policy.Models) != 1 || got.Policy.RPM != 0 || got.Policy.Expires.IsZero() {
		t.Fatalf("saved policy %+v", got.Policy)
	}
	// 1,000 tokens used of 1,000: over budget, on the detail page and the list.
	mustContain(t, b.get("/keys/detail?id="+k.ID+"&msg=policy").body, "limits were saved", `id="key-badge">over budget`, `value="1000"`, `<option value="high" selected>`)
	mustContain(t, b.get("/keys").body, `<span class="pill pill-warn">over budget</span>`)

	// Reset: the key stays, its counts go, the badge goes.
	r = b.post("/keys/reset", url.Values{"id": {k.ID}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("reset: %d", r.status)
	}
	if got, _ := e.v.GetKey(u.ID, k.ID); e.v.KeyStatus(got).TokensToday.Used != 0 || got.Disabled {
		t.Fatalf("after reset: %+v", e.v.KeyStatus(got))
	}
	mustNotContain(t, b.get("/keys").body, "over budget")

	// Someone else's key: not found, for the page and both forms.
	mal := e.signIn("mallory@example.com")
	mal.get("/keys")
	for _, r := range []resp{
		mal.get("/keys/detail?id=" + k.ID),
		mal.post("/keys/policy", url.Values{"id": {k.ID}, "rpm": {"1"}}),
		mal.post("/keys/reset", url.Values{"id": {k.ID}}),
	} {
		if r.status != http.StatusNotFound {
			t.Fatalf("foreign key: %d", r.status)
		}
	}
	// Without the CSRF token the form is refused.
	if r := b.post("/keys/policy", url.Values{"id": {k.ID}, "csrf": {"forged"}, "rpm": {"1"}}); r.status == http.StatusSeeOther {
		t.Fatal("policy saved without a valid CSRF token")
	}
	if got, _ := e.v.GetKey(u.ID, k.ID); got.Policy.RPM != 0 {
		t.Fatal("forged form changed the policy")
	}
}

// TestKeyPolicyAccountPin: the dashboard refuses a pin to an account the
// user does not have, as the CLI does, and stores nothing; a pin to one of
// the user's accounts is saved, and a pin already stored may stay after
// its account was unlinked.
func TestKeyPolicyAccountPin(t *testing.T) {
	e := newEnv(t)
	b := e.signIn("ada@example.com")
	u := e.user("ada@example.com")
	own := e.link(t, u.ID, "acc-own")
	spare := e.link(t, u.ID, "acc-spare")
	e.signIn("mallory@example.com")
	foreign := e.link(t, e.user("mallory@example.com").ID, "acc-mallory")
	_, k, err := e.v.CreateKey(u.ID, "ci")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, pin string
		status    int
		stored    string // the pin stored afterwards
	}{
		{"unknown id", "nope-123", http.StatusBadRequest, ""},
		{"another user's account", foreign, http.StatusBadRequest, ""},
		{"own account", own, http.StatusSeeOther, own},
		{"unknown id keeps the old pin", "gone-1", http.StatusBadRequest, own},
		{"unpin", "", http.StatusSeeOther, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b.get("/keys/detail?id=" + k.ID)
			r := b.post("/keys/policy", url.Values{"id": {k.ID}, "account": {tc.pin}, "rpm": {"5"}})
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.status == http.StatusBadRequest {
				mustContain(t, r.body, "Not saved: no linked ChatGPT account with this id", "Save limits")
			}
			if got, _ := e.v.GetKey(u.ID, k.ID); got.Policy.Account != tc.stored {
				t.Fatalf("stored pin %q, want %q", got.Policy.Account, tc.stored)
			}
		})
	}

	// A pin whose account was unlinked later stays when another field is
	// saved (the form does not send the pin), as the CLI allows.
	if _, err := e.v.UpdateKeyPolicy(u.ID, k.ID, keypolicy.Policy{Account: spare}); err != nil {
		t.Fatal(err)
	}
	if err := e.v.RemoveAccount(u.ID, spare); err != nil {
		t.Fatal(err)
	}
	b.get("/keys/detail?id=" + k.ID)
	if r := b.post("/keys/policy", url.Values{"id": {k.ID}, "rpm": {"7"}}); r.status != http.StatusSeeOther {
		t.Fatalf("saving with a stale pin: %d %s", r.status, r.body)
	}
	if got, _ := e.v.GetKey(u.ID, k.ID); got.Policy.Account != spare || got.Policy.RPM != 7 {
		t.Fatalf("policy %+v", got.Policy)
	}
}
