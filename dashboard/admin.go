package dashboard

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/usemysub/caddy-codex-proxy/keypolicy"
	"github.com/usemysub/caddy-codex-proxy/ops"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// The admin pages: every user with their usage, one user's keys, accounts
// and recent requests, and the actions on them. They read what a member's
// own pages read, for any user, and act only through ops.Service, the use
// cases the CLI and the admin API run, so the checks and the messages are
// the same. No page shows a secret: keys appear by prefix, accounts by
// label, email and plan, requests without bodies.

// adminPageSize is how many users one page of the list shows: each costs a
// few vault reads (usage roll-ups, keys, accounts, the request log for the
// value).
const adminPageSize = 20

// adminRecent is how many of a user's requests their admin page shows.
const adminRecent = 20

// adminUserRow is one line of the users list.
type adminUserRow struct {
	ops.UserInfo
	Admin    bool
	Accounts []accountView
	LastUsed time.Time
	Today    vault.DayUsage
	Week     vault.DayUsage
	Value    savings
	ValueOK  bool
}

type adminUsersBody struct {
	Query    string
	Rows     []adminUserRow
	Page     int
	Pages    int
	Total    int // users matching Query
	PrevPage int // 0: none
	NextPage int // 0: none
	PrevHref string
	NextHref string
}

// adminUsers lists the users matching ?q= (in email or name, any case),
// a page (?page=, from 1) at a time.
func (d *Dashboard) adminUsers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	query := strings.TrimSpace(q.Get("q"))
	if len(query) > maxEmailLen {
		query = query[:maxEmailLen]
	}
	page, err := strconv.Atoi(q.Get("page"))
	if err != nil || page < 1 {
		page = 1
	}
	res, err := ops.Local(d.cfg.Vault).ListUsers(r.Context())
	if err != nil {
		d.log.Error("dashboard: listing users failed", "error", err)
		d.renderError(w, r, http.StatusServiceUnavailable, "Users could not be read", "Try again in a moment.")
		return
	}
	matches := res.Users[:0]
	needle := strings.ToLower(query)
	for _, u := range res.Users {
		if needle == "" || strings.Contains(u.Email, needle) || strings.Contains(strings.ToLower(u.Name), needle) {
			matches = append(matches, u)
		}
	}
	b := adminUsersBody{Query: query, Total: len(matches), Page: page}
	b.Pages = max(1, (len(matches)+adminPageSize-1)/adminPageSize)
	b.Page = min(page, b.Pages)
	from := (b.Page - 1) * adminPageSize
	to := min(from+adminPageSize, len(matches))
	now := d.cfg.Now().UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	for _, u := range matches[from:to] {
		b.Rows = append(b.Rows, d.adminRow(u, today))
	}
	if b.Page > 1 {
		b.PrevPage = b.Page - 1
		b.PrevHref = d.url("admin") + "?" + adminListQuery(query, b.PrevPage)
	}
	if b.Page < b.Pages {
		b.NextPage = b.Page + 1
		b.NextHref = d.url("admin") + "?" + adminListQuery(query, b.NextPage)
	}
	d.render(w, r, http.StatusOK, "admin_users", pageData{Title: "Users", Nav: "admin", Flash: flash(r), Body: b})
}

// adminListQuery is the query string of a page of the list.
func adminListQuery(query string, page int) string {
	v := url.Values{}
	if query != "" {
		v.Set("q", query)
	}
	v.Set("page", strconv.Itoa(page))
	return v.Encode()
}

// adminRow gathers one user's line; what cannot be read is left out and
// logged, so one bad record does not hide the whole list.
func (d *Dashboard) adminRow(u ops.UserInfo, today time.Time) adminUserRow {
	row := adminUserRow{UserInfo: u, Admin: d.admins[u.Email]}
	if accts, err := d.accountViews(u.ID); err == nil {
		row.Accounts = accts
	} else {
		d.log.Error("dashboard: reading a user's accounts failed", "user_id", u.ID, "error", err)
	}
	if keys, err := d.cfg.Vault.ListKeys(u.ID); err == nil {
		for _, k := range keys {
			if k.LastUsed.After(row.LastUsed) {
				row.LastUsed = k.LastUsed
			}
		}
	}
	week := today.AddDate(0, 0, -6)
	if usage, err := d.cfg.Vault.Usage(u.ID, week, today); err == nil {
		for _, day := range usage {
			addUsage(&row.Week, day)
			if day.Day.Equal(today) {
				row.Today = day
			}
		}
	} else {
		d.log.Error("dashboard: reading a user's usage failed", "user_id", u.ID, "error", err)
	}
	if sv, err := d.savingsOf(u.ID, today, week); err == nil {
		row.Value, row.ValueOK = sv, true
	}
	return row
}

// adminKey is a key on a user's admin page.
type adminKey struct {
	ops.KeyView
	Policy map[string]string // the policy's fields as text, empty ones left out
	Badge  string
}

type adminUserBody struct {
	User     vault.User
	Admin    bool
	Self     bool
	Keys     []adminKey
	Accounts []accountView
	Recent   []requestRow
	Today    vault.DayUsage
	Week     vault.DayUsage
	Fields   []string
	Efforts  []string
}

// adminTarget is the user named by the id in the query (GET) or the form
// (POST); ok is false once a 400 or 404 page has been written.
func (d *Dashboard) adminTarget(w http.ResponseWriter, r *http.Request, id string) (vault.User, bool) {
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		d.renderError(w, r, http.StatusBadRequest, "Bad request", "That is not a user id.")
		return vault.User{}, false
	}
	u, err := d.cfg.Vault.User(id)
	if err != nil {
		d.renderError(w, r, http.StatusNotFound, "User not found", "There is no user with this id.")
		return vault.User{}, false
	}
	return u, true
}

// adminUser is one user's page.
func (d *Dashboard) adminUser(w http.ResponseWriter, r *http.Request) {
	u, ok := d.adminTarget(w, r, r.URL.Query().Get("id"))
	if !ok || !d.auditAdminView(w, r, u) {
		return
	}
	d.showAdminUser(w, r, http.StatusOK, u, flash(r), "")
}

func (d *Dashboard) showAdminUser(w http.ResponseWriter, r *http.Request, status int, u vault.User, flashMsg, errMsg string) {
	b := adminUserBody{User: u, Admin: d.admins[u.Email], Self: sessionOf(r).user.ID == u.ID, Fields: keypolicy.FieldNames, Efforts: keypolicy.Efforts}
	keys, err := ops.Local(d.cfg.Vault).ListKeys(r.Context(), u.Email)
	if err != nil {
		d.log.Error("dashboard: reading a user's keys failed", "user_id", u.ID, "error", err)
		errMsg = strings.TrimSpace(errMsg + " The keys could not be read.")
	}
	for _, k := range keys.Keys {
		ak := adminKey{KeyView: k, Policy: map[string]string{}}
		for f, v := range policyForm(k.Policy) {
			if v != "" {
				ak.Policy[f] = v
			}
		}
		if k.Usage != nil {
			ak.Badge = keyBadge(k.Key, *k.Usage)
		}
		b.Keys = append(b.Keys, ak)
	}
	if b.Accounts, err = d.accountViews(u.ID); err != nil {
		d.log.Error("dashboard: reading a user's accounts failed", "user_id", u.ID, "error", err)
	}
	now := d.cfg.Now().UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	if usage, err := d.cfg.Vault.Usage(u.ID, today.AddDate(0, 0, -6), today); err == nil {
		for _, day := range usage {
			addUsage(&b.Week, day)
			if day.Day.Equal(today) {
				b.Today = day
			}
		}
	}
	recent, err := d.cfg.Vault.RecentRequests(u.ID, time.Time{}, adminRecent, vault.StatusAll)
	if err != nil {
		d.log.Error("dashboard: reading a user's requests failed", "user_id", u.ID, "error", err)
	}
	b.Recent = rowsOf(recent, d.keyNames(u.ID))
	d.nameAccounts(u.ID, b.Recent)
	d.render(w, r, status, "admin_user", pageData{Title: u.Email, Nav: "admin", Flash: flashMsg, Error: errMsg, Body: b})
}
