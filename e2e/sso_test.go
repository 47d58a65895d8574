package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
	"github.com/usemysub/caddy-codex-proxy/internal/oidctest"
)

// TestSSOBrowserJourney drives Chromium through single sign-on against the
// built caddy, over HTTPS (tls internal, so the cookies are __Host-), at a
// real OpenID provider on loopback (internal/oidctest): the sign-in page
// shows only the SSO button (email links off), a new user signs in at the
// provider and lands in the dashboard with their account created (the
// admin claim logged), signs out, and an address outside the allowed
// domains is refused with a page that says so. The magic-link endpoint is
// gone.
func TestSSOBrowserJourney(t *testing.T) {
	chromium := chromiumPath()
	fake := newFake(t, codextest.Options{})
	idp := oidctest.Start(t)
	idp.AddUser(oidctest.User{Email: "lead@example.com", EmailVerified: true, Groups: []string{"staff", "codex-admins"}})
	idp.AddUser(oidctest.User{Email: "eve@elsewhere.org", EmailVerified: true})
	p := newProxy(t, fake, proxySpec{extra: fmt.Sprintf(`signup open
		oidc %s {
			client_id %s
			client_secret {env.OIDC_CLIENT_SECRET}
			domains example.com
			admin_claim groups codex-admins
			email_links off
			label "Sign in with Example ID"
		}`, idp.Issuer, oidctest.ClientID)})
	p.env = append(p.env, "OIDC_CLIENT_SECRET="+oidctest.ClientSecret)
	idp.AllowRedirect(p.httpsURL + "/login/oidc/callback")
	idp.AllowRedirect(p.httpURL + "/login/oidc/callback")
	if chromium == "" {
		needTool(t, "Chromium", "apt-get install -y chromium")
	}
	p.start(t)

	// The magic-link form's endpoint is gone.
	resp, err := http.PostForm(p.httpURL+"/login", url.Values{"email": {"lead@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("POST /login with email links off: %d, want 404", resp.StatusCode)
	}

	b := newBrowser(t, chromium)
	bctx, text, location, step := b.ctx, b.text, b.location, b.step
	signIn := func(email string) (loc, body string) {
		t.Helper()
		step("open the sign-in page", chromedp.Navigate(p.httpsURL+"/login"), chromedp.WaitVisible(chromedp.CSS("#sso-button")))
		if page := text("body"); !strings.Contains(page, "Sign in with Example ID") || strings.Contains(page, "Email me a sign-in link") {
			t.Fatalf("sign-in page with email links off:\n%s", page)
		}
		step("press the SSO button", chromedp.Click(chromedp.CSS("#sso-button")), chromedp.WaitVisible(chromedp.CSS("#username")))
		step("sign in at the provider as "+email, chromedp.SendKeys(chromedp.CSS("#username"), email),
			chromedp.Click(chromedp.CSS("#idp-submit")), chromedp.WaitNotPresent(chromedp.CSS("#idp-submit")),
			chromedp.WaitReady(chromedp.CSS("main")))
		return location(), text("body")
	}

	loc, body := signIn("lead@example.com")
	if !strings.HasPrefix(loc, p.httpsURL+"/onboarding") || !strings.Contains(body, "lead@example.com") {
		t.Fatalf("after SSO at %s:\n%s", loc, body)
	}
	cctx, ccancel := context.WithTimeout(bctx, 30*time.Second)
	res, err := chromedp.Call(cctx, network.GetCookies, network.GetCookiesParams{URLs: []string{p.httpsURL}})
	ccancel()
	if err != nil {
		t.Fatal(err)
	}
	cookies := res.Cookies
	var session bool
	for _, c := range cookies {
		switch c.Name {
		case "__Host-codex_session":
			session = c.Secure && c.HTTPOnly && c.Path == "/" && c.Domain == "localhost"
		case "__Host-codex_oidc", "codex_oidc":
			t.Fatalf("the sign-in's binding cookie outlived its callback: %+v", c)
		}
	}
	if !session {
		t.Fatalf("no __Host- session cookie: %+v", cookies)
	}
	if logs := p.logs.String(); !strings.Contains(logs, `"admin_by_claim":true`) {
		t.Fatalf("the admin claim did not mark the session:\n%s", logs)
	}
	if out, _ := p.cli(t, "users", "list"); !strings.Contains(out, "lead@example.com") {
		t.Fatalf("the new user is not listed:\n%s", out)
	}

	step("sign out", chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)), chromedp.WaitVisible(chromedp.CSS("#sso-button")))
	if body := text("body"); !strings.Contains(body, "You are signed out") {
		t.Fatalf("after sign-out:\n%s", body)
	}

	loc, body = signIn("eve@elsewhere.org")
	if !strings.Contains(body, "This address cannot sign in here") || !strings.Contains(body, "example.com") {
		t.Fatalf("a domain not allowed, at %s:\n%s", loc, body)
	}
	if out, _ := p.cli(t, "users", "list"); strings.Contains(out, "eve@elsewhere.org") {
		t.Fatalf("a refused address got an account:\n%s", out)
	}
}
