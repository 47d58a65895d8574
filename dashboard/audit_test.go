package dashboard

import (
	"context"
	"encoding/csv"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usemysub/caddy-codex-proxy/vault"
	"github.com/usemysub/caddy-codex-proxy/vault/bolt"
)

// entries reads the whole audit log, oldest first, as "action outcome
// actor-email" lines.
func entries(t *testing.T, v *vault.Vault, q vault.AuditQuery) []string {
	t.Helper()
	es, err := v.AuditLog(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(es) - 1; i >= 0; i-- {
		out = append(out, string(es[i].Action)+" "+es[i].Outcome+" "+es[i].Actor.Email)
	}
	return out
}

// A user's own sign-in, keys and sign-out everywhere are recorded with
// them as the actor and their address; the Activity page shows them,
// and no one else's.
func TestAuditOwnActions(t *testing.T) {
	e := newEnv(t)
	other := e.signIn("bob@example.com")
	other.postForm("/keys", url.Values{"label": {"bob's"}})
	b := e.signIn("ada@example.com")
	b.ip = "198.51.100.7"
	b.get("/keys")
	if r := b.postForm("/keys", url.Values{"label": {"laptop"}}); r.status != http.StatusSeeOther {
		t.Fatalf("create key: %d", r.status)
	}
	ada := e.user("ada@example.com")
	keys, _ := e.v.ListKeys(ada.ID)
	b.get("/keys/revoke?id=" + keys[0].ID)
	if r := b.post("/keys/revoke", url.Values{"id": {keys[0].ID}}); r.status != http.StatusSeeOther {
		t.Fatalf("revoke: %d", r.status)
	}
	got := entries(t, e.v, vault.AuditQuery{TargetUserID: ada.ID})
	want := []string{"user.created ok ada@example.com", "sign-in ok ada@example.com", "key.created ok ada@example.com", "key.revoked ok ada@example.com"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("Ada's entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	es, _ := e.v.AuditLog(context.Background(), vault.AuditQuery{TargetUserID: ada.ID, Action: vault.AuditKeyCreated})
	if es[0].Source != "198.51.100.7" || es[0].Target.KeyID != keys[0].ID || es[0].Detail != `label="laptop"` || es[0].Actor.Kind != vault.ActorUser {
		t.Fatalf("the key's entry: %+v", es[0])
	}
	signIn, _ := e.v.AuditLog(context.Background(), vault.AuditQuery{TargetUserID: ada.ID, Action: vault.AuditSignIn})
	if signIn[0].Detail != "link" {
		t.Fatalf("the sign-in's method: %q", signIn[0].Detail)
	}

	r := b.get("/activity")
	if r.status != http.StatusOK {
		t.Fatalf("/activity: %d", r.status)
	}
	mustContain(t, b.get("/overview").body, `id="activity-link"`)
	mustContain(t, r.body, `data-action="sign-in"`, "Created a key", "Revoked a key", keys[0].ID, "198.51.100.7")
	mustNotContain(t, r.body, "bob@example.com", `id="audit-link"`)

	// Sign out everywhere: recorded, then the session is gone.
	b.get("/overview")
	if r := b.post("/logout/everywhere", nil); r.status != http.StatusSeeOther {
		t.Fatalf("sign out everywhere: %d", r.status)
	}
	if got := entries(t, e.v, vault.AuditQuery{TargetUserID: ada.ID, Action: vault.AuditSignOutAll}); len(got) != 1 {
		t.Fatalf("sign-out everywhere entries: %q", got)
	}
}

// A sign-in refused for a disabled account is recorded as refused.
func TestAuditRefusedSignIn(t *testing.T) {
	e := newEnv(t)
	e.signIn("ada@example.com")
	ada := e.user("ada@example.com")
	if _, err := e.v.SetUserDisabled(ada.ID, true); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.get("/login")
	b.login(url.Values{"email": {"ada@example.com"}})
	link := linkIn(t, e.mail.wait(t).Text)
	if u, err := url.Parse(link); err == nil {
		link = u.RequestURI()
	}
	b.get(link)
	if r := b.post("/login/confirm", url.Values{"token": {tokenOf(t, link)}}); r.status != http.StatusForbidden {
		t.Fatalf("a disabled user's sign-in: %d", r.status)
	}
	es, _ := e.v.AuditLog(context.Background(), vault.AuditQuery{Action: vault.AuditSignIn})
	if len(es) != 2 || es[0].Outcome != vault.OutcomeRefused || es[0].Reason != "the account is disabled" || es[0].Target.UserID != ada.ID {
		t.Fatalf("sign-in entries: %+v", es)
	}
}

// An admin's actions, and their views of another user's page, appear on
// /admin/audit as the admin's, with filters and a CSV export; the member
// sees them on their Activity page without the admin's address, and
// cannot open the audit log.
func TestAdminAuditPage(t *testing.T) {
	a := newAdminEnv(t)
	a.admin.ip = "203.0.113.9"
	a.admin.get("/admin/user?id=" + a.memberUser.ID)
	a.admin.follow(a.admin.post("/admin/user/disable", url.Values{"user": {a.memberUser.ID}}))
	a.admin.follow(a.admin.post("/admin/user/enable", url.Values{"user": {a.memberUser.ID}}))
	self := a.user("admin@example.com")
	a.admin.get("/admin/user?id=" + self.ID) // one's own page is not recorded

	got := entries(t, a.v, vault.AuditQuery{ActorKind: vault.ActorAdmin})
	want := []string{"admin.viewed-user ok admin@example.com", "user.disabled ok admin@example.com",
		"admin.viewed-user ok admin@example.com", "user.enabled ok admin@example.com", "admin.viewed-user ok admin@example.com"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("admin entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	es, _ := a.v.AuditLog(context.Background(), vault.AuditQuery{Action: vault.AuditUserDisabled})
	if es[0].Source != "203.0.113.9" || es[0].Target.UserID != a.memberUser.ID || es[0].Actor.UserID != self.ID {
		t.Fatalf("the disable entry: %+v", es[0])
	}

	r := a.admin.get("/admin/audit")
	if r.status != http.StatusOK {
		t.Fatalf("/admin/audit: %d %s", r.status, r.body)
	}
	mustContain(t, a.admin.get("/admin").body, `id="audit-link"`)
	mustContain(t, r.body, "Disabled a user", "Enabled a user", "admin@example.com (admin)", "member@example.com", "203.0.113.9", `data-action="sign-in"`)
	r = a.admin.get("/admin/audit?action=user.disabled&user=member%40example.com&since=1h")
	mustContain(t, r.body, "Disabled a user")
	mustNotContain(t, r.body, "Enabled a user", `data-action="sign-in"`)
	if r := a.admin.get("/admin/audit?since=yesterday"); r.status != http.StatusBadRequest || !strings.Contains(r.body, "neither a time") {
		t.Fatalf("a bad since: %d", r.status)
	}
	if r := a.admin.get("/admin/audit?action=key.stolen"); r.status != http.StatusBadRequest {
		t.Fatalf("an unknown action: %d", r.status)
	}

	r = a.admin.get("/admin/audit.csv?actor=admin")
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") {
		t.Fatalf("CSV: %d %s", r.status, r.header.Get("Content-Type"))
	}
	rows, err := csv.NewReader(strings.NewReader(r.body)).ReadAll()
	if err != nil || len(rows) != 1+len(want) || rows[0][0] != "time" || rows[1][5] != "admin.viewed-user" || rows[1][2] != "admin@example.com" {
		t.Fatalf("CSV rows: %v %q", err, rows)
	}

	// The member: their Activity shows what the admin did, not from where.
	r = a.member.get("/activity")
	mustContain(t, r.body, "Disabled a user", "Viewed a user&#39;s page", "admin@example.com (admin)")
	mustNotContain(t, r.body, "203.0.113.9")
	for _, path := range []string{"/admin/audit", "/admin/audit.csv", "/admin/audit?user=admin%40example.com"} {
		if r := a.member.get(path); r.status != http.StatusForbidden {
			t.Fatalf("GET %s as a member: %d, want 403", path, r.status)
		}
		mustNotContain(t, a.member.last, "Disabled a user")
	}
	// Paging: older entries behind a link, on both pages.
	for range auditPageSize {
		a.admin.get("/admin/user?id=" + a.memberUser.ID)
	}
	r = a.admin.get("/admin/audit")
	mustContain(t, r.body, `id="older"`)

	mustNotContain(t, r.body, `data-action="user.disabled"`)
	r = a.admin.get(strings.ReplaceAll(between(r.body, `href="`, `" id="older"`), "&amp;", "&"))
	mustContain(t, r.body, `data-action="user.disabled"`)
	r = a.member.get("/activity")
	mustContain(t, r.body, `id="older"`)
}

// between is the text of s between the last start before end and end.
func between(s, start, end string) string {
	i := strings.Index(s, end)
	if i < 0 {
		return ""
	}
	j := strings.LastIndex(s[:i], start)
	if j < 0 {
		return ""
	}
	return s[j+len(start) : i]
}

// failingAudit is a real bbolt store whose audit log cannot be written.
type failingAudit struct{ *bolt.Store }

func (failingAudit) AppendAudit(context.Context, vault.AuditEntry) error {
	return errors.New("disk full")
}

// With the audit log down, a user's own actions and sign-ins still work
// (an ERROR says what was not recorded), while an admin can neither view
// another user's page nor act on it.
func TestAuditDown(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "vault.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := vault.New(failingAudit{st}, vault.Options{EncryptionKeys: []string{testEncKey}, Pepper: testPepper})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	e := newEnv(t, func(c *Config) { c.Vault, c.Admins = v, []string{"admin@example.com"} })
	admin := e.signIn("admin@example.com")
	member := e.signIn("member@example.com")
	member.get("/keys")
	if r := member.postForm("/keys", url.Values{"label": {"laptop"}}); r.status != http.StatusSeeOther {
		t.Fatalf("creating a key with the audit log down: %d", r.status)
	}
	if level, ok := e.logs.levelOf("writing the audit log failed"); !ok || level != slog.LevelError {
		t.Fatalf("the lost entries were not logged at ERROR (%v %v)", level, ok)
	}
	u, _ := v.UserByEmail("member@example.com")
	if keys, _ := v.ListKeys(u.ID); len(keys) != 1 {
		t.Fatalf("the member's key: %d keys", len(keys))
	}
	r := admin.get("/admin/user?id=" + u.ID)
	if r.status != http.StatusServiceUnavailable || strings.Contains(r.body, "laptop") {
		t.Fatalf("an unrecorded view of another user's page: %d", r.status)
	}
	mustContain(t, r.body, "The audit log is unavailable")
	admin.get("/admin")
	r = admin.post("/admin/user/disable", url.Values{"user": {u.ID}})
	if r.status != http.StatusServiceUnavailable || strings.Contains(r.body, "laptop") {
		t.Fatalf("an unrecorded disable: %d", r.status)
	}
	mustContain(t, r.body, "Nothing was changed: admin actions are recorded in the audit log")
	if u, _ := v.UserByEmail("member@example.com"); u.Disabled {
		t.Fatal("the member was disabled unrecorded")
	}
	admin.get("/admin")
	if r := admin.post("/admin/invite", url.Values{"email": {"new@example.com"}}); r.status != http.StatusServiceUnavailable {
		t.Fatalf("an unrecorded invite: %d", r.status)
	}
	e.mail.none(t)
}

// An invitation is the user's creation and the mailed link, both the
// admin's; a refused one (a bad address) is recorded as refused.
func TestAuditInvite(t *testing.T) {
	a := newAdminEnv(t)
	a.admin.get("/admin")
	a.admin.post("/admin/invite", url.Values{"email": {"not an address"}})
	a.admin.get("/admin")
	a.admin.post("/admin/invite", url.Values{"email": {"New.Hire@Example.com"}})
	a.mail.wait(t)
	got := entries(t, a.v, vault.AuditQuery{ActorKind: vault.ActorAdmin})
	want := []string{"user.created refused admin@example.com", "user.created ok admin@example.com", "user.invited ok admin@example.com"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("invite entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	es, _ := a.v.AuditLog(context.Background(), vault.AuditQuery{Action: vault.AuditInviteSent})
	if es[0].Target.Email != "new.hire@example.com" || es[0].Target.UserID == "" || strings.Contains(es[0].Detail, "token") {
		t.Fatalf("the invitation's entry: %+v", es[0])
	}
}
