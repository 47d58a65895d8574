package dashboard

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

type onboardingBody struct {
	linkState
	Keys      int
	Done      bool
	FormToken string // one-time token of the key form
}

func (d *Dashboard) onboarding(w http.ResponseWriter, r *http.Request) {
	d.showOnboarding(w, r, http.StatusOK, flash(r), "")
}

func (d *Dashboard) showOnboarding(w http.ResponseWriter, r *http.Request, status int, flashMsg, errMsg string) {
	d.showOnboardingDetail(w, r, status, flashMsg, errMsg, "")
}

func (d *Dashboard) showOnboardingDetail(w http.ResponseWriter, r *http.Request, status int, flashMsg, errMsg, detail string) {
	s := sessionOf(r)
	ls, err := d.linkStateOf(s.user.ID, "onboarding")
	if err != nil {
		d.log.Error("dashboard: reading token info failed", "user_id", s.user.ID, "error", err)
	}
	n, err := d.activeKeys(s.user.ID)
	if err != nil {
		d.log.Error("dashboard: listing keys failed", "user_id", s.user.ID, "error", err)
	}
	b := onboardingBody{linkState: ls, Keys: n, Done: ls.Linked && n > 0}
	if ls.Linked && n == 0 {
		b.FormToken = d.forms.issue(s.user.ID, d.cfg.Now())
	}
	if r.URL.Query().Get("msg") == "linked" && ls.Linked {
		flashMsg = linkedMessage(ls.Info, n == 0)
	}
	d.render(w, r, status, "onboarding", pageData{Title: "Get started", Flash: flashMsg, Error: errMsg, ErrorDetail: detail, Body: b})
}

// chartDays is how many days the overview chart covers.
const chartDays = 14

type overviewBody struct {
	Today, Week, Total vault.DayUsage
	Charts             []chart // wide and narrow drawings
	Days               []vault.DayUsage
	Link               linkState
	Keys               int
	Recent             []requestRow
	BaseURL            string
	Quota              quotaView
	Accounts           []accountView
	Savings            savings
	SavingsOK          bool
	Cache              cacheView
	CacheOK            bool
}

func (d *Dashboard) overview(w http.ResponseWriter, r *http.Request) {
	s := sessionOf(r)
	now := d.cfg.Now().UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	first := today.AddDate(0, 0, -(chartDays - 1))
	usage, err := d.cfg.Vault.Usage(s.user.ID, first, today)
	errMsg := ""
	if err != nil {
		d.log.Error("dashboard: reading usage failed", "user_id", s.user.ID, "error", err)
		errMsg = "Usage could not be read."
	}
	byDay := map[string]vault.DayUsage{}
	for _, u := range usage {
		byDay[u.Day.Format(time.DateOnly)] = u
	}
	b := overviewBody{BaseURL: d.origin(r) + "/v1"}
	for i := range chartDays {
		day := first.AddDate(0, 0, i)
		u, ok := byDay[day.Format(time.DateOnly)]
		if !ok {
			u = vault.DayUsage{Day: day}
		}
		b.Days = append(b.Days, u)
		if i >= chartDays-7 {
			addUsage(&b.Week, u)
		}
		addUsage(&b.Total, u)
	}
	b.Today = b.Days[len(b.Days)-1]
	b.Charts = []chart{buildChart(b.Days, wideChart), buildChart(b.Days, narrowChart)}
	var lerr, kerr, rerr error
	b.Link, lerr = d.linkStateOf(s.user.ID, "chatgpt")
	b.Keys, kerr = d.activeKeys(s.user.ID)
	recent, rerr := d.cfg.Vault.RecentRequests(s.user.ID, time.Time{}, 5, vault.StatusAll)
	if err := errors.Join(lerr, kerr, rerr); err != nil {
		d.log.Error("dashboard: reading the overview failed", "user_id", s.user.ID, "error", err)
	}
	b.Recent = rowsOf(recent, d.keyNames(s.user.ID))
	d.nameAccounts(s.user.ID, b.Recent)
	snap, ok := d.cfg.Quotas.Get(s.user.ID)
	b.Quota = buildQuotaView(snap, ok, now)
	if accts, err := d.accountViews(s.user.ID); err == nil && len(accts) > 1 {
		b.Accounts = accts // several: every account's windows side by side
	}
	if sv, err := d.savingsOf(s.user.ID, today, today.AddDate(0, 0, -6)); err != nil {
		d.log.Error("dashboard: reading the request log failed", "user_id", s.user.ID, "error", err)
	} else {
		b.Savings, b.SavingsOK = sv, true
	}
	if cv, err := d.cacheViewOf(s.user.ID, today.AddDate(0, 0, -6)); err != nil {
		d.log.Error("dashboard: reading the prompt-cache use failed", "user_id", s.user.ID, "error", err)
	} else {
		b.Cache, b.CacheOK = cv, true
	}
	d.render(w, r, http.StatusOK, "overview", pageData{Title: "Overview", Nav: "overview", Error: errMsg, Body: b})
}

func addUsage(dst *vault.DayUsage, u vault.DayUsage) {
	dst.Requests += u.Requests
	dst.Errors += u.Errors
	dst.InputTokens += u.InputTokens
	dst.OutputTokens += u.OutputTokens
	dst.CachedTokens += u.CachedTokens
	dst.ReasoningTokens += u.ReasoningTokens
}

// pageSize is how many requests a page of the table shows.
const pageSize = 50

type requestsBody struct {
	Rows       []requestRow
	Status     string
	Before     int64
	NextBefore int64
	HasMore    bool
}

func (d *Dashboard) requestsPage(w http.ResponseWriter, r *http.Request) {
	s := sessionOf(r)
	q := r.URL.Query()
	b := requestsBody{Status: q.Get("status")}
	filter := vault.StatusAll
	switch b.Status {
	case "ok":
		filter = vault.StatusSuccess
	case "failed":
		filter = vault.StatusFailed
	default:
		b.Status = ""
	}
	var before time.Time
	if n, err := strconv.ParseInt(q.Get("before"), 10, 64); err == nil && n > 0 {
		before = time.Unix(0, n)
		b.Before = n
	}
	rows, err := d.cfg.Vault.RecentRequests(s.user.ID, before, pageSize+1, filter)
	errMsg := ""
	if err != nil {
		d.log.Error("dashboard: reading requests failed", "user_id", s.user.ID, "error", err)
		errMsg = "Requests could not be read."
	}
	if len(rows) > pageSize {
		rows = rows[:pageSize]
		b.HasMore = true
		b.NextBefore = rows[len(rows)-1].Time.UnixNano()
	}
	b.Rows = rowsOf(rows, d.keyNames(s.user.ID))
	d.nameAccounts(s.user.ID, b.Rows)
	d.render(w, r, http.StatusOK, "requests", pageData{Title: "Requests", Nav: "requests", Error: errMsg, Body: b})
}

// totalTokens is input plus output.
func totalTokens(u vault.DayUsage) int64 { return u.InputTokens + u.OutputTokens }
