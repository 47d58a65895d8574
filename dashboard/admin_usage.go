package dashboard

import (
	"cmp"
	"encoding/csv"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// Usage by key and by model, for admins: every request of a period (UTC
// days ending today), summed per user and key and per model, priced as
// the users list prices a week (tokens grouped by model, then
// PriceTable.Cost), with a CSV export of each table. The sums come from
// the request log (kept Options.LogRetention, 30 days by default), read
// back newest first up to maxUsageRecords records; past that the page
// says it covers only the newest ones. The export holds key ids and
// labels, never a key's plaintext, prefix or hash.

// maxUsageRecords bounds the request-log records one usage page reads.
const maxUsageRecords = 200000

// usagePeriod is one choice of period: Days UTC days ending today.
type usagePeriod struct {
	ID, Label string
	Days      int
}

// usagePeriods are the periods offered (periodOf: 7 days by default, as
// the users list shows).
var usagePeriods = []usagePeriod{{"today", "Today", 1}, {"7d", "7 days", 7}, {"30d", "30 days", 30}}

// periodOf is the period ?period= names (7 days for none or an unknown one).
func periodOf(id string) usagePeriod {
	for _, p := range usagePeriods {
		if p.ID == id {
			return p
		}
	}
	return usagePeriods[1]
}

// tally sums requests and tokens, and the tokens by model for the value.
type tally struct {
	Requests, Errors      int64
	Input, Cached, Output int64
	Value                 float64
	models                map[string]*[3]int64
}

func (t *tally) add(r vault.LogRecord) {
	t.Requests++
	if r.Status >= 400 || r.ErrorCode != "" {
		t.Errors++
	}
	t.Input += r.InputTokens
	t.Cached += r.CachedTokens
	t.Output += r.OutputTokens
	if t.models == nil {
		t.models = map[string]*[3]int64{}
	}
	m := t.models[r.Model]
	if m == nil {
		m = &[3]int64{}
		t.models[r.Model] = m
	}
	m[0] += r.InputTokens
	m[1] += r.CachedTokens
	m[2] += r.OutputTokens
}

// price sets Value as valueOf does: each model's tokens at its price.
func (t *tally) price(p PriceTable) {
	t.Value = 0
	for model, m := range t.models {
		t.Value += p.Lookup(model).Cost(m[0], m[1], m[2])
	}
}

// usageKeyRef names a row of the keys table: a user and one of their
// keys ("" for requests without one).
type usageKeyRef struct{ user, key string }

// usageKeyRow is one user's key (or their requests without a key).
type usageKeyRow struct {
	UserID, Email string
	KeyID         string
	// KeyName is the label, else the prefix (on the page only); KeyLabel
	// the label alone (the export).
	KeyName, KeyLabel string
	KeyState          string // active, revoked, deleted or "" (no key)
	tally
}

// usageModelRow is one model.
type usageModelRow struct {
	Model string
	tally
}

type adminUsageBody struct {
	Period   usagePeriod
	Periods  []usagePeriod
	From, To time.Time // the first day, and the end of today
	Keys     []usageKeyRow
	Models   []usageModelRow
	Total    tally
	// Capped says only the newest Limit requests were read.
	Capped bool
	Limit  int64
}

// usageReport sums the period's requests; the error is the vault's.
func (d *Dashboard) usageReport(p usagePeriod) (adminUsageBody, error) {
	now := d.cfg.Now().UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	b := adminUsageBody{Period: p, Periods: usagePeriods, From: today.AddDate(0, 0, 1-p.Days), To: today.AddDate(0, 0, 1), Limit: int64(d.usageMax)}
	byKey := map[usageKeyRef]*usageKeyRow{}
	byModel := map[string]*usageModelRow{}
	capped, err := d.walkLog(b.From, func(r vault.LogRecord) {
		k := byKey[usageKeyRef{r.UserID, r.KeyID}]
		if k == nil {
			k = &usageKeyRow{UserID: r.UserID, KeyID: r.KeyID}
			byKey[usageKeyRef{r.UserID, r.KeyID}] = k
		}
		k.add(r)
		m := byModel[r.Model]
		if m == nil {
			m = &usageModelRow{Model: r.Model}
			byModel[r.Model] = m
		}
		m.add(r)
		b.Total.add(r)
	})
	if err != nil {
		return b, err
	}
	b.Capped = capped
	d.nameKeys(byKey)
	for _, k := range byKey {
		k.price(d.prices)
		b.Keys = append(b.Keys, *k)
	}
	for _, m := range byModel {
		m.price(d.prices)
		b.Models = append(b.Models, *m)
	}
	b.Total.price(d.prices)
	slices.SortFunc(b.Keys, func(x, y usageKeyRow) int {
		return cmp.Or(cmp.Compare(y.Value, x.Value), cmp.Compare(y.Requests, x.Requests), cmp.Compare(x.Email, y.Email), cmp.Compare(x.KeyName, y.KeyName), cmp.Compare(x.KeyID, y.KeyID))
	})
	slices.SortFunc(b.Models, func(x, y usageModelRow) int {
		return cmp.Or(cmp.Compare(y.Value, x.Value), cmp.Compare(y.Requests, x.Requests), cmp.Compare(x.Model, y.Model))
	})
	return b, nil
}

// walkLog calls fn for every request-log record at or after since,
// newest first, in pages of valuePage, up to usageMax records; capped
// says it stopped there with more of the period unread.
//
// Pages are asked for by time (LogQuery.Before), and several records can
// share a time (a store may keep microseconds only), so a page cut among
// them must neither skip nor repeat any: each page after the first asks
// for what is older than a microsecond after the previous page's oldest
// record and skips the records of that microsecond the previous page
// already had; a page holding nothing new is asked for again, twice as
// long. Only more than the vault's longest page (valuePage, 1000) of
// records within one microsecond makes it step past the rest of them.
func (d *Dashboard) walkLog(since time.Time, fn func(vault.LogRecord)) (capped bool, err error) {
	var before time.Time
	var seen map[vault.LogRecord]int // the previous page's records at or after before - 1µs
	limit := d.valuePage
	read := 0
	for {
		page, err := d.cfg.Vault.RecentRequests("", before, limit, vault.StatusAll)
		if err != nil {
			return false, err
		}
		skip := maps.Clone(seen)
		var fresh []vault.LogRecord
		for _, r := range page {
			if skip[r] > 0 {
				skip[r]--
				continue
			}
			fresh = append(fresh, r)
		}
		full := len(page) == limit
		if len(fresh) == 0 && full && limit < valuePage {
			limit = min(2*limit, valuePage) // all seen: read further at the same place
			continue
		}
		for _, r := range fresh {
			if r.Time.Before(since) {
				continue
			}
			if read >= d.usageMax {
				return true, nil
			}
			read++
			fn(r)
		}
		if !full || page[len(page)-1].Time.Before(since) {
			return false, nil
		}
		oldest := page[len(page)-1].Time
		before, limit = oldest.Add(time.Microsecond), d.valuePage
		if len(fresh) == 0 {
			before = oldest // a whole longest page within one microsecond
		}
		seen = map[vault.LogRecord]int{}
		for _, r := range page {
			if r.Time.Before(before) {
				seen[r]++
			}
		}
	}
}

// nameKeys fills in each row's user email and key name from the vault;
// what is gone (a deleted user or key) is named as such.
func (d *Dashboard) nameKeys(rows map[usageKeyRef]*usageKeyRow) {
	users := map[string]vault.User{}
	keys := map[string]map[string]vault.Key{}
	for ref, row := range rows {
		u, ok := users[ref.user]
		if !ok {
			if got, err := d.cfg.Vault.User(ref.user); err == nil {
				u = got
				keys[ref.user] = d.keyNames(ref.user)
			}
			users[ref.user] = u
		}
		row.Email = u.Email
		if row.Email == "" {
			row.Email = "deleted user"
		}
		if ref.key == "" {
			row.KeyName = "no key"
			continue
		}
		k, ok := keys[ref.user][ref.key]
		switch {
		case !ok:
			row.KeyName, row.KeyState = "deleted key", "deleted"
		default:
			row.KeyLabel, row.KeyName, row.KeyState = k.Label, k.Label, "active"
			if row.KeyName == "" {
				row.KeyName = k.Prefix + "…"
			}
			if k.Disabled {
				row.KeyState = "revoked"
			}
		}
	}
}

// adminUsage is the page.
func (d *Dashboard) adminUsage(w http.ResponseWriter, r *http.Request) {
	b, err := d.usageReport(periodOf(r.URL.Query().Get("period")))
	if err != nil {
		d.log.Error("dashboard: reading usage failed", "error", err)
		d.renderError(w, r, http.StatusServiceUnavailable, "Usage could not be read", "Try again in a moment.")
		return
	}
	d.render(w, r, http.StatusOK, "admin_usage", pageData{Title: "Usage", Nav: "admin", Body: b})
}

// adminUsageCSV exports one table of the page (?by=key or model) for its
// period as an attachment.
func (d *Dashboard) adminUsageCSV(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	by := q.Get("by")
	if by != "key" && by != "model" {
		d.renderError(w, r, http.StatusBadRequest, "Bad request", "Export by key or by model.")
		return
	}
	b, err := d.usageReport(periodOf(q.Get("period")))
	if err != nil {
		d.log.Error("dashboard: reading usage for export failed", "error", err)
		d.renderError(w, r, http.StatusServiceUnavailable, "The export failed", "Usage could not be read. Try again.")
		return
	}
	name := fmt.Sprintf("usage-by-%s-%s-%s.csv", by, b.Period.ID, b.To.AddDate(0, 0, -1).Format("2006-01-02"))
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	if b.Capped {
		w.Header().Set("X-Usage-Covers", "the newest "+strconv.FormatInt(b.Limit, 10)+" requests only")
	}
	writeUsageCSV(w, b, by)
}

// writeUsageCSV writes one table: the period's bounds on every row, so
// exports of several periods can be concatenated, counts as integers and
// the value in USD with 4 decimals.
func writeUsageCSV(w http.ResponseWriter, b adminUsageBody, by string) {
	cw := csv.NewWriter(w)
	from, to := b.From.Format(time.RFC3339), b.To.Format(time.RFC3339)
	counts := func(t tally) []string {
		return []string{strconv.FormatInt(t.Requests, 10), strconv.FormatInt(t.Errors, 10), strconv.FormatInt(t.Input, 10),
			strconv.FormatInt(t.Cached, 10), strconv.FormatInt(t.Output, 10), strconv.FormatFloat(t.Value, 'f', 4, 64)}
	}
	tail := []string{"requests", "errors", "input_tokens", "cached_tokens", "output_tokens", "api_equivalent_usd"}
	if by == "key" {
		_ = cw.Write(append([]string{"from_utc", "to_utc", "user_email", "user_id", "key_id", "key_label", "key_state"}, tail...))
		for _, k := range b.Keys {
			_ = cw.Write(append(csvCells(from, to, k.Email, k.UserID, k.KeyID, k.KeyLabel, k.KeyState), counts(k.tally)...))
		}
	} else {
		_ = cw.Write(append([]string{"from_utc", "to_utc", "model"}, tail...))
		for _, m := range b.Models {
			_ = cw.Write(append(csvCells(from, to, m.Model), counts(m.tally)...))
		}
	}
	cw.Flush()
}
