package dashboard

import (
	"context"
	"html"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/internal/oidctest"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// ssoEnv is a dashboard with single sign-on at a real OpenID provider on
// loopback.
type ssoEnv struct {
	*env
	idp *oidctest.Provider
}

func newSSOEnv(t *testing.T, oidc func(*OIDCConfig), opts ...envOption) *ssoEnv {
	t.Helper()
	idp := oidctest.Start(t)
	return newSSOEnvAt(t, idp, idp.Issuer, oidc, opts...)
}

func newSSOEnvAt(t *testing.T, idp *oidctest.Provider, issuer string, oidc func(*OIDCConfig), opts ...envOption) *ssoEnv {
	t.Helper()
	oc := &OIDCConfig{Issuer: issuer, ClientID: oidctest.ClientID, ClientSecret: oidctest.ClientSecret,
		AdminClaim: "groups", AdminValue: "codex-admins"}
	if oidc != nil {
		oidc(oc)
	}
	e := newEnv(t, append([]envOption{func(c *Config) { c.OIDC = oc }}, opts...)...)
	if idp != nil {
		idp.AllowRedirect(e.srv.URL + "/login/oidc/callback")
	}
	return &ssoEnv{env: e, idp: idp}
}

var ssoLinkRE = regexp.MustCompile(`id="sso-button" rel="nofollow" href="([^"]+)"`)

// toCallback starts an SSO sign-in in b (from the sign-in page, with next)
// and signs in at the provider as email; it returns the callback URL the
// provider sends the browser to, not yet opened.
func (s *ssoEnv) toCallback(b *browser, email, next string) string {
	s.t.Helper()
	page := "/login"
	if next != "" {
		page += "?next=" + url.QueryEscape(next)
	}
	r := b.get(page)
	m := ssoLinkRE.FindStringSubmatch(r.body)
	if m == nil {
		s.t.Fatalf("no SSO button on the sign-in page:\n%s", r.body)
	}
	r = b.get(html.UnescapeString(m[1]))
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location, s.idp.Issuer) {
		s.t.Fatalf("starting SSO: %d %s %s", r.status, r.location, r.body)
	}
	if u, _ := url.Parse(r.location); u.Query().Get("code_challenge_method") != "S256" || u.Query().Get("nonce") == "" || u.Query().Get("state") == "" {
		s.t.Fatalf("the authorization request lacks PKCE S256, a nonce or a state: %s", r.location)
	}
	r = s.hop(b, r.location)
	if !s.idp.LoginURL(r.location) {
		s.t.Fatalf("the provider did not ask to sign in: %d %s %s", r.status, r.location, r.body)
	}
	loc := r.location
	if strings.HasPrefix(loc, "/") {
		loc = s.idp.Issuer + loc
	}
	u, _ := url.Parse(loc)
	b.get(loc)
	r = b.post(s.idp.Issuer+"/login/username", url.Values{"id": {u.Query().Get("authRequestID")}, "username": {email}})
	for range 5 {
		if strings.HasPrefix(r.location, s.srv.URL+"/login/oidc/callback") {
			return r.location
		}
		if r.status != http.StatusFound && r.status != http.StatusSeeOther {
			break
		}
		r = b.get(r.location)
	}
	s.t.Fatalf("the provider did not send the browser back: %d %s %s", r.status, r.location, r.body)
	return ""
}

// hop follows the provider's redirects until one leaves it for a page
// that is not its redirect chain (its sign-in page or the client).
func (s *ssoEnv) hop(b *browser, loc string) resp {
	s.t.Helper()
	r := b.get(loc)
	for range 5 {
		if r.status != http.StatusFound && r.status != http.StatusSeeOther || s.idp.LoginURL(r.location) ||
			strings.HasPrefix(r.location, s.srv.URL) {
			return r
		}
		r = b.get(r.location)
	}
	return r
}

// sso signs b in by SSO as email and returns the dashboard's answer to
// the callback.
func (s *ssoEnv) sso(b *browser, email string) resp {
	s.t.Helper()
	return b.get(s.toCallback(b, email, ""))
}

// sessionOfBrowser is the vault's record of b's dashboard session.
func (s *ssoEnv) sessionOfBrowser(b *browser) (vault.User, vault.SessionRecord, bool) {
	u, _ := url.Parse(s.srv.URL)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == sessionCookie {
			usr, rec, err := s.v.Session(c.Value)
			return usr, rec, err == nil
		}
	}
	return vault.User{}, vault.SessionRecord{}, false
}

func TestSSOSignInCreatesAUserWhenSignupIsOpen(t *testing.T) {
	s := newSSOEnv(t, nil)
	s.idp.AddUser(oidctest.User{Email: "Ada@Example.com", EmailVerified: true})
	b := s.browser()
	r := s.sso(b, "Ada@Example.com")
	if r.status != http.StatusSeeOther || r.location != "/onboarding" {
		t.Fatalf("callback: %d %q %s", r.status, r.location, r.body)
	}
	u, rec, ok := s.sessionOfBrowser(b)
	if !ok || u.Email != "ada@example.com" || rec.AdminByClaim {
		t.Fatalf("session: %v %+v %+v", ok, u, rec)
	}
	if page := b.follow(r); page.status != http.StatusOK || !strings.Contains(page.body, "ada@example.com") {
		t.Fatalf("onboarding after SSO: %d", page.status)
	}
	// Signing out works as for an email link, and a second SSO sign-in
	// finds the same user.
	if r := b.post("/logout", nil); r.status != http.StatusSeeOther {
		t.Fatalf("logout: %d", r.status)
	}
	if _, _, ok := s.sessionOfBrowser(b); ok {
		t.Fatal("still signed in after logout")
	}
	if r := s.sso(b, "Ada@Example.com"); r.status != http.StatusSeeOther {
		t.Fatalf("second SSO: %d %s", r.status, r.body)
	}
	if u2, _, _ := s.sessionOfBrowser(b); u2.ID != u.ID {
		t.Fatalf("second sign-in is user %q, want %q", u2.ID, u.ID)
	}
}

func TestSSOEmailFromUserinfo(t *testing.T) {
	for _, verified := range []bool{true, false} {
		s := newSSOEnv(t, nil)
		s.idp.UserinfoOnly.Store(true)
		s.idp.AddUser(oidctest.User{Email: "ada@example.com", EmailVerified: verified})
		b := s.browser()
		r := s.sso(b, "ada@example.com")
		if want := map[bool]int{true: http.StatusSeeOther, false: http.StatusForbidden}[verified]; r.status != want {
			t.Fatalf("email_verified %v at userinfo: %d, want %d:\n%s", verified, r.status, want, r.body)
		}
	}
}

func TestSSOAdminClaimMarksTheSession(t *testing.T) {
	for _, tc := range []struct {
		name   string
		groups []string
		value  string // AdminValue
		want   bool
	}{
		{"in the group", []string{"staff", "codex-admins"}, "codex-admins", true},
		{"other groups", []string{"staff"}, "codex-admins", false},
		{"no groups", nil, "codex-admins", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSSOEnv(t, func(o *OIDCConfig) { o.AdminValue = tc.value })
			s.idp.AddUser(oidctest.User{Email: "lead@example.com", EmailVerified: true, Groups: tc.groups})
			b := s.browser()
			if r := s.sso(b, "lead@example.com"); r.status != http.StatusSeeOther {
				t.Fatalf("callback: %d %s", r.status, r.body)
			}
			_, rec, ok := s.sessionOfBrowser(b)
			if !ok || rec.AdminByClaim != tc.want {
				t.Fatalf("session %v, AdminByClaim %v, want %v", ok, rec.AdminByClaim, tc.want)
			}
			if got := b.get("/overview"); got.status == http.StatusOK || got.status == http.StatusSeeOther {
				if s.d.lookupSessionFor(t, b).adminByClaim != tc.want {
					t.Fatalf("the dashboard's session has adminByClaim %v, want %v", !tc.want, tc.want)
				}
			}
		})
	}
}

// lookupSessionFor is the dashboard's own view of b's session.
func (d *Dashboard) lookupSessionFor(t *testing.T, b *browser) *session {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.e.srv.URL+"/overview", nil)
	for _, c := range b.c.Jar.Cookies(req.URL) {
		req.AddCookie(c)
	}
	s := d.lookupSession(req)
	if s == nil {
		t.Fatal("no session")
	}
	return s
}

func TestSSORefusals(t *testing.T) {
	for _, tc := range []struct {
		name     string
		oidc     func(*OIDCConfig)
		signup   SignupPolicy
		existing bool // the user exists before
		disabled bool // and is disabled
		user     oidctest.User
		status   int
		says     string
	}{
		{name: "domain not allowed", oidc: func(o *OIDCConfig) { o.Domains = []string{"example.com"} },
			user: oidctest.User{Email: "eve@elsewhere.org", EmailVerified: true}, status: http.StatusForbidden, says: "addresses at example.com"},
		{name: "email not verified",
			user: oidctest.User{Email: "ann@example.com", EmailVerified: false}, status: http.StatusForbidden, says: "not verified"},
		{name: "sign-up closed, new user", signup: SignupPolicy{Mode: SignupClosed},
			user: oidctest.User{Email: "new@example.com", EmailVerified: true}, status: http.StatusForbidden, says: "Sign-up is closed"},
		{name: "sign-up by domain, another domain", signup: SignupPolicy{Mode: SignupDomains, Domains: []string{"example.com"}},
			user: oidctest.User{Email: "new@elsewhere.org", EmailVerified: true}, status: http.StatusForbidden, says: "Sign-up is closed"},
		{name: "sign-up closed, existing user", signup: SignupPolicy{Mode: SignupClosed}, existing: true,
			user: oidctest.User{Email: "old@example.com", EmailVerified: true}, status: http.StatusSeeOther},
		{name: "disabled user", existing: true, disabled: true,
			user: oidctest.User{Email: "gone@example.com", EmailVerified: true}, status: http.StatusForbidden, says: "disabled"},
		{name: "allowed domain", oidc: func(o *OIDCConfig) { o.Domains = []string{"EXAMPLE.com"} },
			user: oidctest.User{Email: "ok@example.com", EmailVerified: true}, status: http.StatusSeeOther},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSSOEnv(t, tc.oidc, func(c *Config) {
				if tc.signup.Mode != "" {
					c.Signup = tc.signup
				}
			})
			if tc.existing {
				u, err := s.v.CreateUser(tc.user.Email, "")
				if err != nil {
					t.Fatal(err)
				}
				if _, err := s.v.SetUserDisabled(u.ID, tc.disabled); err != nil {
					t.Fatal(err)
				}
			}
			s.idp.AddUser(tc.user)
			b := s.browser()
			r := s.sso(b, tc.user.Email)
			if r.status != tc.status || !strings.Contains(r.body, tc.says) {
				t.Fatalf("callback: %d, want %d saying %q:\n%s", r.status, tc.status, tc.says, r.body)
			}
			_, _, signedIn := s.sessionOfBrowser(b)
			if signedIn != (tc.status == http.StatusSeeOther) {
				t.Fatalf("signed in: %v", signedIn)
			}
			if _, err := s.v.UserByEmail(tc.user.Email); (err == nil) != (tc.status == http.StatusSeeOther || tc.existing) {
				t.Fatalf("user exists: %v", err == nil)
			}
			// Each attempt is in the audit log, by single sign-on, with
			// its outcome.
			es, err := s.v.AuditLog(context.Background(), vault.AuditQuery{Action: vault.AuditSignIn})
			outcome := vault.OutcomeRefused
			if tc.status == http.StatusSeeOther {
				outcome = vault.OutcomeOK
			}
			if err != nil || len(es) != 1 || es[0].Outcome != outcome || es[0].Detail != "oidc" || es[0].Target.Email != strings.ToLower(tc.user.Email) {
				t.Fatalf("sign-in entries: %v %+v", err, es)
			}
		})
	}
}

func TestSSOAttacksOnTheIDToken(t *testing.T) {
	for _, tc := range []struct {
		name   string
		forge  bool
		tamper func(map[string]any)
	}{
		{name: "signed by another key", forge: true, tamper: func(map[string]any) {}},
		{name: "another audience", tamper: func(c map[string]any) { c["aud"] = []string{"someone-else"}; c["azp"] = "someone-else" }},
		{name: "expired", tamper: func(c map[string]any) {
			now := time.Now().Unix()
			c["exp"], c["iat"] = now-3600, now-7200
		}},
		{name: "wrong nonce", tamper: func(c map[string]any) { c["nonce"] = "not-this-sign-ins" }},
		{name: "another issuer", tamper: func(c map[string]any) { c["iss"] = "https://evil.example" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSSOEnv(t, nil)
			s.idp.AddUser(oidctest.User{Email: "victim@example.com", EmailVerified: true, Groups: []string{"codex-admins"}})
			s.idp.Tamper(tc.tamper, tc.forge)
			b := s.browser()
			r := s.sso(b, "victim@example.com")
			if r.status != http.StatusForbidden || !strings.Contains(r.body, "could not be verified") {
				t.Fatalf("callback: %d:\n%s", r.status, r.body)
			}
			if _, _, ok := s.sessionOfBrowser(b); ok {
				t.Fatal("signed in with a bad ID token")
			}
			if _, err := s.v.UserByEmail("victim@example.com"); err == nil {
				t.Fatal("a user was created from a bad ID token")
			}
			// The same flow untampered signs in: the refusal was the claim.
			s.idp.Tamper(nil, false)
			if r := s.sso(b, "victim@example.com"); r.status != http.StatusSeeOther {
				t.Fatalf("untampered: %d %s", r.status, r.body)
			}
		})
	}
}

func TestSSOStateAndCodeAreSingleUse(t *testing.T) {
	s := newSSOEnv(t, nil)
	s.idp.AddUser(oidctest.User{Email: "ada@example.com", EmailVerified: true})
	b := s.browser()
	callback := s.toCallback(b, "ada@example.com", "")
	if r := b.get(callback); r.status != http.StatusSeeOther {
		t.Fatalf("first callback: %d %s", r.status, r.body)
	}

	t.Run("replayed state", func(t *testing.T) {
		other := s.browser()
		if r := other.get(callback); r.status != http.StatusBadRequest || !strings.Contains(r.body, "can no longer be used") {
			t.Fatalf("replay: %d %s", r.status, r.body)
		}
		if _, _, ok := s.sessionOfBrowser(other); ok {
			t.Fatal("the replayed callback signed in")
		}
	})

	t.Run("replayed code under a fresh state", func(t *testing.T) {
		c := s.browser()
		fresh, _ := url.Parse(s.toCallback(c, "ada@example.com", ""))
		old, _ := url.Parse(callback)
		q := fresh.Query()
		q.Set("code", old.Query().Get("code"))
		fresh.RawQuery = q.Encode()
		before := s.idp.TokenRequests.Load()
		r := c.get(fresh.String())
		if r.status != http.StatusBadRequest || !strings.Contains(r.body, "did not accept") {
			t.Fatalf("replayed code: %d %s", r.status, r.body)
		}
		if s.idp.TokenRequests.Load() == before {
			t.Fatal("the code was not presented to the provider")
		}
		if _, _, ok := s.sessionOfBrowser(c); ok {
			t.Fatal("the replayed code signed in")
		}
	})

	t.Run("callback in another browser", func(t *testing.T) {
		// Login CSRF: an attacker's own sign-in finished in the victim's
		// browser would sign the victim in as the attacker.
		s.idp.AddUser(oidctest.User{Email: "mallory@example.com", EmailVerified: true})
		attacker, victim := s.browser(), s.browser()
		cb := s.toCallback(attacker, "mallory@example.com", "")
		victim.get("/login")
		if r := victim.get(cb); r.status != http.StatusBadRequest || !strings.Contains(r.body, "another browser") {
			t.Fatalf("foreign callback: %d %s", r.status, r.body)
		}
		if _, _, ok := s.sessionOfBrowser(victim); ok {
			t.Fatal("the victim was signed in as the attacker")
		}
		// Nor is the flow left for the attacker to finish.
		if r := attacker.get(cb); r.status != http.StatusBadRequest {
			t.Fatalf("attacker after the victim: %d", r.status)
		}
	})
}

func TestSSOReturnURLStaysOnTheDashboard(t *testing.T) {
	s := newSSOEnv(t, nil)
	s.idp.AddUser(oidctest.User{Email: "ada@example.com", EmailVerified: true})
	// A user who has linked ChatGPT and has a key goes to next; give them both.
	b := s.browser()
	if r := s.sso(b, "ada@example.com"); r.status != http.StatusSeeOther {
		t.Fatal(r.status)
	}
	u := s.user("ada@example.com")
	tok := s.fake.AddAccount("acc-sso", "ada@chatgpt.example", "plus")
	if err := s.v.PutTokens(u.ID, vault.TokenBundle{IDToken: tok.IDToken, AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.v.CreateKey(u.ID, "k"); err != nil {
		t.Fatal(err)
	}
	for _, next := range []string{"https://evil.example/", "//evil.example/keys", "/\\evil.example", "/keys/../../evil", "http:/evil.example"} {
		c := s.browser()
		r := c.get(s.toCallback(c, "ada@example.com", next))
		if r.status != http.StatusSeeOther || r.location != "/overview" {
			t.Fatalf("next %q: %d %q", next, r.status, r.location)
		}
	}
	c := s.browser()
	if r := c.get(s.toCallback(c, "ada@example.com", "/keys")); r.location != "/keys" {
		t.Fatalf("next /keys: %d %q", r.status, r.location)
	}
}

func TestSSOWithEmailLinksOff(t *testing.T) {
	s := newSSOEnv(t, func(o *OIDCConfig) { o.EmailLinksOff = true; o.Label = "Sign in with Example ID" })
	b := s.browser()
	page := b.get("/login")
	mustContain(t, page.body, "Sign in with Example ID", `href="/login/oidc"`)
	mustNotContain(t, page.body, `name="email"`, "Email me a sign-in link")
	mustNotContain(t, b.get("/").body, "Sign in by email")
	for _, r := range []resp{
		b.post("/login", url.Values{"email": {"ada@example.com"}}),
		b.get("/login/confirm?token=abcdefabcdefabcdefabcdef"),
		b.post("/login/confirm", url.Values{"token": {"abcdefabcdefabcdefabcdef"}}),
	} {
		if r.status != http.StatusNotFound {
			t.Fatalf("magic-link endpoint answered %d", r.status)
		}
	}
	s.mail.none(t)
	s.idp.AddUser(oidctest.User{Email: "ada@example.com", EmailVerified: true})
	if r := s.sso(b, "ada@example.com"); r.status != http.StatusSeeOther {
		t.Fatalf("SSO: %d %s", r.status, r.body)
	}
}

func TestSSOBesideEmailLinks(t *testing.T) {
	s := newSSOEnv(t, nil)
	page := s.browser().get("/login")
	mustContain(t, page.body, DefaultOIDCLabel, `name="email"`)
	// And the magic link still signs in.
	if _, _, ok := s.sessionOfBrowser(s.signIn("bob@example.com")); !ok {
		t.Fatal("email link did not sign in")
	}
}

func TestSSOProviderDownAtFirst(t *testing.T) {
	// The provider's address is known, but nothing answers there yet: the
	// dashboard builds (no discovery at start), a sign-in gets a clear
	// page, and once the provider is up the next sign-in works.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := newSSOEnvAt(t, nil, "http://"+addr, nil)
	b := s.browser()
	r := b.get("/login/oidc")
	if r.status != http.StatusBadGateway || !strings.Contains(r.body, "cannot be reached") || !strings.Contains(r.body, "email link") {
		t.Fatalf("provider down: %d %s", r.status, r.body)
	}
	if lvl, ok := s.logs.levelOf("OpenID provider cannot be reached"); !ok || lvl.String() != "ERROR" {
		t.Fatalf("no error logged (%v %v)", lvl, ok)
	}
	s.idp = oidctest.StartOn(t, addr, s.srv.URL+"/login/oidc/callback")
	s.idp.AddUser(oidctest.User{Email: "ada@example.com", EmailVerified: true})
	if r := s.sso(b, "ada@example.com"); r.status != http.StatusSeeOther {
		t.Fatalf("after the provider came up: %d %s", r.status, r.body)
	}
}

func TestSSONoSecretInLogsOrURLs(t *testing.T) {
	s := newSSOEnv(t, nil)
	s.idp.AddUser(oidctest.User{Email: "ada@example.com", EmailVerified: true})
	b := s.browser()
	cb := s.toCallback(b, "ada@example.com", "")
	b.get(cb)
	if strings.Contains(cb, oidctest.ClientSecret) {
		t.Fatal("the client secret is in the callback URL")
	}
	s.logs.mu.Lock()
	defer s.logs.mu.Unlock()
	for _, m := range s.logs.msgs {
		if strings.Contains(m, oidctest.ClientSecret) {
			t.Fatalf("log line with the client secret: %s", m)
		}
	}
}

func TestOIDCConfigValidate(t *testing.T) {
	ok := OIDCConfig{Issuer: "https://id.example.com", ClientID: "c"}
	for _, tc := range []struct {
		name string
		mut  func(*OIDCConfig)
		want string // "" valid
	}{
		{"valid", func(*OIDCConfig) {}, ""},
		{"loopback http", func(c *OIDCConfig) { c.Issuer = "http://127.0.0.1:9000" }, ""},
		{"no issuer", func(c *OIDCConfig) { c.Issuer = "" }, "needs an issuer"},
		{"plain http", func(c *OIDCConfig) { c.Issuer = "http://id.example.com" }, "must use https"},
		{"relative", func(c *OIDCConfig) { c.Issuer = "id.example.com" }, "not an absolute URL"},
		{"query", func(c *OIDCConfig) { c.Issuer = "https://id.example.com/?x=1" }, "not an absolute URL"},
		{"no client", func(c *OIDCConfig) { c.ClientID = "" }, "client_id"},
		{"bad domain", func(c *OIDCConfig) { c.Domains = []string{"a@b.com"} }, "not a domain"},
		{"bad scope", func(c *OIDCConfig) { c.Scopes = []string{"a b"} }, "not a scope"},
		{"value without claim", func(c *OIDCConfig) { c.AdminValue = "x" }, "needs admin_claim"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mut(&c)
			err := c.Validate()
			if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestOIDCConfigSetOption(t *testing.T) {
	var c OIDCConfig
	for _, o := range [][]string{
		{"client_id", "cid"}, {"client_secret", "{env.S}"}, {"domains", "a.com", "b.com"}, {"scopes", "openid", "email", "groups"},
		{"admin_claim", "groups", "codex-admins"}, {"email_links", "off"}, {"label", "Sign in with Okta"},
	} {
		if err := c.SetOption(o[0], o[1:]); err != nil {
			t.Fatalf("%v: %v", o, err)
		}
	}
	want := OIDCConfig{ClientID: "cid", ClientSecret: "{env.S}", Domains: []string{"a.com", "b.com"}, Scopes: []string{"openid", "email", "groups"},
		AdminClaim: "groups", AdminValue: "codex-admins", EmailLinksOff: true, Label: "Sign in with Okta"}
	if got := c; got.ClientID != want.ClientID || got.ClientSecret != want.ClientSecret || strings.Join(got.Domains, ",") != "a.com,b.com" ||
		strings.Join(got.Scopes, ",") != "openid,email,groups" || got.AdminClaim != want.AdminClaim || got.AdminValue != want.AdminValue ||
		!got.EmailLinksOff || got.Label != want.Label {
		t.Fatalf("got %+v", got)
	}
	for _, bad := range [][]string{{"client_id"}, {"client_id", "a", "b"}, {"email_links", "maybe"}, {"admin_claim"}, {"domains"}, {"issuer", "x"}} {
		if err := c.SetOption(bad[0], bad[1:]); err == nil {
			t.Fatalf("%v accepted", bad)
		}
	}
}

// FuzzOIDCConfig: any Caddyfile options and issuer parse and validate
// without a panic, and a valid config's issuer is https or loopback http.
func FuzzOIDCConfig(f *testing.F) {
	f.Add("https://id.example.com", "admin_claim", "groups codex-admins")
	f.Add("http://127.0.0.1:9/x", "domains", "example.com @example.org")
	f.Add("http://[::1]", "email_links", "off")
	f.Fuzz(func(t *testing.T, issuer, name, args string) {
		c := OIDCConfig{Issuer: issuer, ClientID: "c"}
		_ = c.SetOption(name, strings.Fields(args))
		if c.Validate() != nil {
			return
		}
		u, err := url.Parse(c.Issuer)
		if err != nil || !(u.Scheme == "https" || u.Scheme == "http" && loopbackHost(u.Host)) {
			t.Fatalf("issuer %q validated", c.Issuer)
		}
		_ = claimHas(args, c.AdminValue)
	})
}
