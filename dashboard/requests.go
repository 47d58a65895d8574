package dashboard

import (
	"encoding/csv"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// requestRow is one line of the request log as the page shows it.
type requestRow struct {
	vault.LogRecord
	RouteName string // "Chat", "Responses", "Models"
	KeyName   string // the key's label, or its prefix
	KeyPrefix string
	ShortID   string // the request id's last 8 characters
	// AccountName names the linked ChatGPT account that served the
	// request; FailoverNote the ones tried first, at their usage limit.
	AccountName  string
	FailoverNote string
	// TierNote says which service tier the request ran on when it was
	// not the account's default or not the one asked for: "Fast",
	// "Fast (asked default)", "default tier (asked fast)"; "" otherwise.
	TierNote string
}

// tierNote is requestRow.TierNote for the tier sent and the one asked.
func tierNote(sent, asked string) string {
	fast := asked == "fast" || asked == "priority"
	switch {
	case sent != "" && (fast || asked == ""):
		return "Fast"
	case sent != "":
		return "Fast (asked " + asked + ")"
	case fast:
		return "default tier (asked " + asked + ")"
	}
	return ""
}

// routeNames are the friendly names of the API routes in the log.
var routeNames = map[string]string{
	"chat_completions":      "Chat",
	"responses":             "Responses",
	"messages":              "Messages",
	"messages_count_tokens": "Count tokens",
	"models":                "Models",
	"unknown":               "Unknown URL",
}

// routeName is the friendly name of a logged route.
func routeName(route string) string {
	if n, ok := routeNames[route]; ok {
		return n
	}
	if route == "" {
		return "—"
	}
	return route
}

// keyNames maps the user's key ids to a label and a prefix.
func (d *Dashboard) keyNames(userID string) map[string]vault.Key {
	keys, err := d.cfg.Vault.ListKeys(userID)
	if err != nil {
		d.log.Error("dashboard: listing keys failed", "error", err)
	}
	m := make(map[string]vault.Key, len(keys))
	for _, k := range keys {
		m[k.ID] = k
	}
	return m
}

func rowsOf(recs []vault.LogRecord, keys map[string]vault.Key) []requestRow {
	rows := make([]requestRow, len(recs))
	for i, rec := range recs {
		row := requestRow{LogRecord: rec, RouteName: routeName(rec.Route), ShortID: shortID(rec.RequestID),
			TierNote: tierNote(rec.ServiceTier, rec.RequestedTier)}
		if k, ok := keys[rec.KeyID]; ok {
			row.KeyPrefix = k.Prefix + "…"
			row.KeyName = k.Label
			if row.KeyName == "" {
				row.KeyName = row.KeyPrefix
			}
		} else if rec.KeyID != "" {
			row.KeyName = "deleted key"
		}
		rows[i] = row
	}
	return rows
}

// shortID is the tail of a request id, enough to tell rows apart; the
// page offers the whole id to copy.
func shortID(id string) string {
	if len(id) <= 10 {
		return id
	}
	return "…" + id[len(id)-8:]
}

// csvMaxRows bounds one export.
const csvMaxRows = 10000

// requestsCSV exports the user's request log (newest first, the page's
// status filter) as CSV.
func (d *Dashboard) requestsCSV(w http.ResponseWriter, r *http.Request) {
	s := sessionOf(r)
	filter := vault.StatusAll
	switch r.URL.Query().Get("status") {
	case "ok":
		filter = vault.StatusSuccess
	case "failed":
		filter = vault.StatusFailed
	}
	keys := d.keyNames(s.user.ID)
	var recs []vault.LogRecord
	var before time.Time
	for len(recs) < csvMaxRows {
		page, err := d.cfg.Vault.RecentRequests(s.user.ID, before, min(1000, csvMaxRows-len(recs)), filter)
		if err != nil {
			d.log.Error("dashboard: reading requests for export failed", "user_id", s.user.ID, "error", err)
			d.renderError(w, r, http.StatusInternalServerError, "The export failed", "The request log could not be read. Try again.")
			return
		}
		recs = append(recs, page...)
		if len(page) == 0 || len(page) < 1000 {
			break
		}
		before = page[len(page)-1].Time
	}
	name := "requests-" + d.cfg.Now().UTC().Format("2006-01-02") + ".csv"
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	writeRequestsCSV(w, rowsOf(recs, keys))
}

// writeRequestsCSV writes the header and rows.
func writeRequestsCSV(w http.ResponseWriter, rows []requestRow) {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"time_utc", "request_id", "key", "key_prefix", "route", "model", "effort", "status", "error_code",
		"duration_ms", "ttfb_ms", "input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens", "estimated",
		"service_tier", "requested_tier"})
	for _, r := range rows {
		_ = cw.Write(csvCells(
			r.Time.UTC().Format(time.RFC3339),
			r.RequestID, r.KeyName, r.KeyPrefix, r.RouteName, r.Model, r.Effort,
			strconv.Itoa(r.Status), r.ErrorCode,
			strconv.FormatInt(r.Duration.Milliseconds(), 10), strconv.FormatInt(r.TTFB.Milliseconds(), 10),
			strconv.FormatInt(r.InputTokens, 10), strconv.FormatInt(r.OutputTokens, 10),
			strconv.FormatInt(r.CachedTokens, 10), strconv.FormatInt(r.ReasoningTokens, 10),
			strconv.FormatBool(r.Estimated),
			r.ServiceTier, r.RequestedTier,
		))
	}
	cw.Flush()
}

// csvCells guards each text cell against formula injection: a spreadsheet
// runs a cell that starts with = + - @ (or a tab or carriage return
// before one) as a formula, so such cells get a leading apostrophe. Quoting
// and escaping are encoding/csv's.
func csvCells(cells ...string) []string {
	for i, c := range cells {
		cells[i] = csvSafe(c)
	}
	return cells
}

func csvSafe(c string) string {
	if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
		// Numbers we wrote are never negative; anything else starting
		// with one of these is text from a client (a model name, a label).
		return "'" + c
	}
	return c
}

// nameAccounts fills in which of the user's accounts served each row, by
// label (else ChatGPT email); an account unlinked since shows its id.
func (d *Dashboard) nameAccounts(userID string, rows []requestRow) {
	accts, _ := d.cfg.Vault.Accounts(userID)
	names := make(map[string]string, len(accts))
	for _, a := range accts {
		names[a.ID] = a.Label
		if a.Label == "" {
			names[a.ID] = a.Email
		}
	}
	name := func(id string) string {
		if n := names[id]; n != "" {
			return n
		}
		return id
	}
	for i := range rows {
		if rows[i].AccountID != "" {
			rows[i].AccountName = name(rows[i].AccountID)
		}
		if rows[i].FailoverFrom != "" {
			var from []string
			for _, id := range strings.Split(rows[i].FailoverFrom, ",") {
				from = append(from, name(id))
			}
			rows[i].FailoverNote = "after " + strings.Join(from, ", ") + " reached its limit"
		}
	}
}
