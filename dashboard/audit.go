package dashboard

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/usemysub/caddy-codex-proxy/keypolicy"
	"github.com/usemysub/caddy-codex-proxy/ops"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// The audit log in the dashboard: what is written from here, and the two
// pages that read it (/admin/audit for admins, /activity for everyone).
//
// Operator and admin actions are written by ops, before they happen (an
// admin's action goes through ops.Service with the admin as the actor).
// What the dashboard writes itself is a user's own actions and sign-ins,
// after they happened and best effort: a failed write is logged at ERROR
// and the action stands. A user revoking a leaked key must not be stopped
// by an audit log that is down, and a record of a sign-in cannot come
// before the sign-in is proven (docs/security.md). An admin's view of
// another user's page is the exception: it is shown only once recorded.

// auditSource is the address an entry records: the client's, as the rate
// limits see it.
func (d *Dashboard) auditSource(r *http.Request) string { return d.cfg.ClientIP(r) }

// audit records one of the signed-in user's own actions on their account;
// the target's user is theirs unless set.
func (d *Dashboard) audit(r *http.Request, action vault.AuditAction, t vault.AuditTarget, detail string) {
	s := sessionOf(r)
	if s == nil {
		return
	}
	if t.UserID == "" {
		t.UserID, t.Email = s.user.ID, s.user.Email
	}
	d.writeAudit(r.Context(), vault.AuditEntry{Action: action, Target: t, Detail: detail, Source: d.auditSource(r),
		Actor: vault.AuditActor{Kind: vault.ActorUser, UserID: s.user.ID, Email: s.user.Email}})
}

// auditSignIn records a sign-in of u (or of email, refused before there
// was a user) by method ("link", "oidc").
func (d *Dashboard) auditSignIn(r *http.Request, u vault.User, email, outcome, reason string) {
	if u.Email != "" {
		email = u.Email
	}
	d.writeAudit(r.Context(), vault.AuditEntry{Action: vault.AuditSignIn, Detail: signInMethod(r), Source: d.auditSource(r),
		Actor:   vault.AuditActor{Kind: vault.ActorUser, UserID: u.ID, Email: email},
		Target:  vault.AuditTarget{UserID: u.ID, Email: email},
		Outcome: outcome, Reason: reason})
}

// signInMethod names how a sign-in was proven, from the page finishing it.
func signInMethod(r *http.Request) string {
	if strings.HasSuffix(r.URL.Path, "/login/oidc/callback") {
		return "oidc"
	}
	return "link"
}

// writeAudit writes e, best effort.
func (d *Dashboard) writeAudit(ctx context.Context, e vault.AuditEntry) {
	if _, err := d.cfg.Vault.Audit(ctx, e); err != nil && !errorsIsNoAudit(err) {
		d.log.Error("dashboard: writing the audit log failed", "action", string(e.Action), "user_id", e.Target.UserID, "error", err)
	}
}

// errorsIsNoAudit is an engine without an audit log: nothing to write.
func errorsIsNoAudit(err error) bool { return errors.Is(err, vault.ErrNoAuditStore) }

// auditDownMessage tells an admin why an action was refused.
const auditDownMessage = "Nothing was changed: admin actions are recorded in the audit log, which cannot be written right now. Try again in a moment."

// auditAdminView records an admin's view of another user's page, and
// reports whether the page may be shown: not if the entry could not be
// written (an error page says so).
func (d *Dashboard) auditAdminView(w http.ResponseWriter, r *http.Request, u vault.User) bool {
	if s := sessionOf(r); s == nil || s.user.ID == u.ID {
		return true // one's own page is no one else's business
	}
	return d.auditAdmin(w, r, vault.AuditAdminViewedUser, u, "",
		"Viewing another user's page is recorded in the audit log, which cannot be written right now. Try again in a moment.")
}

// auditAdmin records an admin's act on u that does not go through ops (a
// view, a sign-in link mailed) and reports whether it may go ahead: not
// if the entry could not be written, when an error page with refusal says
// so.
func (d *Dashboard) auditAdmin(w http.ResponseWriter, r *http.Request, action vault.AuditAction, u vault.User, detail, refusal string) bool {
	s := sessionOf(r)
	_, err := d.cfg.Vault.Audit(r.Context(), vault.AuditEntry{Action: action, Source: d.auditSource(r), Detail: detail,
		Actor:  vault.AuditActor{Kind: vault.ActorAdmin, UserID: s.user.ID, Email: s.user.Email},
		Target: vault.AuditTarget{UserID: u.ID, Email: u.Email}})
	if err != nil && !errorsIsNoAudit(err) {
		d.log.Error("dashboard: writing the audit log failed; the admin's "+string(action)+" was refused", "admin_id", s.user.ID, "user_id", u.ID, "error", err)
		d.renderError(w, r, http.StatusServiceUnavailable, "The audit log is unavailable", refusal)
		return false
	}
	return true
}

// auditBody is what the audit and activity pages show.
type auditBody struct {
	// Admin is the admin page (filters, every user); else the user's own.
	Admin   bool
	Rows    []auditRow
	Filter  auditFilter
	Actions []vault.AuditAction
	Actors  []string
	// NextHref is the next (older) page, "" on the last.
	NextHref string
	CSVHref  string
	First    bool
}

// auditFilter is the admin page's form, as typed.
type auditFilter struct {
	Since, Until, User, Action, Actor string
}

// auditRow is one entry as a page shows it.
type auditRow struct {
	vault.AuditEntry
	Actor, What, Target string
	Refused             bool
}

// auditPageSize is how many entries a page shows.
const auditPageSize = 50

// actionNames are the entries' actions in words.
var actionNames = map[vault.AuditAction]string{
	vault.AuditSignIn: "Signed in", vault.AuditSignOutAll: "Signed out everywhere",
	vault.AuditKeyCreated: "Created a key", vault.AuditKeyRevoked: "Revoked a key", vault.AuditKeyPolicy: "Changed a key's policy",
	vault.AuditKeyUsageReset: "Reset a key's usage", vault.AuditAccountLinked: "Linked a ChatGPT account",
	vault.AuditAccountUnlinked: "Unlinked a ChatGPT account", vault.AuditAccountRelinked: "Linked a ChatGPT account again",
	vault.AuditAccountsOrdered: "Reordered ChatGPT accounts", vault.AuditAccountPolicySet: "Changed how accounts are chosen",
	vault.AuditUserCreated: "Created a user", vault.AuditUserDisabled: "Disabled a user", vault.AuditUserEnabled: "Enabled a user",
	vault.AuditInviteSent:   "Invited a user",
	vault.AuditSignupPolicy: "Changed the sign-up policy", vault.AuditAdminViewedUser: "Viewed a user's page",
}

// rowOf describes an entry in words.
func rowOf(e vault.AuditEntry) auditRow {
	row := auditRow{AuditEntry: e, Refused: e.Outcome != vault.OutcomeOK}
	switch e.Actor.Kind {
	case vault.ActorCLI:
		row.Actor = "CLI"
		if e.Actor.Via == vault.ActorAdminAPI {
			row.Actor = "CLI via the admin API"
		}
	case vault.ActorAdminAPI:
		row.Actor = "Admin API"
	default:
		row.Actor = e.Actor.Email
	}
	if e.Actor.OSUser != "" {
		row.Actor += " (OS user " + e.Actor.OSUser + ")"
	}
	if e.Actor.Kind == vault.ActorAdmin {
		row.Actor += " (admin)"
	}
	row.What = actionNames[e.Action]
	if row.What == "" {
		row.What = string(e.Action)
	}
	row.Target = e.Target.Email
	if e.Target.KeyID != "" {
		row.Target = strings.TrimSpace(row.Target + " · key " + e.Target.KeyID)
	}
	if e.Target.AccountID != "" {
		row.Target = strings.TrimSpace(row.Target + " · account " + e.Target.AccountID)
	}
	return row
}

// adminAudit is /admin/audit: every entry, filtered, newest first.
func (d *Dashboard) adminAudit(w http.ResponseWriter, r *http.Request) {
	req, f, err := d.auditRequest(r)
	b := auditBody{Admin: true, Filter: f, Actions: vault.AuditActions, First: req.Before == "",
		Actors: []string{vault.ActorUser, vault.ActorAdmin, vault.ActorCLI, vault.ActorAdminAPI}}
	if err != nil {
		d.render(w, r, ops.StatusOf(err), "audit", pageData{Title: "Audit log", Nav: "audit", Error: err.Error(), Body: b})
		return
	}
	req.Limit = auditPageSize
	res, err := ops.Local(d.cfg.Vault).ListAudit(r.Context(), req)
	if err != nil {
		status := ops.StatusOf(err)
		msg := err.Error()
		if status >= 500 {
			d.log.Error("dashboard: reading the audit log failed", "error", err)
			msg = "The audit log could not be read. Try again."
		}
		d.render(w, r, status, "audit", pageData{Title: "Audit log", Nav: "audit", Error: msg, Body: b})
		return
	}
	q := r.URL.Query()
	q.Del("before")
	b.CSVHref = d.url("admin/audit.csv") + "?" + q.Encode()
	if res.Next != "" {
		q.Set("before", res.Next)
		b.NextHref = d.url("admin/audit") + "?" + q.Encode()
	}
	for _, e := range res.Entries {
		b.Rows = append(b.Rows, rowOf(e))
	}
	d.render(w, r, http.StatusOK, "audit", pageData{Title: "Audit log", Nav: "audit", Body: b})
}

// auditRequest reads the admin page's filters.
func (d *Dashboard) auditRequest(r *http.Request) (ops.AuditRequest, auditFilter, error) {
	q := r.URL.Query()
	f := auditFilter{Since: q.Get("since"), Until: q.Get("until"), User: q.Get("user"), Action: q.Get("action"), Actor: q.Get("actor")}
	for _, s := range []*string{&f.Since, &f.Until, &f.User, &f.Action, &f.Actor} {
		if len(*s) > 200 {
			*s = (*s)[:200]
		}
		*s = strings.TrimSpace(*s)
	}
	v := url.Values{"since": {f.Since}, "until": {f.Until}, "email": {f.User}, "action": {f.Action}, "actor": {f.Actor}, "before": {q.Get("before")}}
	req, err := ops.ParseAuditRequest(v, d.cfg.Now())
	return req, f, err
}

// adminAuditCSV is the admin page's filtered entries as CSV, up to
// csvMaxRows.
func (d *Dashboard) adminAuditCSV(w http.ResponseWriter, r *http.Request) {
	req, _, err := d.auditRequest(r)
	if err != nil {
		d.renderError(w, r, ops.StatusOf(err), "The export failed", err.Error())
		return
	}
	var all []vault.AuditEntry
	for len(all) < csvMaxRows {
		req.Limit = min(vault.MaxAuditLimit, csvMaxRows-len(all))
		page, err := ops.Local(d.cfg.Vault).ListAudit(r.Context(), req)
		if err != nil {
			d.log.Error("dashboard: reading the audit log for export failed", "error", err)
			d.renderError(w, r, http.StatusInternalServerError, "The export failed", "The audit log could not be read. Try again.")
			return
		}
		all = append(all, page.Entries...)
		if page.Next == "" {
			break
		}
		req.Before = page.Next
	}
	name := "audit-" + d.cfg.Now().UTC().Format("2006-01-02") + ".csv"
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Header().Set("Cache-Control", "no-store")
	_ = ops.WriteAuditCSV(w, all)
}

// activityPage is /activity: the entries about the signed-in user's own
// account, whoever made them (an admin's included), newest first.
func (d *Dashboard) activityPage(w http.ResponseWriter, r *http.Request) {
	s := sessionOf(r)
	before := r.URL.Query().Get("before")
	b := auditBody{First: before == ""}
	entries, err := d.cfg.Vault.AuditLog(r.Context(), vault.AuditQuery{TargetUserID: s.user.ID, Before: before, Limit: auditPageSize + 1})
	if err != nil && !errorsIsNoAudit(err) {
		d.log.Error("dashboard: reading the user's activity failed", "user_id", s.user.ID, "error", err)
		d.render(w, r, http.StatusInternalServerError, "audit", pageData{Title: "Activity", Nav: "activity", Error: "Your activity could not be read. Try again.", Body: b})
		return
	}
	if len(entries) > auditPageSize {
		entries = entries[:auditPageSize]
		b.NextHref = d.url("activity") + "?before=" + url.QueryEscape(entries[auditPageSize-1].ID)
	}
	for _, e := range entries {
		if e.Actor.UserID != s.user.ID {
			e.Source = "" // an admin's address is not the member's to see
		}
		b.Rows = append(b.Rows, rowOf(e))
	}
	d.render(w, r, http.StatusOK, "audit", pageData{Title: "Activity", Nav: "activity", Body: b})
}

// auditSignUp records the account a sign-in just made for its user.
func (d *Dashboard) auditSignUp(r *http.Request, u vault.User) {
	d.writeAudit(r.Context(), vault.AuditEntry{Action: vault.AuditUserCreated, Detail: "sign-up by " + signInMethod(r),
		Source: d.auditSource(r), Actor: vault.AuditActor{Kind: vault.ActorUser, UserID: u.ID, Email: u.Email},
		Target: vault.AuditTarget{UserID: u.ID, Email: u.Email}})
}

// hasAccount reports whether the user has a linked account already, so
// linking again is told from a first link.
func (d *Dashboard) hasAccount(userID string) bool {
	accts, err := d.cfg.Vault.Accounts(userID)
	return err == nil && len(accts) > 0
}

// auditLink records a (re-)link of the user's first account.
func (d *Dashboard) auditLink(r *http.Request, relinked bool) {
	action := vault.AuditAccountLinked
	if relinked {
		action = vault.AuditAccountRelinked
	}
	var t vault.AuditTarget
	if accts, err := d.cfg.Vault.Accounts(sessionOf(r).user.ID); err == nil && len(accts) > 0 {
		t.AccountID = accts[0].ID
	}
	d.audit(r, action, t, "")
}

// policyChange is a key policy form as "name=value" pairs of the fields
// that are set, in field order.
func policyChange(form map[string]string) string {
	var parts []string
	for _, f := range keypolicy.FieldNames {
		if v := form[f]; v != "" {
			parts = append(parts, f+"="+v)
		}
	}
	if len(parts) == 0 {
		return "cleared"
	}
	return strings.Join(parts, " ")
}

// orderDetail is an account order as the entry's detail.
func orderDetail(ids []string) string { return "order: " + strings.Join(ids, " ") }
