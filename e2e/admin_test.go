package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os/user"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
	"github.com/usemysub/caddy-codex-proxy/internal/oidctest"
)

// TestAdminBrowserJourney drives Chromium through the admin pages of the
// built caddy: an admin named by the Caddyfile's admins option signs in by
// SSO, finds a member in the users list, disables them, and the member's
// API key is refused with 403 at once; the member, signed in, gets a 403 on
// every admin URL. Every step is then on /admin/audit with its actor: the
// admin's views and actions, the member's SSO sign-in, and a key created
// with the CLI (through the running Caddy's admin API) as the CLI's.
func TestAdminBrowserJourney(t *testing.T) {
	chromium := chromiumPath()
	fake := newFake(t, codextest.Options{})
	idp := oidctest.Start(t)
	idp.AddUser(oidctest.User{Email: "lead@example.com", EmailVerified: true})
	idp.AddUser(oidctest.User{Email: "ada@example.com", EmailVerified: true})
	p := newProxy(t, fake, proxySpec{extra: fmt.Sprintf(`signup open
		admins Lead@Example.com
		oidc %s {
			client_id %s
			client_secret {env.OIDC_CLIENT_SECRET}
			email_links off
		}`, idp.Issuer, oidctest.ClientID)})
	p.env = append(p.env, "OIDC_CLIENT_SECRET="+oidctest.ClientSecret)
	idp.AllowRedirect(p.httpsURL + "/login/oidc/callback")
	if chromium == "" {
		needTool(t, "Chromium", "apt-get install -y chromium")
	}
	key, _ := p.provision(t, "ada@example.com", p.authFile(t, fake, "acc-ada", "ada@example.com", "plus"))
	p.start(t)

	models := func() int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, p.httpURL+"/v1/models", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := models(); code != http.StatusOK {
		t.Fatalf("the member's key before: %d", code)
	}

	signIn := func(b *browser, email string) {
		t.Helper()
		b.step("sign in by SSO as "+email, chromedp.Navigate(p.httpsURL+"/login"), chromedp.WaitVisible(chromedp.CSS("#sso-button")),
			chromedp.Click(chromedp.CSS("#sso-button")), chromedp.WaitVisible(chromedp.CSS("#username")),
			chromedp.SendKeys(chromedp.CSS("#username"), email),
			chromedp.Click(chromedp.CSS("#idp-submit")), chromedp.WaitNotPresent(chromedp.CSS("#idp-submit")),
			chromedp.WaitReady(chromedp.CSS("main")))
	}

	// The member first: every admin page is a 403 for them.
	member := newBrowser(t, chromium)
	signIn(member, "ada@example.com")
	member.step("open /admin as a member", chromedp.Navigate(p.httpsURL+"/admin"), chromedp.WaitReady(chromedp.CSS("main")))
	if body := member.text("body"); !strings.Contains(body, "This page is for the site's admins") || strings.Contains(body, "lead@example.com") {
		t.Fatalf("/admin as a member:\n%s", body)
	}

	admin := newBrowser(t, chromium)
	signIn(admin, "lead@example.com")
	admin.step("open the users list", chromedp.Navigate(p.httpsURL+"/admin"), chromedp.WaitVisible(chromedp.CSS("#users")))
	if body := admin.text("#users"); !strings.Contains(body, "ada@example.com") || !strings.Contains(body, "lead@example.com") {
		t.Fatalf("users list:\n%s", body)
	}
	// The search is a GET form: wait for the results page itself, or the
	// click below lands on the list that is being replaced.
	admin.step("search for the member", chromedp.SendKeys(chromedp.CSS("#q"), "ada"), chromedp.Click(chromedp.CSS("#search")))
	admin.waitLoaded("q=ada")
	admin.step("see the results", chromedp.WaitVisible(chromedp.CSS("#users a.user-link")))
	if body := admin.text("#users"); !strings.Contains(body, "ada@example.com") || strings.Contains(body, "lead@example.com") {
		t.Fatalf("search results for ada:\n%s", body)
	}
	admin.step("open the member", chromedp.Click(chromedp.CSS("#users a.user-link")), chromedp.WaitVisible(chromedp.CSS("#disable-user")))
	admin.step("disable the member", chromedp.Click(chromedp.CSS("#disable-user")), chromedp.WaitVisible(chromedp.CSS("#enable-user")))
	if state := admin.text("#user-state"); state != "disabled" {
		t.Fatalf("user state after disabling: %q", state)
	}
	if code := models(); code != http.StatusForbidden {
		t.Fatalf("the disabled member's key: %d, want 403 at once", code)
	}
	if out, _ := p.cli(t, "users", "list"); !strings.Contains(out, "ada@example.com") || !strings.Contains(strings.ToLower(out), "disabled") {
		t.Fatalf("the CLI does not show the member disabled:\n%s", out)
	}

	admin.step("enable the member again", chromedp.Click(chromedp.CSS("#enable-user")), chromedp.WaitVisible(chromedp.CSS("#disable-user")))
	if code := models(); code != http.StatusOK {
		t.Fatalf("the enabled member's key: %d, want 200", code)
	}

	adminSignupJourney(t, p, idp, admin, signIn)
	adminUsageJourney(t, p, admin, key)
	adminAuditJourney(t, p, admin, member)
}

// adminSignupJourney: the admin closes sign-up from /admin/signup over
// the Caddyfile's "signup open"; a new address is refused by SSO and the
// CLI (through the admin API) shows the override; after the admin clears
// it, the Caddyfile's policy lets the address in.
func adminSignupJourney(t *testing.T, p *proxy, idp *oidctest.Provider, admin *browser, signIn func(*browser, string)) {
	t.Helper()
	idp.AddUser(oidctest.User{Email: "newbie@example.com", EmailVerified: true})
	admin.step("open the sign-up page", chromedp.Navigate(p.httpsURL+"/admin/signup"), chromedp.WaitVisible(chromedp.CSS("#signup-save")))
	if src := admin.text("#signup-source"); !strings.Contains(src, "From this site’s Caddyfile") {
		t.Fatalf("the policy's source before: %q", src)
	}
	admin.step("close sign-up", chromedp.SetValue(chromedp.CSS("#signup-mode"), "closed"), chromedp.Click(chromedp.CSS("#signup-save")))
	admin.waitLoaded("msg=signup")
	if got := admin.text("#signup-inforce"); !strings.HasPrefix(got, "Closed") {
		t.Fatalf("in force after closing: %q", got)
	}
	if src := admin.text("#signup-source"); !strings.Contains(src, "by lead@example.com") {
		t.Fatalf("the override's source: %q", src)
	}
	if out, _ := p.cli(t, "signup", "show"); !strings.HasPrefix(out, "signup closed") || !strings.Contains(out, "lead@example.com") {
		t.Fatalf("signup show:\n%s", out)
	}
	newbie := newBrowser(t, chromiumPath())
	signIn(newbie, "newbie@example.com")
	if body := newbie.text("body"); !strings.Contains(body, "No account for this address") {
		t.Fatalf("a new address signed up while closed:\n%s", body)
	}
	admin.step("clear the override", chromedp.Click(chromedp.CSS("#signup-clear")))
	admin.waitLoaded("msg=signupcleared")
	newbie = newBrowser(t, chromiumPath())
	signIn(newbie, "newbie@example.com")
	if loc := newbie.location(); !strings.HasPrefix(loc, p.httpsURL+"/onboarding") {
		t.Fatalf("after clearing, the Caddyfile's open sign-up did not let the address in: at %s\n%s", loc, newbie.text("body"))
	}
}

// adminUsageJourney: after one chat by the member, the admin's usage page
// shows their key and the model, and the CSV export, fetched with the
// page's session, is an attachment naming them.
func adminUsageJourney(t *testing.T, p *proxy, admin *browser, key string) {
	t.Helper()
	chatOnce(t, p, key)
	deadline := time.Now().Add(10 * time.Second)
	for {
		admin.step("open the usage page", chromedp.Navigate(p.httpsURL+"/admin/usage?period=today"), chromedp.WaitVisible(chromedp.CSS("#export-keys")))
		if body := admin.text("main"); strings.Contains(body, "ada@example.com") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the member's request is not on the usage page:\n%s", admin.text("main"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(admin.ctx, 30*time.Second)
	defer cancel()
	got, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`fetch(document.querySelector("#export-keys").href).then(async r =>
		[String(r.status), r.headers.get("Content-Disposition") || "", await r.text()])`, chromedp.EvalAwaitPromise))
	if err != nil || len(got) != 3 {
		t.Fatalf("fetching the export: %v %q", err, got)
	}
	if got[0] != "200" || !strings.HasPrefix(got[1], `attachment; filename="usage-by-key-today-`) ||
		!strings.HasPrefix(got[2], "from_utc,to_utc,user_email,user_id,key_id,key_label") || !strings.Contains(got[2], "ada@example.com") || strings.Contains(got[2], key) {
		t.Fatalf("the export: %q", got)
	}
}

// adminAuditJourney: every step of the journey is on /admin/audit with
// its actor, a key created with the CLI (through the running Caddy's
// admin API) as the CLI's; filters work; the member sees the admin's
// actions on their Activity page and cannot open the audit log.
func adminAuditJourney(t *testing.T, p *proxy, admin, member *browser) {
	t.Helper()
	// The audit log: the CLI's action too, then each entry with its actor.
	if out, errOut := p.cli(t, "keys", "create", "--email", "ada@example.com", "--label", "from the CLI"); !strings.HasPrefix(out, "cpk_") {
		t.Fatalf("keys create: %q %s", out, errOut)
	}
	admin.step("open the audit log", chromedp.Navigate(p.httpsURL+"/admin/audit"), chromedp.WaitVisible(chromedp.CSS("#audit")))
	rows := auditRows(admin)
	for _, want := range []string{
		"key.created|CLI via the admin API (OS user " + osUserName(t) + ")",
		"signup-policy.changed|lead@example.com (admin)",
		"user.enabled|lead@example.com (admin)",
		"user.disabled|lead@example.com (admin)",
		"admin.viewed-user|lead@example.com (admin)",
		"sign-in|lead@example.com",
		"sign-in|ada@example.com",
	} {
		if !strings.Contains(rows, want+"\n") {
			t.Fatalf("the audit log has no %q:\n%s", want, rows)
		}
	}
	if i, j := strings.Index(rows, "user.enabled|"), strings.Index(rows, "user.disabled|"); i > j {
		t.Fatalf("not newest first:\n%s", rows)
	}
	admin.step("filter by action", chromedp.SetValue(chromedp.CSS("#action"), "user.disabled"), chromedp.Click(chromedp.CSS("#audit-filter")))
	admin.waitLoaded("action=user.disabled")
	admin.step("see the filtered log", chromedp.WaitVisible(chromedp.CSS("#audit")))
	if rows := auditRows(admin); rows != "user.disabled|lead@example.com (admin)\n" {
		t.Fatalf("filtered by user.disabled:\n%s", rows)
	}
	if out, _ := p.cli(t, "audit", "list", "--action", "key.created", "--user", "ada@example.com"); !strings.Contains(out, "cli via admin-api") ||
		!strings.Contains(out, "from the CLI") {
		t.Fatalf("audit list:\n%s", out)
	}
	// The member: their Activity page shows the admin's actions; the
	// audit log is not theirs to read.
	member.step("open the activity page", chromedp.Navigate(p.httpsURL+"/activity"), chromedp.WaitVisible(chromedp.CSS("#audit")))
	if rows := auditRows(member); !strings.Contains(rows, "user.disabled|lead@example.com (admin)\n") {
		t.Fatalf("the member's activity:\n%s", rows)
	}
	member.step("open /admin/audit as a member", chromedp.Navigate(p.httpsURL+"/admin/audit"), chromedp.WaitReady(chromedp.CSS("main")))
	if body := member.text("body"); !strings.Contains(body, "This page is for the site's admins") || strings.Contains(body, "user.disabled") {
		t.Fatalf("/admin/audit as a member:\n%s", body)
	}
}

// auditRows is the audit table on b's page as "action|actor" lines.
func auditRows(b *browser) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[string](`Array.from(document.querySelectorAll("#audit tbody tr")).
		map(r => r.dataset.action + "|" + r.querySelector(".audit-actor").textContent.trim() + "\n").join("")`))
	if err != nil {
		b.t.Fatalf("reading the audit table: %v", err)
	}
	return rows
}

// osUserName is who runs the tests, as the CLI records itself.
func osUserName(t *testing.T) string {
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return u.Username
}
