package dashboard

import (
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// adminEnv is a dashboard whose admin is admin@example.com (named in
// another case, as a Caddyfile may), with a member who has a key.
type adminEnv struct {
	*env
	admin, member *browser
	memberUser    vault.User
	memberKey     string
	memberKeyID   string
}

func newAdminEnv(t *testing.T) *adminEnv {
	t.Helper()
	e := newEnv(t, func(c *Config) { c.Admins = []string{" Admin@Example.com "} })
	a := &adminEnv{env: e}
	a.admin = e.signIn("admin@example.com")
	a.member = e.signIn("member@example.com")
	a.memberUser = e.user("member@example.com")
	plain, k, err := e.v.CreateKey(a.memberUser.ID, "laptop")
	if err != nil {
		t.Fatal(err)
	}
	a.memberKey, a.memberKeyID = plain, k.ID
	return a
}

func TestIsAdmin(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Admins = []string{"Boss@Example.com", "ops@example.org"} })
	for _, tc := range []struct {
		name  string
		sess  *session
		admin bool
	}{
		{"nobody", nil, false},
		{"listed, any case", &session{user: vault.User{Email: "boss@example.com"}}, true},
		{"listed second", &session{user: vault.User{Email: "ops@example.org"}}, true},
		{"member", &session{user: vault.User{Email: "someone@example.com"}}, false},
		{"same local part, other domain", &session{user: vault.User{Email: "boss@example.org"}}, false},
		{"admin by OIDC claim", &session{user: vault.User{Email: "someone@example.com"}, adminByClaim: true}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := e.d.isAdmin(tc.sess); got != tc.admin {
				t.Fatalf("isAdmin = %v, want %v", got, tc.admin)
			}
		})
	}
}

func TestAdminsMustBeEmails(t *testing.T) {
	_, err := NewMatcher(Config{Admins: []string{"alice@example.com", "not-an-email"}})
	if err == nil || !strings.Contains(err.Error(), `"not-an-email"`) {
		t.Fatalf("err = %v, want one naming the bad admin", err)
	}
}

// A member gets a bare 403 on every admin URL, GET or POST with their own
// valid CSRF token, and the answer names no other user.
func TestAdminPagesRefuseMembers(t *testing.T) {
	a := newAdminEnv(t)
	admin := a.user("admin@example.com")
	a.member.get("/overview")
	mustNotContain(t, a.member.last, `id="nav-admin"`)
	for _, path := range []string{"/admin", "/admin?q=admin", "/admin/user?id=" + admin.ID} {
		r := a.member.get(path)
		if r.status != http.StatusForbidden {
			t.Fatalf("GET %s as a member: %d, want 403", path, r.status)
		}
		mustNotContain(t, r.body, "admin@example.com", admin.ID)
	}
	a.member.get("/overview") // a page with the member's CSRF token
	for _, path := range []string{"/admin/user/disable", "/admin/user/enable", "/admin/key/revoke", "/admin/key/policy", "/admin/invite"} {
		r := a.member.post(path, url.Values{"user": {admin.ID}, "key": {a.memberKeyID}})
		if r.status != http.StatusForbidden {
			t.Fatalf("POST %s as a member: %d, want 403", path, r.status)
		}
		a.member.get("/overview")
	}
	if u := a.user("admin@example.com"); u.Disabled {
		t.Fatal("a member disabled the admin")
	}
	if _, _, err := a.v.VerifyKey(a.memberKey); err != nil {
		t.Fatalf("the member's key stopped working: %v", err)
	}
	// Not signed in: the login page for a GET, 401 for a POST, as elsewhere.
	anon := a.browser()
	if r := anon.get("/admin"); r.status != http.StatusSeeOther || !strings.Contains(r.location, "/login") {
		t.Fatalf("GET /admin signed out: %d %s", r.status, r.location)
	}
}

// Admin forms need the admin's own CSRF token: none, another session's or a
// cross-site post is refused and changes nothing.
func TestAdminFormsNeedCSRF(t *testing.T) {
	a := newAdminEnv(t)
	a.member.get("/overview")
	memberCSRF := csrfOf(a.member.last)
	a.admin.get("/admin/user?id=" + a.memberUser.ID)
	for name, form := range map[string]url.Values{
		"no token":          {"user": {a.memberUser.ID}, "csrf": {""}},
		"another session's": {"user": {a.memberUser.ID}, "csrf": {memberCSRF}},
		"a made-up token":   {"user": {a.memberUser.ID}, "csrf": {"x" + csrfOf(a.admin.last)}},
	} {
		if r := a.admin.post("/admin/user/disable", form); r.status != http.StatusForbidden {
			t.Fatalf("%s: %d, want 403", name, r.status)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, a.admin.url("/admin/user/disable"),
		strings.NewReader(url.Values{"user": {a.memberUser.ID}, "csrf": {csrfOf(a.admin.last)}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if r := a.admin.do(req); r.status != http.StatusForbidden {
		t.Fatalf("cross-site post: %d, want 403", r.status)
	}
	if a.user("member@example.com").Disabled {
		t.Fatal("a refused form disabled the user")
	}
}

// Disabling a user refuses their key and ends their dashboard session at
// once; enabling brings both back.
func TestAdminDisableAndEnableUser(t *testing.T) {
	a := newAdminEnv(t)
	a.admin.get("/admin/user?id=" + a.memberUser.ID)
	mustContain(t, a.admin.last, "member@example.com", `id="disable-user"`, "laptop")
	r := a.admin.follow(a.admin.post("/admin/user/disable", url.Values{"user": {a.memberUser.ID}}))
	if r.status != http.StatusOK {
		t.Fatalf("disable: %d %s", r.status, r.body)
	}
	mustContain(t, r.body, flashes["userdisabled"], `id="user-state"`, `id="enable-user"`)
	if _, _, err := a.v.VerifyKey(a.memberKey); !errors.Is(err, vault.ErrUserDisabled) {
		t.Fatalf("the disabled user's key: %v, want ErrUserDisabled (403)", err)
	}
	if r := a.member.get("/overview"); r.status != http.StatusSeeOther || !strings.Contains(r.location, "/login") {
		t.Fatalf("the disabled user's session still works: %d %s", r.status, r.location)
	}
	r = a.admin.follow(a.admin.post("/admin/user/enable", url.Values{"user": {a.memberUser.ID}}))
	mustContain(t, r.body, flashes["userenabled"], `id="disable-user"`)
	if _, _, err := a.v.VerifyKey(a.memberKey); err != nil {
		t.Fatalf("the enabled user's key: %v", err)
	}
}

// The admin cannot disable themselves (the same ops check as everywhere),
// and the page offers no button for it.
func TestAdminCannotDisableThemselves(t *testing.T) {
	a := newAdminEnv(t)
	self := a.user("admin@example.com")
	a.admin.get("/admin/user?id=" + self.ID)
	mustNotContain(t, a.admin.last, `id="disable-user"`)
	r := a.admin.post("/admin/user/disable", url.Values{"user": {self.ID}})
	if r.status != http.StatusBadRequest {
		t.Fatalf("self-disable: %d, want 400", r.status)
	}
	mustContain(t, r.body, "admin@example.com cannot disable their own account")
	if a.user("admin@example.com").Disabled {
		t.Fatal("the admin disabled themselves")
	}
}

func TestAdminRevokeKey(t *testing.T) {
	a := newAdminEnv(t)
	a.admin.get("/admin/user?id=" + a.memberUser.ID)
	r := a.admin.follow(a.admin.post("/admin/key/revoke", url.Values{"user": {a.memberUser.ID}, "key": {a.memberKeyID}}))
	mustContain(t, r.body, flashes["revoked"], "revoked")
	if _, _, err := a.v.VerifyKey(a.memberKey); err == nil {
		t.Fatal("the revoked key still works")
	}
	// A key of another user is not this user's: the ops message, 404.
	other := a.user("admin@example.com")
	_, k, err := a.v.CreateKey(other.ID, "mine")
	if err != nil {
		t.Fatal(err)
	}
	r = a.admin.post("/admin/key/revoke", url.Values{"user": {a.memberUser.ID}, "key": {k.ID}})
	if r.status != http.StatusNotFound {
		t.Fatalf("another user's key: %d, want 404", r.status)
	}
	mustContain(t, r.body, "member@example.com has no key with id "+k.ID)
}

func TestAdminKeyPolicy(t *testing.T) {
	a := newAdminEnv(t)
	a.admin.get("/admin/user?id=" + a.memberUser.ID)
	form := url.Values{"user": {a.memberUser.ID}, "key": {a.memberKeyID}, "rpm": {"7"}, "tokens-per-day": {"5000"}}
	r := a.admin.follow(a.admin.post("/admin/key/policy", form))
	mustContain(t, r.body, html.EscapeString(flashes["policy"]))
	k, err := a.v.GetKey(a.memberUser.ID, a.memberKeyID)
	if err != nil {
		t.Fatal(err)
	}
	if k.Policy.RPM != 7 || k.Policy.TokensPerDay != 5000 {
		t.Fatalf("policy = %+v", k.Policy)
	}
	// A bad value gets the ops message and a 400, and changes nothing.
	r = a.admin.post("/admin/key/policy", url.Values{"user": {a.memberUser.ID}, "key": {a.memberKeyID}, "rpm": {"lots"}})
	if r.status != http.StatusBadRequest {
		t.Fatalf("bad rpm: %d", r.status)
	}
	mustContain(t, r.body, "rpm")
	a.admin.get("/admin/user?id=" + a.memberUser.ID)
	r = a.admin.follow(a.admin.post("/admin/key/policy", url.Values{"user": {a.memberUser.ID}, "key": {a.memberKeyID}, "clear": {"1"}, "rpm": {"9"}}))
	mustContain(t, r.body, html.EscapeString(flashes["policycleared"]))
	if k, _ = a.v.GetKey(a.memberUser.ID, a.memberKeyID); k.Policy.RPM != 0 || k.Policy.TokensPerDay != 0 {
		t.Fatalf("policy after clear = %+v", k.Policy)
	}
}

// Ids in admin URLs and forms are checked: not an id is a 400, an unknown
// one a 404; neither is reflected.
func TestAdminIDsAreValidated(t *testing.T) {
	a := newAdminEnv(t)
	for _, tc := range []struct {
		id     string
		status int
	}{
		{"", http.StatusBadRequest},
		{"<script>", http.StatusBadRequest},
		{"../keys", http.StatusBadRequest},
		{"00000000-0000-0000-0000-000000000000", http.StatusNotFound},
	} {
		r := a.admin.get("/admin/user?id=" + url.QueryEscape(tc.id))
		if r.status != tc.status {
			t.Fatalf("id %q: %d, want %d", tc.id, r.status, tc.status)
		}
		mustNotContain(t, r.body, "<script>")
	}
	a.admin.get("/admin")
	r := a.admin.post("/admin/key/revoke", url.Values{"user": {a.memberUser.ID}, "key": {"nope"}})
	if r.status != http.StatusBadRequest {
		t.Fatalf("bad key id: %d", r.status)
	}
}

// The list shows each user's state and usage, finds users by email or name
// and pages through them; admin pages are never cached and show no secret.
func TestAdminUsersList(t *testing.T) {
	a := newAdminEnv(t)
	for i := range 25 {
		if _, err := a.v.CreateUser(fmt.Sprintf("user%02d@example.net", i), fmt.Sprintf("Person %02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.v.SetUserDisabled(a.memberUser.ID, true); err != nil {
		t.Fatal(err)
	}
	r := a.admin.get("/admin")
	if r.status != http.StatusOK {
		t.Fatalf("GET /admin: %d", r.status)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("Cache-Control = %q", cc)
	}
	mustContain(t, r.body, `id="nav-admin"`, "27 users", "page 1 of 2", `id="next-page"`, "admin@example.com", "member@example.com", "disabled", "not linked")
	mustNotContain(t, r.body, a.memberKey)
	r = a.admin.get("/admin?page=2")
	mustContain(t, r.body, "page 2 of 2", "user24@example.net", `href="/admin?page=1"`)
	mustNotContain(t, r.body, `class="user-link">admin@example.com`)
	r = a.admin.get("/admin?q=PERSON+07")
	mustContain(t, r.body, "1 user ", "user07@example.net")
	r = a.admin.get("/admin?q=user&page=2")
	mustContain(t, r.body, "25 users", "page 2 of 2", `href="/admin?page=1&amp;q=user"`)
	mustNotContain(t, r.body, "user08@example.net")
	r = a.admin.get("/admin?q=nobody-here")
	mustContain(t, r.body, "No user matches")
	r = a.admin.get("/admin/user?id=" + a.memberUser.ID)
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("user page Cache-Control = %q", cc)
	}
	mustNotContain(t, r.body, a.memberKey)
}

// An admin's invitation makes the account (so closed sign-up lets the
// invitee in) and mails a sign-in link that signs them in; a bad address
// is a 400 that says so, and nothing is mailed.
func TestAdminInvite(t *testing.T) {
	a := newAdminEnv(t)
	a.admin.get("/admin")
	mustContain(t, a.admin.last, `id="invite"`)
	r := a.admin.post("/admin/invite", url.Values{"email": {"not an address"}})
	if r.status != http.StatusBadRequest || !strings.Contains(r.body, "not a valid email address") {
		t.Fatalf("bad invite: %d %s", r.status, r.body)
	}
	a.mail.none(t)

	a.admin.get("/admin")
	r = a.admin.follow(a.admin.post("/admin/invite", url.Values{"email": {"New.Hire@Example.com"}}))
	if r.status != http.StatusOK {
		t.Fatalf("invite: %d %s", r.status, r.body)
	}
	mustContain(t, r.body, flashes["invited"], "new.hire@example.com")
	msg := a.mail.wait(t)
	if msg.To != "new.hire@example.com" {
		t.Fatalf("invitation mailed to %q", msg.To)
	}
	link := linkIn(t, msg.Text)
	if u, err := url.Parse(link); err == nil {
		link = u.RequestURI()
	}
	b := a.browser()
	if r := b.get(link); r.status != http.StatusOK {
		t.Fatalf("the invitation's link: %d", r.status)
	}
	if r := b.post("/login/confirm", url.Values{"token": {tokenOf(t, link)}}); r.status != http.StatusSeeOther {
		t.Fatalf("confirming the invitation: %d %s", r.status, r.body)
	}
	if r := b.get("/keys"); r.status != http.StatusOK || !strings.Contains(r.body, "new.hire@example.com") {
		t.Fatalf("the invitee is not signed in: %d", r.status)
	}
}
