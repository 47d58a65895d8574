package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/ratelimit"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

func TestMagicLinkSignIn(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Signup = SignupPolicy{Mode: SignupClosed} })
	if _, err := e.v.CreateUser("Ada@Example.com", "Ada"); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	r := b.get("/login")
	if r.status != 200 || csrfOf(r.body) == "" {
		t.Fatalf("login page: %d", r.status)
	}
	r = b.login(url.Values{"email": {" ada@EXAMPLE.com "}})
	mustContain(t, r.body, "Check your email", "ada@example.com", "15 minutes")
	mustNotContain(t, r.body, "login/confirm") // no dev link
	msg := e.mail.wait(t)
	if msg.To != "ada@example.com" || !strings.Contains(msg.Subject, "Sign in") || msg.HTML == "" {
		t.Fatalf("mail: %+v", msg)
	}
	link := linkIn(t, msg.Text)
	if !strings.HasPrefix(link, e.srv.URL+"/login/confirm?token=") {
		t.Fatalf("link %q not built from the request host", link)
	}
	mustContain(t, msg.HTML, html.EscapeString(link))

	// Opening the link (as a mail scanner would, twice) does not use it.
	for range 2 {
		r = e.browser().get(link)
		if r.status != 200 {
			t.Fatalf("confirm page: %d", r.status)
		}
		mustContain(t, r.body, "Confirm sign-in", `name="token"`, "Sign in as ada@example.com")
	}
	r = b.get(link)
	r = b.post("/login/confirm", url.Values{"token": {tokenOf(t, link)}})
	if r.status != http.StatusSeeOther || r.location != "/onboarding" {
		t.Fatalf("confirm: %d %q", r.status, r.location)
	}
	var sc *http.Cookie
	for _, c := range b.c.Jar.Cookies(mustURL(t, e.srv.URL)) {
		if c.Name == "codex_session" {
			sc = c
		}
	}
	if sc == nil {
		t.Fatal("no session cookie (plain http drops the __Host- prefix)")
	}
	// Cookie attributes as sent.
	setCookie := strings.Join(r.header.Values("Set-Cookie"), "\n")
	for _, want := range []string{"codex_session=", "HttpOnly", "SameSite=Lax", "Path=/", "Max-Age="} {
		if !strings.Contains(setCookie, want) {
			t.Fatalf("Set-Cookie %q lacks %q", setCookie, want)
		}
	}
	if strings.Contains(setCookie, "Secure") || strings.Contains(setCookie, "__Host-") {
		t.Fatalf("plain http cookie: %q", setCookie)
	}
	r = b.get("/onboarding")
	mustContain(t, r.body, "Get started", "ada@example.com", "Link your ChatGPT account")

	// The link is single use.
	b2 := e.browser()
	if r = b2.get(link); r.status != http.StatusBadRequest {
		t.Fatalf("used link page: %d", r.status)
	}
	mustContain(t, r.body, "can no longer be used")
	b2.get("/login")
	r = b2.post("/login/confirm", url.Values{"token": {tokenOf(t, link)}})
	if r.status != http.StatusBadRequest {
		t.Fatalf("second use: %d", r.status)
	}
	mustContain(t, r.body, "can no longer be used")

	// Sign out ends the session.
	r = b.post("/logout", nil)
	if r.status != http.StatusSeeOther || r.location != "/login?msg=signedout" {
		t.Fatalf("logout: %d %q", r.status, r.location)
	}
	if _, err := e.v.SessionUser(sc.Value); err == nil {
		t.Fatal("session still valid after sign-out")
	}
	r = b.get("/overview")
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location, "/login?next=") {
		t.Fatalf("after sign-out: %d %q", r.status, r.location)
	}
}

func TestMagicLinkExpires(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.get("/login")
	b.login(url.Values{"email": {"bob@example.com"}})
	link := linkIn(t, e.mail.wait(t).Text)
	e.clock.Advance(16 * time.Minute)
	r := b.get(link)
	if r.status != http.StatusBadRequest {
		t.Fatalf("expired link page: %d", r.status)
	}
	mustContain(t, r.body, "can no longer be used")
	b.get("/login")
	r = b.post("/login/confirm", url.Values{"token": {tokenOf(t, link)}})
	if r.status != http.StatusBadRequest {
		t.Fatalf("expired link: %d", r.status)
	}
	if _, err := e.v.UserByEmail("bob@example.com"); err == nil {
		t.Fatal("expired link created the user")
	}
}

func TestSessionExpires(t *testing.T) {
	e := newEnv(t)
	b := e.signIn("ada@example.com")
	if r := b.get("/onboarding"); r.status != 200 {
		t.Fatalf("%d", r.status)
	}
	e.clock.Advance(DefaultSessionTTL + time.Minute)
	if r := b.get("/onboarding"); r.status != http.StatusSeeOther {
		t.Fatalf("expired session still works: %d", r.status)
	}
}

func TestSameAnswerForUnknownEmail(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Signup = SignupPolicy{Mode: SignupClosed} })
	if _, err := e.v.CreateUser("known@example.com", ""); err != nil {
		t.Fatal(err)
	}
	answer := func(email string) (int, string) {
		b := e.browser()
		b.get("/login")
		r := b.login(url.Values{"email": {email}})
		body := strings.ReplaceAll(r.body, email, "EMAIL")
		body = csrfRE.ReplaceAllString(body, "CSRF")
		return r.status, body
	}
	s1, known := answer("known@example.com")
	e.mail.wait(t)
	s2, unknown := answer("unknown@example.com")
	e.mail.none(t)
	if s1 != s2 || known != unknown {
		t.Fatalf("answers differ: %d vs %d\n%s\n---\n%s", s1, s2, known, unknown)
	}
	if _, err := e.v.UserByEmail("unknown@example.com"); err == nil {
		t.Fatal("closed sign-up created a user")
	}
}

func TestSignupPolicies(t *testing.T) {
	request := func(e *env, email string) {
		b := e.browser()
		b.get("/login")
		if r := b.login(url.Values{"email": {email}}); r.status != 200 {
			t.Fatalf("%s: %d", email, r.status)
		}
	}
	t.Run("open", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.Signup = SignupPolicy{Mode: SignupOpen} })
		e.signIn("new@anywhere.org")
		e.user("new@anywhere.org")
	})
	t.Run("closed", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.Signup = SignupPolicy{Mode: SignupClosed} })
		request(e, "new@example.com")
		e.mail.none(t)
		// A CLI-created user may sign in.
		if _, err := e.v.CreateUser("cli@example.com", ""); err != nil {
			t.Fatal(err)
		}
		e.signIn("cli@example.com")
	})
	t.Run("domains", func(t *testing.T) {
		e := newEnv(t, func(c *Config) {
			c.Signup = SignupPolicy{Mode: SignupDomains, Domains: []string{"example.com", "@Team.example.org"}}
		})
		request(e, "eve@evil.com")
		request(e, "eve@sub.example.com")
		request(e, "eve@example.com.evil.com")
		e.mail.none(t)
		e.signIn("ada@EXAMPLE.com")
		e.user("ada@example.com")
		e.signIn("bob@team.example.org")
		e.user("bob@team.example.org")
	})
	t.Run("policy checked again at confirmation", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.Signup = SignupPolicy{Mode: SignupOpen} })
		b := e.browser()
		b.get("/login")
		b.login(url.Values{"email": {"late@example.com"}})
		link := linkIn(t, e.mail.wait(t).Text)
		e.d.cfg.Signup = SignupPolicy{Mode: SignupClosed}
		b.get(link)
		if r := b.post("/login/confirm", url.Values{"token": {tokenOf(t, link)}}); r.status != http.StatusForbidden {
			t.Fatalf("closed at confirmation: %d", r.status)
		}
	})
	for _, bad := range []SignupPolicy{{Mode: "maybe"}, {Mode: SignupDomains}, {Mode: SignupOpen, Domains: []string{"x.com"}}, {Mode: SignupDomains, Domains: []string{"not a domain"}}} {
		if _, err := NewDashboard(Config{Vault: newEnv(t).v, Signup: bad}); err == nil {
			t.Errorf("policy %+v accepted", bad)
		}
	}
}

func TestCSRF(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.get("/login")
	for name, form := range map[string]url.Values{
		"missing": {"email": {"a@example.com"}, "csrf": {""}},
		"wrong":   {"email": {"a@example.com"}, "csrf": {"not-the-token-not-the-token-not-the-token"}},
	} {
		if r := b.login(form); r.status != http.StatusForbidden {
			t.Errorf("%s token: %d", name, r.status)
		}
	}
	// A fresh visitor without the cookie cannot post either.
	if r := e.browser().post("/login", url.Values{"email": {"a@example.com"}, "csrf": {"x"}}); r.status != http.StatusForbidden {
		t.Errorf("no cookie: %d", r.status)
	}
	// Cross-site posts are refused even with a valid token.
	page := b.get("/login").body
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/login", strings.NewReader(url.Values{"email": {"a@example.com"}, "csrf": {csrfOf(page)}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	if r := b.do(req); r.status != http.StatusForbidden {
		t.Errorf("cross-origin: %d", r.status)
	}
	req, _ = http.NewRequest(http.MethodPost, e.srv.URL+"/login", strings.NewReader(url.Values{"email": {"a@example.com"}, "csrf": {csrfOf(page)}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if r := b.do(req); r.status != http.StatusForbidden {
		t.Errorf("cross-site: %d", r.status)
	}
	e.mail.none(t)

	// Signed in: the per-session token is required on every POST.
	s := e.signIn("ada@example.com")
	preSession := csrfOf(b.get("/login").body)
	for _, path := range []string{"/keys", "/chatgpt/link", "/chatgpt/unlink", "/logout", "/keys/revoke", "/chatgpt/callback", "/chatgpt/authjson"} {
		for _, tok := range []string{"", preSession, "garbage"} {
			if r := s.post(path, url.Values{"csrf": {tok}, "label": {"x"}}); r.status != http.StatusForbidden {
				t.Errorf("POST %s with token %q: %d", path, tok, r.status)
			}
		}
	}
	keys, _ := e.v.ListKeys(e.user("ada@example.com").ID)
	if len(keys) != 0 {
		t.Fatal("a key was created without a valid token")
	}
	s.get("/keys")
	if r := s.postForm("/keys", url.Values{"label": {"ok"}}); r.status != http.StatusSeeOther {
		t.Fatalf("with the session token: %d", r.status)
	}
}

func TestLoginRateLimits(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.get("/login")
	for i := range DefaultLoginPerEmail {
		if r := b.login(url.Values{"email": {"ada@example.com"}}); r.status != 200 {
			t.Fatalf("request %d: %d", i, r.status)
		}
		b.get("/login")
	}
	r := b.login(url.Values{"email": {"ADA@example.com"}})
	// An HTML page a person can read, with the whole window (frozen clock)
	// in Retry-After.
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "900" ||
		!strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Fatalf("over the per-email limit: %d retry-after=%q type=%q", r.status, r.header.Get("Retry-After"), r.header.Get("Content-Type"))
	}
	mustContain(t, r.body, "<html", "Too many sign-in links were asked for. Try again in 15 minutes.")
	// Same answer for an address that could not sign in: the limit is per
	// email, whatever the account.
	for range DefaultLoginPerEmail {
		b.ip = "10.0.0.2"
		b.get("/login")
		b.login(url.Values{"email": {"nobody@example.com"}})
	}
	b.get("/login")
	if r := b.login(url.Values{"email": {"nobody@example.com"}}); r.status != http.StatusTooManyRequests {
		t.Fatalf("unknown email not limited alike: %d", r.status)
	}
	// Per client address, across emails.
	b.ip = "10.0.0.9"
	for i := range DefaultLoginPerIP {
		b.get("/login")
		if r := b.login(url.Values{"email": {fmt.Sprintf("u%d@example.com", i)}}); r.status != 200 {
			t.Fatalf("ip request %d: %d", i, r.status)
		}
	}
	b.get("/login")
	if r := b.login(url.Values{"email": {"fresh@example.com"}}); r.status != http.StatusTooManyRequests {
		t.Fatalf("over the per-address limit: %d", r.status)
	}
	// IPv6 counts per /64: rotating addresses inside one does not help.
	for i := range DefaultLoginPerIP {
		b.ip = fmt.Sprintf("2001:db8:5:5::%x", i+1)
		b.get("/login")
		if r := b.login(url.Values{"email": {fmt.Sprintf("v%d@example.com", i)}}); r.status != 200 {
			t.Fatalf("ipv6 request %d: %d", i, r.status)
		}
	}
	b.ip = "2001:db8:5:5:ffff::1"
	b.get("/login")
	if r := b.login(url.Values{"email": {"fresh6@example.com"}}); r.status != http.StatusTooManyRequests {
		t.Fatalf("another address in the same /64: %d", r.status)
	}
	b.ip = "2001:db8:5:6::1"
	b.get("/login")
	if r := b.login(url.Values{"email": {"fresh6@example.com"}}); r.status != 200 {
		t.Fatalf("the next /64: %d", r.status)
	}
	// The window passes.
	e.clock.Advance(DefaultLoginWindow)
	b.ip = "10.0.0.9"
	b.get("/login")
	if r := b.login(url.Values{"email": {"fresh@example.com"}}); r.status != 200 {
		t.Fatalf("after the window: %d", r.status)
	}
}

// TestLoginLimitsOutliveTheDashboard: with a Limiter passed in (as
// caddymodule does), a new dashboard (a config reload) keeps the counts.
func TestLoginLimitsOutliveTheDashboard(t *testing.T) {
	shared := ratelimit.New(ratelimit.Config{})
	withShared := func(c *Config) { c.Limiter = shared }
	first := newEnv(t, withShared)
	b := first.browser()
	for i := range DefaultLoginPerEmail {
		b.get("/login")
		if r := b.login(url.Values{"email": {"ada@example.com"}}); r.status != 200 {
			t.Fatalf("request %d: %d", i, r.status)
		}
	}
	second := newEnv(t, withShared).browser()
	second.get("/login")
	if r := second.login(url.Values{"email": {"ada@example.com"}}); r.status != http.StatusTooManyRequests {
		t.Fatalf("the new dashboard forgot the count: %d", r.status)
	}
	private := newEnv(t).browser()
	private.get("/login")
	if r := private.login(url.Values{"email": {"ada@example.com"}}); r.status != 200 {
		t.Fatalf("a dashboard with its own table: %d", r.status)
	}
}

var authorizeRE = regexp.MustCompile(`id="authorize-link" href="([^"]+)"`)

// startLink starts the paste flow and returns the authorize URL.
func startLink(t *testing.T, b *browser, from string) string {
	t.Helper()
	b.get("/chatgpt")
	r := b.post("/chatgpt/link", url.Values{"from": {from}})
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location, "/chatgpt/link?flow=") {
		t.Fatalf("start link: %d %q %s", r.status, r.location, r.body)
	}
	b.flow = mustURL(t, r.location).Query().Get("flow")
	// A reload of the link page shows the same sign-in.
	if again := b.get(r.location); again.status != 200 {
		t.Fatalf("link page: %d", again.status)
	}
	r = b.get(r.location)
	m := authorizeRE.FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("no authorize link:\n%s", r.body)
	}
	return html.UnescapeString(m[1])
}

// authorize follows the authorize URL on the fake issuer and returns the
// callback address the browser would end on.
func authorize(t *testing.T, authURL string) string {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	r, err := c.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	loc := r.Header.Get("Location")
	if r.StatusCode != http.StatusFound || !strings.HasPrefix(loc, "http://localhost:1455/auth/callback?") {
		t.Fatalf("authorize: %d %q", r.StatusCode, loc)
	}
	return loc
}

func TestPasteFlowLinksChatGPT(t *testing.T) {
	e := newEnv(t)
	e.fake.AddAccount("acc-paste", "ada@chatgpt.example", "pro")
	b := e.signIn("ada@example.com")
	authURL := startLink(t, b, "onboarding")
	u := mustURL(t, authURL)
	if u.Query().Get("code_challenge_method") != "S256" || len(u.Query().Get("state")) < 32 {
		t.Fatalf("authorize URL %s", authURL)
	}
	// A typo keeps the pending sign-in: the page is shown again.
	r := b.post("/chatgpt/callback", url.Values{"from": {"onboarding"}, "callback": {"http://localhost:1455/auth/callback?code=abc"}, "flow": {b.flow}})
	if r.status != http.StatusBadRequest {
		t.Fatalf("typo: %d", r.status)
	}
	mustContain(t, r.body, "missing part of the sign-in", `id="authorize-link"`)
	// An address from another site is named as such.
	r = b.post("/chatgpt/callback", url.Values{"callback": {"https://chatgpt.com/?code=abc&state=x"}, "flow": {b.flow}})
	mustContain(t, r.body, "This address is from another site (chatgpt.com)", `id="authorize-link"`)

	callback := authorize(t, authURL)
	r = b.post("/chatgpt/callback", url.Values{"from": {"onboarding"}, "callback": {"  " + callback + " "}, "flow": {b.flow}})
	if r.status != http.StatusSeeOther || r.location != "/onboarding?msg=linked" {
		t.Fatalf("callback: %d %q %s", r.status, r.location, r.body)
	}
	info, err := e.v.TokenInfo(e.user("ada@example.com").ID)
	if err != nil || info.AccountID != "acc-paste" || info.PlanType != "pro" || info.Email != "ada@chatgpt.example" {
		t.Fatalf("token info %+v %v", info, err)
	}
	r = b.get("/onboarding?msg=linked")
	mustContain(t, r.body, "Linked as ada@chatgpt.example (pro). Next: create your first API key", "Create your first API key")
	r = b.get("/chatgpt")
	mustContain(t, r.body, "acc-paste", "ada@chatgpt.example", "pro", "Last refresh", "Unlink")
	mustNotContain(t, r.body, "stopped working")

	// The state is single use.
	r = b.post("/chatgpt/callback", url.Values{"callback": {callback}})
	if r.status != http.StatusBadRequest {
		t.Fatalf("replayed callback: %d", r.status)
	}
	mustContain(t, r.body, "expired or was already used")
}

// TestPasteFlowBareCode: pasting only the code works; the state is the
// flow's on the page.
func TestPasteFlowBareCode(t *testing.T) {
	e := newEnv(t)
	e.fake.AddAccount("acc-code", "ada@chatgpt.example", "plus")
	b := e.signIn("ada@example.com")
	callback := authorize(t, startLink(t, b, "chatgpt"))
	code := mustURL(t, callback).Query().Get("code")
	r := b.post("/chatgpt/callback", url.Values{"callback": {code}, "flow": {b.flow}})
	if r.status != http.StatusSeeOther || r.location != "/chatgpt?msg=linked" {
		t.Fatalf("bare code: %d %q %s", r.status, r.location, r.body)
	}
	mustContain(t, b.get(r.location).body, "Linked as ada@chatgpt.example (plus)")
}

func TestPasteFlowStateMismatch(t *testing.T) {
	e := newEnv(t)
	e.fake.AddAccount("acc-1", "ada@chatgpt.example", "plus")
	b := e.signIn("ada@example.com")
	authURL := startLink(t, b, "chatgpt")
	flow := b.flow
	callback := authorize(t, authURL)

	// Another state than the pending one: from the page, a different
	// attempt; without the page, unknown.
	cu := mustURL(t, callback)
	q := cu.Query()
	q.Set("state", "forged-state-forged-state-forged-state")
	cu.RawQuery = q.Encode()
	r := b.post("/chatgpt/callback", url.Values{"callback": {cu.String()}, "flow": {flow}})
	if r.status != http.StatusBadRequest {
		t.Fatalf("forged state: %d", r.status)
	}
	mustContain(t, r.body, "belongs to a different sign-in attempt", `id="authorize-link"`)
	r = b.post("/chatgpt/callback", url.Values{"callback": {cu.String()}})
	mustContain(t, r.body, "expired or was already used")

	// Another signed-in user who pastes Ada's callback is refused, and Ada's
	// pending sign-in is not used up: she can still finish.
	other := e.signIn("mallory@example.com")
	r = other.post("/chatgpt/callback", url.Values{"callback": {callback}, "csrf": {csrfOf(other.get("/chatgpt").body)}})
	if r.status != http.StatusBadRequest {
		t.Fatalf("other user's state: %d", r.status)
	}
	mustContain(t, r.body, "expired or was already used")
	// Not even with Ada's flow id (it is hers alone).
	r = other.post("/chatgpt/callback", url.Values{"callback": {callback}, "flow": {flow}})
	if r.status != http.StatusBadRequest {
		t.Fatalf("other user's flow: %d", r.status)
	}
	if _, err := e.v.TokenInfo(e.user("mallory@example.com").ID); err == nil {
		t.Fatal("mallory got linked")
	}
	b.get("/chatgpt")
	r = b.post("/chatgpt/callback", url.Values{"callback": {callback}, "flow": {flow}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("ada after mallory's paste: %d %s", r.status, r.body)
	}
	if info, err := e.v.TokenInfo(e.user("ada@example.com").ID); err != nil || info.AccountID != "acc-1" {
		t.Fatalf("ada: %+v %v", info, err)
	}

	// Errors from the issuer are explained in plain words, the code kept
	// behind a disclosure.
	for _, c := range []struct{ query, want string }{
		{"error=access_denied&error_description=missing_codex_entitlement&state=x", "Codex is not enabled for your workspace"},
		{"error=access_denied&state=x", "The sign-in was cancelled on ChatGPT’s page"},
		{"error=server_error&state=x", "ChatGPT reported a problem"},
	} {
		b.get("/chatgpt")
		r = b.post("/chatgpt/callback", url.Values{"callback": {"http://localhost:1455/auth/callback?" + c.query}})
		mustContain(t, r.body, c.want, "<summary>Technical details</summary>")
	}
}

func TestPasteFlowExpired(t *testing.T) {
	e := newEnv(t)
	e.fake.AddAccount("acc-1", "ada@chatgpt.example", "plus")
	b := e.signIn("ada@example.com")
	authURL := startLink(t, b, "chatgpt")
	callback := authorize(t, authURL)
	e.clock.Advance(DefaultOAuthTTL + time.Second)
	r := b.post("/chatgpt/callback", url.Values{"callback": {callback}, "flow": {b.flow}})
	if r.status != http.StatusBadRequest {
		t.Fatalf("expired: %d", r.status)
	}
	mustContain(t, r.body, "expired", "Start again")
	if _, err := e.v.TokenInfo(e.user("ada@example.com").ID); err == nil {
		t.Fatal("linked after expiry")
	}
}

func TestPasteFlowBadCode(t *testing.T) {
	e := newEnv(t)
	e.fake.AddAccount("acc-1", "ada@chatgpt.example", "plus")
	b := e.signIn("ada@example.com")
	authURL := startLink(t, b, "chatgpt")
	state := mustURL(t, authURL).Query().Get("state")
	r := b.post("/chatgpt/callback", url.Values{"callback": {"http://localhost:1455/auth/callback?code=ac_bogus&state=" + url.QueryEscape(state)}})
	if r.status != http.StatusBadRequest {
		t.Fatalf("bad code: %d", r.status)
	}
	mustContain(t, r.body, "ChatGPT did not accept this sign-in code", "<summary>Technical details</summary>")
}

func authJSON(t *testing.T, e *env, account string) []byte {
	tok := e.fake.AddAccount(account, account+"@chatgpt.example", "team")
	b, err := json.Marshal(map[string]any{
		"OPENAI_API_KEY": nil,
		"tokens":         map[string]string{"id_token": tok.IDToken, "access_token": tok.AccessToken, "refresh_token": tok.RefreshToken},
		"last_refresh":   time.Now().UTC().Format(time.RFC3339),
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAuthJSONImport(t *testing.T) {
	e := newEnv(t)
	b := e.signIn("ada@example.com")
	page := b.get("/onboarding").body

	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("csrf", csrfOf(page))
	_ = mw.WriteField("from", "onboarding")
	fw, _ := mw.CreateFormFile("authfile", "auth.json")
	fw.Write(authJSON(t, e, "acc-file"))
	mw.Close()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/chatgpt/authjson", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	r := b.do(req)
	if r.status != http.StatusSeeOther || r.location != "/onboarding?msg=linked" {
		t.Fatalf("upload: %d %q %s", r.status, r.location, r.body)
	}
	if info, err := e.v.TokenInfo(e.user("ada@example.com").ID); err != nil || info.AccountID != "acc-file" {
		t.Fatalf("%+v %v", info, err)
	}

	// Pasted, and a bad one.
	b.get("/chatgpt")
	r = b.post("/chatgpt/authjson", url.Values{"authjson": {string(authJSON(t, e, "acc-paste"))}})
	if r.status != http.StatusSeeOther || r.location != "/chatgpt?msg=linked" {
		t.Fatalf("paste: %d %q", r.status, r.location)
	}
	b.get("/chatgpt")
	r = b.post("/chatgpt/authjson", url.Values{"authjson": {`{"OPENAI_API_KEY":"sk-123"}`}})
	if r.status != http.StatusBadRequest {
		t.Fatalf("api-key auth.json: %d", r.status)
	}
	mustContain(t, r.body, "OpenAI API key, not a ChatGPT login")
	mustNotContain(t, r.body, "sk-123")
}

func TestRelinkBannerAndUnlink(t *testing.T) {
	e := newEnv(t)
	b := e.signIn("ada@example.com")
	u := e.user("ada@example.com")
	tok := e.fake.AddAccount("acc-r", "ada@chatgpt.example", "plus")
	if err := e.v.PutTokens(u.ID, vault.TokenBundle{IDToken: tok.IDToken, AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken}); err != nil {
		t.Fatal(err)
	}
	r := b.get("/chatgpt")
	mustNotContain(t, r.body, "stopped working")
	mustContain(t, r.body, "Working", "renews")

	// The refresh token dies: the vault marks the bundle.
	e.fake.ExpireRefresh("acc-r")
	if _, _, err := e.v.AccessToken(context.Background(), u.ID, true); err == nil {
		t.Fatal("refresh with an expired token succeeded")
	}
	info, _ := e.v.TokenInfo(u.ID)
	if !info.RelinkNeeded {
		t.Fatalf("not marked: %+v", info)
	}
	for _, p := range []string{"/chatgpt", "/overview", "/keys"} {
		r = b.get(p)
		mustContain(t, r.body, `class="banner" role="alert"`, "stopped working", "Link again")
	}
	// The re-link page speaks plainly, keeps the technical detail behind a
	// disclosure and claims no automatic renewal.
	r = b.get("/chatgpt")
	mustContain(t, r.body, "Your ChatGPT sign-in expired or was revoked", "Link again with ChatGPT", "<summary>Technical details</summary>")
	mustNotContain(t, r.body, "renew")
	if i, j := strings.Index(r.body, "<details class=\"detail\">"), strings.Index(r.body, info.RelinkReason); info.RelinkReason != "" && (j < i || i < 0) {
		t.Fatalf("the reason %q is not inside the disclosure", info.RelinkReason)
	}

	// Re-linking clears it.
	callback := authorize(t, startLink(t, b, "chatgpt"))
	b.get("/chatgpt")
	if r = b.post("/chatgpt/callback", url.Values{"callback": {callback}}); r.status != http.StatusSeeOther {
		t.Fatalf("relink: %d %s", r.status, r.body)
	}
	mustNotContain(t, b.get("/chatgpt").body, "stopped working")

	// Unlink, with confirmation.
	r = b.get("/chatgpt/unlink")
	mustContain(t, r.body, "Unlink ChatGPT?", `id="confirm-unlink"`)
	if r = b.post("/chatgpt/unlink", nil); r.status != http.StatusSeeOther || r.location != "/chatgpt?msg=unlinked" {
		t.Fatalf("unlink: %d %q", r.status, r.location)
	}
	if _, err := e.v.TokenInfo(u.ID); err == nil {
		t.Fatal("still linked")
	}
	mustContain(t, b.get("/chatgpt?msg=unlinked").body, "was unlinked", "Not linked")
}

var newKeyRE = regexp.MustCompile(`id="new-key">(cpk_[A-Za-z0-9_\-]+)<`)

func TestKeys(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.PublicOrigin = "https://ai.example.com/" })
	b := e.signIn("ada@example.com")
	u := e.user("ada@example.com")
	b.get("/keys")
	r := b.postForm("/keys", url.Values{"label": {"Laptop <b>"}})
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location, "/keys?created=") {
		t.Fatalf("create: %d %q", r.status, r.location)
	}
	created := r.location
	r = b.follow(r)
	m := newKeyRE.FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("key not shown:\n%s", r.body)
	}
	key := m[1]
	if _, _, err := e.v.VerifyKey(key); err != nil {
		t.Fatalf("shown key does not verify: %v", err)
	}
	mustContain(t, r.body, "shown only once", "Laptop &lt;b&gt;",
		"https://ai.example.com/v1", `wire_api = &#34;responses&#34;`, "Authorization: Bearer "+key,
		"api_key=&#34;"+key, "apiKey: "+key, "export USEMYSUB_API_KEY="+key, "Cursor", "Continue", "Codex CLI", "OpenAI Python SDK",
		"Claude Code", "export ANTHROPIC_BASE_URL=https://ai.example.com\n", "export ANTHROPIC_API_KEY="+key)
	mustNotContain(t, r.body, "Laptop <b>")
	if r.header.Get("Cache-Control") != "no-store" {
		t.Fatal("key page may be cached")
	}

	// Shown once: a reload of the page that showed it does not show it
	// again, and the list has the prefix only.
	r = b.get(created)
	mustNotContain(t, r.body, key)
	mustContain(t, r.body, "shown once and is hidden now")
	r = b.get("/keys")
	mustNotContain(t, r.body, key)
	mustContain(t, r.body, key[:12]+"…", "Laptop &lt;b&gt;", "just now") // VerifyKey above used it

	keys, _ := e.v.ListKeys(u.ID)
	if len(keys) != 1 {
		t.Fatalf("%d keys", len(keys))
	}
	// Revoke: a confirmation page, then the POST.
	r = b.get("/keys/revoke?id=" + keys[0].ID)
	mustContain(t, r.body, "Revoke this key?", key[:12])
	if r = b.post("/keys/revoke", url.Values{"id": {keys[0].ID}}); r.status != http.StatusSeeOther || r.location != "/keys?msg=revoked" {
		t.Fatalf("revoke: %d %q", r.status, r.location)
	}
	if _, _, err := e.v.VerifyKey(key); err == nil {
		t.Fatal("revoked key still verifies")
	}
	mustContain(t, b.get("/keys?msg=revoked").body, "was revoked", "revoked</span>")

	// Someone else's key cannot be revoked or even looked at.
	key2, k2, _ := e.v.CreateKey(u.ID, "other")
	mal := e.signIn("mallory@example.com")
	if r = mal.get("/keys/revoke?id=" + k2.ID); r.status != http.StatusNotFound {
		t.Fatalf("foreign key page: %d", r.status)
	}
	mal.get("/keys")
	if r = mal.post("/keys/revoke", url.Values{"id": {k2.ID}}); r.status != http.StatusNotFound {
		t.Fatalf("foreign revoke: %d", r.status)
	}
	if _, _, err := e.v.VerifyKey(key2); err != nil {
		t.Fatal("foreign revoke worked")
	}

	// Labels are bounded.
	b.get("/keys")
	if r = b.postForm("/keys", url.Values{"label": {strings.Repeat("x", 101)}}); r.status != http.StatusBadRequest {
		t.Fatalf("long label: %d", r.status)
	}
}

func TestOnboardingThenOverview(t *testing.T) {
	e := newEnv(t)
	b := e.signIn("ada@example.com")
	u := e.user("ada@example.com")
	tok := e.fake.AddAccount("acc-o", "ada@chatgpt.example", "plus")
	if err := e.v.PutTokens(u.ID, vault.TokenBundle{IDToken: tok.IDToken, AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken}); err != nil {
		t.Fatal(err)
	}
	r := b.get("/onboarding")
	mustContain(t, r.body, "Linked as", "ada@chatgpt.example", `id="create-key"`)
	r = b.follow(b.postForm("/keys", url.Values{"label": {"first"}, "from": {"onboarding"}}))
	mustContain(t, r.body, "go to the dashboard", `id="new-key"`)
	// Linked with a key: the landing page and sign-in go to the overview.
	if r = b.get("/"); r.status != http.StatusSeeOther || r.location != "/overview" {
		t.Fatalf("landing when done: %d %q", r.status, r.location)
	}
	b2 := e.browser()
	b2.get("/login")
	b2.login(url.Values{"email": {"ada@example.com"}})
	link := linkIn(t, e.mail.wait(t).Text)
	b2.get(link)
	if r = b2.post("/login/confirm", url.Values{"token": {tokenOf(t, link)}}); r.location != "/overview" {
		t.Fatalf("sign-in when done goes to %q", r.location)
	}
}

func TestRequestsPage(t *testing.T) {
	e := newEnv(t)
	b := e.signIn("ada@example.com")
	u := e.user("ada@example.com")
	base := e.clock.Now().Add(-time.Hour)
	for i := range 60 {
		status := 200
		if i%10 == 0 {
			status = 502
		}
		e.v.LogRequest(vault.LogRecord{
			Time: base.Add(time.Duration(i) * time.Second), UserID: u.ID, RequestID: fmt.Sprintf("req_%02d", i),
			Route: "/v1/chat/completions", Model: "gpt-5.5", Effort: "high", Status: status,
			Duration: 1500 * time.Millisecond, TTFB: 300 * time.Millisecond, InputTokens: 1200, OutputTokens: 34,
		})
	}
	e.v.LogRequest(vault.LogRecord{Time: base, UserID: "someone-else", RequestID: "req_foreign", Status: 200})
	waitFor(t, func() bool {
		rs, _ := e.v.RecentRequests(u.ID, time.Time{}, 100, vault.StatusAll)
		return len(rs) == 60
	})
	r := b.get("/requests")
	mustContain(t, r.body, "req_59", "req_10", "/v1/chat/completions", "gpt-5.5", "high", "1.5 s", "300 ms", "1,200 / 34", "Older →", `data-copy="req_59"`)
	mustNotContain(t, r.body, ">estimated<")
	mustNotContain(t, r.body, "req_09", "req_foreign")
	next := regexp.MustCompile(`href="(/requests\?before=\d+)"`).FindStringSubmatch(r.body)
	if next == nil {
		t.Fatal("no next page link")
	}
	r = b.get(html.UnescapeString(next[1]))
	mustContain(t, r.body, "req_09", "req_00", "← Newest")
	mustNotContain(t, r.body, "req_10", "Older →")

	r = b.get("/requests?status=failed")
	mustContain(t, r.body, "req_50", "req_00", "502")
	mustNotContain(t, r.body, "req_51", "Older →")
	if n := strings.Count(r.body, `class="pill pill-bad"`); n != 6 {
		t.Fatalf("%d failed rows", n)
	}
	r = b.get("/requests?status=ok")
	mustNotContain(t, r.body, "req_50<")
	// A request the client left is marked as estimated.
	e.v.LogRequest(vault.LogRecord{Time: base.Add(time.Minute), UserID: u.ID, RequestID: "req_gone", Route: "/v1/chat/completions",
		Status: 499, InputTokens: 900, OutputTokens: 3, Estimated: true})
	waitFor(t, func() bool {
		rs, _ := e.v.RecentRequests(u.ID, time.Time{}, 100, vault.StatusAll)
		return len(rs) == 61
	})
	r = b.get("/requests")
	mustContain(t, r.body, "req_gone", "900 / 3", ">estimated<")
	mustNotContain(t, r.body, ">Fast<", "default tier (asked")
	// The tier: Fast when it was sent, and what was asked when a key's
	// policy or a model's default decided otherwise.
	for i, tc := range []struct{ sent, asked string }{{"priority", "fast"}, {"", "fast"}, {"priority", "default"}} {
		e.v.LogRequest(vault.LogRecord{Time: base.Add(2*time.Minute + time.Duration(i)*time.Second), UserID: u.ID, RequestID: fmt.Sprintf("req_tier%d", i),
			Route: "/v1/chat/completions", Model: "gpt-5.5", Status: 200, ServiceTier: tc.sent, RequestedTier: tc.asked})
	}
	waitFor(t, func() bool {
		rs, _ := e.v.RecentRequests(u.ID, time.Time{}, 100, vault.StatusAll)
		return len(rs) == 64
	})
	r = b.get("/requests")
	mustContain(t, r.body, "req_tier0", ">Fast<", ">default tier (asked fast)<", ">Fast (asked default)<")
}

func TestOverview(t *testing.T) {
	e := newEnv(t)
	// The records below reach 4 minutes back and must all fall on today's
	// UTC day, also when the test runs just after midnight.
	if now := e.clock.Now().UTC(); now.Sub(now.Truncate(24*time.Hour)) < 10*time.Minute {
		e.clock.Advance(10 * time.Minute)
	}
	b := e.signIn("ada@example.com")
	u := e.user("ada@example.com")
	now := e.clock.Now()
	for i := range 5 {
		e.v.LogRequest(vault.LogRecord{Time: now.Add(-time.Duration(i) * time.Minute), UserID: u.ID, Status: 200, InputTokens: 1000, OutputTokens: 500, Model: "gpt-5.5", Route: "/v1/responses"})
	}
	e.v.LogRequest(vault.LogRecord{Time: now.Add(-3 * 24 * time.Hour), UserID: u.ID, Status: 500, InputTokens: 10})
	waitFor(t, func() bool {
		rs, _ := e.v.RecentRequests(u.ID, time.Time{}, 10, vault.StatusAll)
		return len(rs) == 6
	})
	r := b.get("/overview")
	mustContain(t, r.body, "Requests today", "Tokens today", "Requests, 7 days", "Tokens, 7 days",
		`<svg class="chart chart-wide"`, `<svg class="chart chart-narrow"`, `<rect class="bar"`, `<polyline class="line"`, "7,500", "1 failed", "Show as a table", "No ChatGPT account is linked")
	today := now.UTC().Format("Jan 2")
	mustContain(t, r.body, today+": 5 requests, 7,500 tokens")
	// The prompt cache card: hit rate, the tokens it saved, per model.
	e.v.LogRequest(vault.LogRecord{Time: now, UserID: u.ID, Status: 200, InputTokens: 4000, CachedTokens: 3000, Model: "gpt-5.4-mini", Route: "/v1/responses"})
	waitFor(t, func() bool {
		rs, _ := e.v.RecentRequests(u.ID, time.Time{}, 10, vault.StatusAll)
		return len(rs) == 7
	})
	r = b.get("/overview")
	mustContain(t, r.body, "Prompt cache, 7 days", "<strong>33.3%</strong> of 9,010 input tokens", "3,000 tokens", ">gpt-5.4-mini<", ">75.0%<", ">0.0%<")
	mustNotContain(t, r.body, "style=", "<script>")
}

func TestSecurityHeadersAndRouting(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	r := b.get("/")
	if r.status != 200 {
		t.Fatalf("landing: %d", r.status)
	}
	csp := r.header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'self'", "script-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Fatalf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") {
		t.Fatal("CSP allows inline code")
	}
	if r.header.Get("X-Content-Type-Options") != "nosniff" || r.header.Get("Referrer-Policy") != "no-referrer" {
		t.Fatalf("headers %v", r.header)
	}
	// No inline script or style anywhere.
	for _, p := range []string{"/", "/login"} {
		body := b.get(p).body
		mustNotContain(t, body, "<script>", "style=", "onclick", "http://cdn", "https://cdn")
		mustContain(t, body, `<script src="/static/app.js?v=`, `<link rel="stylesheet" href="/static/app.css?v=`)
	}
	css := regexp.MustCompile(`href="(/static/app.css\?v=[0-9a-f]+)"`).FindStringSubmatch(r.body)[1]
	r = b.get(css)
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/css") || !strings.Contains(r.header.Get("Cache-Control"), "immutable") {
		t.Fatalf("css: %d %v", r.status, r.header)
	}
	if r = b.get("/static/nope.js"); r.status != 404 {
		t.Fatalf("missing static: %d", r.status)
	}
	for path, want := range map[string]bool{
		"/": true, "/login": true, "/keys": true, "/static/app.css": true, "/chatgpt/link": true,
		"/v1/models": false, "/dashboard": false, "/favicon.ico": false, "/keysx": false, "/other/page": false,
	} {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		if got := e.d.Match(req); got != want {
			t.Errorf("Match(%s) = %v", path, got)
		}
	}
}

func TestPrefixAndSecureCookies(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Prefix = "/dash/" })
	tls := httptest.NewTLSServer(e.d)
	t.Cleanup(tls.Close)
	jar, _ := newJar()
	c := tls.Client()
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	b := &browser{e: e, c: c}
	if r := b.get(tls.URL + "/dash"); r.status != http.StatusMovedPermanently || r.location != "/dash/" {
		t.Fatalf("/dash: %d %q", r.status, r.location)
	}
	r := b.get(tls.URL + "/dash/login")
	mustContain(t, r.body, `action="/dash/login"`, `href="/dash/static/app.css?v=`)
	if !strings.Contains(strings.Join(r.header.Values("Set-Cookie"), ";"), "__Host-codex_csrf=") {
		t.Fatalf("csrf cookie over https: %v", r.header.Values("Set-Cookie"))
	}
	b.post(tls.URL+"/dash/login", url.Values{"email": {"ada@example.com"}})
	link := linkIn(t, e.mail.wait(t).Text)
	if !strings.HasPrefix(link, tls.URL+"/dash/login/confirm?token=") {
		t.Fatalf("link %q", link)
	}
	b.get(link)
	r = b.post(tls.URL+"/dash/login/confirm", url.Values{"token": {tokenOf(t, link)}})
	if r.location != "/dash/onboarding" {
		t.Fatalf("confirm: %d %q", r.status, r.location)
	}
	sc := strings.Join(r.header.Values("Set-Cookie"), "\n")
	for _, want := range []string{"__Host-codex_session=", "Secure", "HttpOnly", "SameSite=Lax", "Path=/"} {
		if !strings.Contains(sc, want) {
			t.Fatalf("Set-Cookie %q lacks %q", sc, want)
		}
	}
	if strings.Contains(sc, "Domain=") {
		t.Fatal("__Host- cookie with a Domain")
	}
	if r = b.get(tls.URL + "/dash/onboarding"); r.status != 200 {
		t.Fatalf("onboarding: %d", r.status)
	}
	if e.d.Match(httptest.NewRequest("GET", "/login", nil)) || !e.d.Match(httptest.NewRequest("GET", "/dash/keys", nil)) {
		t.Fatal("prefix matching")
	}
	for _, bad := range []string{"dash", "/v1", "/v1/dash", "/a//b", "/a/../b"} {
		if _, err := NewDashboard(Config{Vault: e.v, Prefix: bad}); err == nil {
			t.Errorf("prefix %q accepted", bad)
		}
	}
}

func TestDevReturnLink(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.DevReturnLink = true; c.Mailer = nil })
	b := e.browser()
	b.get("/login")
	r := b.login(url.Values{"email": {"dev@example.com"}})
	m := regexp.MustCompile(`id="dev-link" href="([^"]+)"`).FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("no dev link:\n%s", r.body)
	}
	link := html.UnescapeString(m[1])
	// The default mailer logs it too.
	waitFor(t, func() bool {
		e.logs.mu.Lock()
		defer e.logs.mu.Unlock()
		for _, msg := range e.logs.msgs {
			if strings.Contains(msg, "mail log") {
				return true
			}
		}
		return false
	})
	b.get(link)
	if r = b.post("/login/confirm", url.Values{"token": {tokenOf(t, link)}}); r.status != http.StatusSeeOther {
		t.Fatalf("dev link: %d", r.status)
	}
}

func TestNextAfterSignIn(t *testing.T) {
	e := newEnv(t)
	u, _ := e.v.CreateUser("ada@example.com", "")
	tok := e.fake.AddAccount("acc-n", "x@y.z", "plus")
	_ = e.v.PutTokens(u.ID, vault.TokenBundle{IDToken: tok.IDToken, AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken})
	_, _, _ = e.v.CreateKey(u.ID, "k")
	b := e.browser()
	r := b.get("/requests?status=failed")
	if r.location != "/login?next=%2Frequests%3Fstatus%3Dfailed" {
		t.Fatalf("redirect %q", r.location)
	}
	r = b.get(r.location)
	mustContain(t, r.body, `name="next" value="/requests?status=failed"`)
	b.login(url.Values{"email": {"ada@example.com"}, "next": {"/requests?status=failed"}})
	link := linkIn(t, e.mail.wait(t).Text)
	b.get(link)
	if r = b.post("/login/confirm", url.Values{"token": {tokenOf(t, link)}, "next": {"/requests?status=failed"}}); r.location != "/requests?status=failed" {
		t.Fatalf("next: %q", r.location)
	}
	for _, bad := range []string{"//evil.com/x", "https://evil.com/", "/login", "/nothing", "/\\evil.com"} {
		if got := e.d.safeNext(bad); got != "" {
			t.Errorf("safeNext(%q) = %q", bad, got)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

var userCodeRE = regexp.MustCompile(`id="user-code">([A-Z0-9-]+)<`)

func TestDeviceCodeFlow(t *testing.T) {
	e := newEnv(t)
	e.d.devicePoll = 300 * time.Millisecond
	e.fake.AddAccount("acc-dev", "dev@chatgpt.example", "pro")
	b := e.signIn("ada@example.com")
	b.get("/onboarding")
	r := b.post("/chatgpt/device", url.Values{"from": {"onboarding"}})
	if r.status != http.StatusSeeOther || r.location != "/chatgpt/device" {
		t.Fatalf("device start: %d %q", r.status, r.location)
	}
	r = b.follow(r)
	m := userCodeRE.FindStringSubmatch(r.body)
	if r.status != 200 || m == nil {
		t.Fatalf("device start: %d\n%s", r.status, r.body)
	}
	mustContain(t, r.body, e.fake.IssuerURL+"/codex/device")
	// Not approved yet.
	r = b.follow(b.post("/chatgpt/device/check", url.Values{"from": {"onboarding"}}))
	mustContain(t, r.body, "Not confirmed yet", m[1])
	if err := e.fake.ApproveDevice(m[1], "acc-dev"); err != nil {
		t.Fatal(err)
	}
	r = b.post("/chatgpt/device/check", url.Values{"from": {"onboarding"}})
	if r.status != http.StatusSeeOther || r.location != "/onboarding?msg=linked" {
		t.Fatalf("device check: %d %q %s", r.status, r.location, r.body)
	}
	if info, err := e.v.TokenInfo(e.user("ada@example.com").ID); err != nil || info.AccountID != "acc-dev" {
		t.Fatalf("%+v %v", info, err)
	}
	// The code is used up.
	b.get("/chatgpt")
	r = b.post("/chatgpt/device/check", nil)
	mustContain(t, r.body, "expired or was already used")
	if r = b.get("/chatgpt/device"); r.status != http.StatusSeeOther {
		t.Fatalf("device page with no code: %d", r.status)
	}
}
