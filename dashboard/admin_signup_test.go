package dashboard

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/internal/pgtest"
	"github.com/usemysub/caddy-codex-proxy/vault"
	"github.com/usemysub/caddy-codex-proxy/vault/engine"
)

// closedAdminEnv is newAdminEnv on a site whose Caddyfile says signup
// closed (its two users exist before it closes).
func closedAdminEnv(t *testing.T) *adminEnv {
	t.Helper()
	a := newAdminEnv(t)
	a.d.cfg.Signup = SignupPolicy{Mode: SignupClosed}
	return a
}

// instance is another dashboard on v with its own mailbox and server, as
// a second instance of the site.
func instance(t *testing.T, v *vault.Vault, signup SignupPolicy) *env {
	t.Helper()
	e := &env{t: t, mail: newMailbox(), clock: &clock{t: time.Now()}, logs: &logBuffer{}, v: v}
	d, err := NewDashboard(Config{Vault: v, Mailer: e.mail, Signup: signup, LoginPerIP: 1000, LoginPerEmail: 1000})
	if err != nil {
		t.Fatal(err)
	}
	e.d, e.srv = d, httptest.NewServer(d)
	t.Cleanup(func() { e.srv.Close(); _ = d.Close(context.Background()) })
	return e
}

// asksForLink asks instance e for a sign-in link for email and reports
// whether one was mailed.
func asksForLink(t *testing.T, e *env, email string) bool {
	t.Helper()
	b := e.browser()
	b.get("/login")
	if r := b.login(url.Values{"email": {email}}); r.status != http.StatusOK {
		t.Fatalf("login %s: %d", email, r.status)
	}
	select {
	case <-e.mail.ch:
		return true
	case <-time.After(300 * time.Millisecond):
		return false
	}
}

// An admin sets the sign-up policy on one instance and another instance
// on the same vault, whose Caddyfile says closed, lets the domain in at
// once; clearing it gives each instance its Caddyfile's policy back.
func TestAdminSignupOverride(t *testing.T) {
	a := closedAdminEnv(t)
	other := instance(t, a.v, SignupPolicy{Mode: SignupClosed})

	r := a.admin.get("/admin/signup")
	if r.status != http.StatusOK {
		t.Fatalf("GET /admin/signup: %d", r.status)
	}
	mustContain(t, r.body, `id="signup-inforce"`, "Closed: only existing and invited users", "From this site’s Caddyfile", `id="tab-signup"`)
	mustNotContain(t, r.body, `id="signup-clear"`)
	if asksForLink(t, other, "new@example.org") {
		t.Fatal("closed sign-up mailed a link to a new address")
	}

	r = a.admin.post("/admin/signup", url.Values{"mode": {"domains"}, "domains": {"Example.org, @team.example.net"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("set: %d %s", r.status, r.body)
	}
	r = a.admin.follow(r)
	mustContain(t, r.body, "Saved: every instance", "Addresses at example.org, team.example.net may sign up",
		"Set for every instance on this vault by admin@example.com", "which says: Closed", `id="signup-clear"`)

	// The other instance (shares the vault's cache on one bbolt file; see
	// TestAdminSignupAcrossACluster for two vaults) applies it.
	if !asksForLink(t, other, "new@example.org") {
		t.Fatal("the other instance did not apply the override")
	}
	if asksForLink(t, other, "eve@evil.com") {
		t.Fatal("an address outside the domains got a link")
	}
	if r = a.admin.get("/admin"); r.status != http.StatusOK {
		t.Fatalf("users list: %d", r.status)
	}
	mustContain(t, r.body, `id="tab-signup"`, `id="tab-usage"`)

	a.admin.get("/admin/signup")
	r = a.admin.follow(a.admin.post("/admin/signup", url.Values{"clear": {"1"}}))
	mustContain(t, r.body, "Cleared: each site’s Caddyfile decides", "From this site’s Caddyfile")
	if asksForLink(t, other, "late@example.org") {
		t.Fatal("after clearing, the other instance still let the domain in")
	}
	open := instance(t, a.v, SignupPolicy{Mode: SignupOpen})
	if !asksForLink(t, open, "late@example.org") {
		t.Fatal("after clearing, an instance whose Caddyfile says open refused")
	}
}

// A refused policy keeps the form's values, says why with a 400 and
// changes nothing.
func TestAdminSignupRefusesBadPolicies(t *testing.T) {
	a := closedAdminEnv(t)
	for _, tc := range []struct {
		form url.Values
		want string
	}{
		{url.Values{"mode": {"domains"}, "domains": {""}}, "Not saved: sign-up mode domains needs at least one domain"},
		{url.Values{"mode": {"domains"}, "domains": {"a@b.com"}}, "Not saved: &#34;a@b.com&#34; is not a domain"},
		{url.Values{"mode": {"sometimes"}}, "Not saved: unknown sign-up mode &#34;sometimes&#34; (open, closed or domains)"},
		{url.Values{"mode": {""}}, "Not saved: a sign-up mode is needed"},
	} {
		a.admin.get("/admin/signup")
		r := a.admin.post("/admin/signup", tc.form)
		if r.status != http.StatusBadRequest {
			t.Fatalf("%v: %d, want 400", tc.form, r.status)
		}
		mustContain(t, r.body, tc.want)
	}
	if _, ok, _ := a.v.SignupOverride(context.Background()); ok {
		t.Fatal("a refused form set an override")
	}
}

// Members get 403 on the page and the form (with their own valid CSRF
// token); the admin's form needs the admin's token.
func TestAdminSignupIsAdminOnlyAndNeedsCSRF(t *testing.T) {
	a := closedAdminEnv(t)
	if r := a.member.get("/admin/signup"); r.status != http.StatusForbidden {
		t.Fatalf("GET as a member: %d", r.status)
	}
	a.member.get("/overview")
	memberCSRF := csrfOf(a.member.last)
	if r := a.member.post("/admin/signup", url.Values{"mode": {"open"}}); r.status != http.StatusForbidden {
		t.Fatalf("POST as a member: %d", r.status)
	}
	a.admin.get("/admin/signup")
	for name, csrf := range map[string]string{"none": "", "the member's": memberCSRF, "made up": "x" + csrfOf(a.admin.last)} {
		if r := a.admin.post("/admin/signup", url.Values{"mode": {"open"}, "csrf": {csrf}}); r.status != http.StatusForbidden {
			t.Fatalf("%s token: %d, want 403", name, r.status)
		}
	}
	if anon := a.browser(); anon.post("/admin/signup", url.Values{"mode": {"open"}}).status != http.StatusForbidden {
		// No session: the CSRF check refuses first (no token to match).
		t.Fatal("a visitor's post was not refused")
	}
	if _, ok, _ := a.v.SignupOverride(context.Background()); ok {
		t.Fatal("a refused post set an override")
	}
}

// Two instances on one PostgreSQL, each with its own vault: the override
// an admin sets on A is in force on B within B's settings TTL, and its
// clearing too.
func TestAdminSignupAcrossACluster(t *testing.T) {
	pg := pgtest.Start(t)
	dsn := pg.NewDB(t)
	var vs [2]*vault.Vault
	for i := range vs {
		v, err := engine.Open(context.Background(), dsn, vault.Options{EncryptionKeys: []string{testEncKey}, Pepper: testPepper, SettingsTTL: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = v.Close() })
		vs[i] = v
	}
	if _, err := vs[0].CreateUser("admin@example.com", ""); err != nil {
		t.Fatal(err)
	}
	a := instance(t, vs[0], SignupPolicy{Mode: SignupClosed})
	a.d.admins = map[string]bool{"admin@example.com": true}
	b := instance(t, vs[1], SignupPolicy{Mode: SignupClosed})

	admin := a.signIn("admin@example.com")
	admin.get("/admin/signup")
	if r := admin.post("/admin/signup", url.Values{"mode": {"open"}}); r.status != http.StatusSeeOther {
		t.Fatalf("set on A: %d %s", r.status, r.body)
	}
	waitFor(t, func() bool { return asksForLink(t, b, "new@example.com") })
	admin.get("/admin/signup")
	if r := admin.post("/admin/signup", url.Values{"clear": {"1"}}); r.status != http.StatusSeeOther {
		t.Fatalf("clear on A: %d", r.status)
	}
	waitFor(t, func() bool { return !asksForLink(t, b, "other@example.com") })
}
