package dashboard

import (
	"context"
	"encoding/csv"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/internal/pgtest"
	"github.com/usemysub/caddy-codex-proxy/vault"
	"github.com/usemysub/caddy-codex-proxy/vault/engine"
)

// usageEnv is an admin env with requests of two users over 40 days: the
// member's key "laptop", their revoked key with a label a spreadsheet
// would run as a formula, and the admin's request without a key.
type usageEnv struct {
	*adminEnv
	revokedID string
}

func newUsageEnv(t *testing.T) *usageEnv {
	t.Helper()
	a := newAdminEnv(t)
	u := &usageEnv{adminEnv: a}
	_, k2, err := a.v.CreateKey(a.memberUser.ID, `=SUM(1,2) "q"`)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.v.RevokeKey(a.memberUser.ID, k2.ID); err != nil {
		t.Fatal(err)
	}
	u.revokedID = k2.ID
	admin := a.user("admin@example.com")
	now := a.clock.Now().UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	recs := []vault.LogRecord{
		// Today: $1.25 + $10 on the laptop; the fallback price ($1.25) on
		// the revoked key, a failed request.
		{Time: now, UserID: a.memberUser.ID, KeyID: a.memberKeyID, Status: 200, Model: "gpt-5.5", InputTokens: 1_000_000, OutputTokens: 1_000_000},
		{Time: now, UserID: a.memberUser.ID, KeyID: k2.ID, Status: 500, Model: "custom", InputTokens: 1_000_000},
		// 3 days ago: cached input, $0.125 + $2.
		{Time: today.AddDate(0, 0, -3).Add(time.Hour), UserID: a.memberUser.ID, KeyID: a.memberKeyID, Status: 200, Model: "gpt-5.5", InputTokens: 1_000_000, CachedTokens: 1_000_000, OutputTokens: 200_000},
		// 10 days ago, no key: $2.
		{Time: today.AddDate(0, 0, -10).Add(time.Hour), UserID: admin.ID, Status: 200, Model: "gpt-5.4-mini", OutputTokens: 1_000_000},
		// 40 days ago: in no period.
		{Time: today.AddDate(0, 0, -40), UserID: admin.ID, Status: 200, Model: "gpt-5.5", OutputTokens: 100_000_000},
	}
	for _, r := range recs {
		a.v.LogRequest(r)
	}
	waitFor(t, func() bool {
		rs, _ := a.v.RecentRequests("", time.Time{}, 10, vault.StatusAll)
		return len(rs) == len(recs)
	})
	return u
}

// The page sums each period's requests per user and key and per model,
// priced as the users list prices them, and links the exports.
func TestAdminUsagePage(t *testing.T) {
	u := newUsageEnv(t)
	r := u.admin.get("/admin/usage?period=today")
	if r.status != http.StatusOK {
		t.Fatalf("GET /admin/usage: %d", r.status)
	}
	mustContain(t, r.body, `id="usage-keys"`, "member@example.com", "laptop", "$11.25", "$1.25", `<span class="pill pill-muted">revoked</span>`,
		"1 failed", `id="usage-models"`, "gpt-5.5", "custom", `aria-current="page" id="period-today"`,
		`href="/admin/usage.csv?by=key&amp;period=today"`, `href="/admin/usage.csv?by=model&amp;period=today"`, "$12.50")
	mustNotContain(t, r.body, "gpt-5.4-mini", "no key", u.memberKey)

	r = u.admin.get("/admin/usage") // 7 days by default
	mustContain(t, r.body, `aria-current="page" id="period-7d"`, "$13.38", "$14.62")
	mustNotContain(t, r.body, "gpt-5.4-mini")

	r = u.admin.get("/admin/usage?period=30d")
	mustContain(t, r.body, "gpt-5.4-mini", "no key", "admin@example.com", "$16.62")
	mustNotContain(t, r.body, "$1,000", `id="usage-capped"`)

	u.d.usageMax, u.d.valuePage = 2, 1
	mustContain(t, u.admin.get("/admin/usage?period=30d").body, `id="usage-capped"`, "only the newest 2 requests")
}

// The exports are attachments of well-formed CSV: one row per key or
// model, the period's bounds, key ids and labels (a formula defused), and
// no key plaintext, prefix or hash.
func TestAdminUsageCSV(t *testing.T) {
	u := newUsageEnv(t)
	r := u.admin.get("/admin/usage.csv?by=key&period=7d")
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") {
		t.Fatalf("export: %d %s", r.status, r.header.Get("Content-Type"))
	}
	today := u.clock.Now().UTC().Format("2006-01-02")
	if cd := r.header.Get("Content-Disposition"); cd != `attachment; filename="usage-by-key-7d-`+today+`.csv"` {
		t.Fatalf("Content-Disposition %q", cd)
	}
	rows, err := csv.NewReader(strings.NewReader(r.body)).ReadAll()
	if err != nil {
		t.Fatalf("not CSV: %v\n%s", err, r.body)
	}
	want := []string{"from_utc", "to_utc", "user_email", "user_id", "key_id", "key_label", "key_state", "requests", "errors", "input_tokens", "cached_tokens", "output_tokens", "api_equivalent_usd"}
	if strings.Join(rows[0], ",") != strings.Join(want, ",") || len(rows) != 3 {
		t.Fatalf("rows %q", rows)
	}
	laptop, revoked := rows[1], rows[2]
	if laptop[2] != "member@example.com" || laptop[4] != u.memberKeyID || laptop[5] != "laptop" || laptop[6] != "active" ||
		laptop[7] != "2" || laptop[9] != "2000000" || laptop[12] != "13.3750" {
		t.Errorf("laptop row %q", laptop)
	}
	if revoked[4] != u.revokedID || revoked[5] != `'=SUM(1,2) "q"` || revoked[6] != "revoked" || revoked[8] != "1" || revoked[12] != "1.2500" {
		t.Errorf("revoked key row %q", revoked)
	}
	if from, _ := time.Parse(time.RFC3339, laptop[0]); !from.Equal(time.Date(u.clock.Now().UTC().Year(), u.clock.Now().UTC().Month(), u.clock.Now().UTC().Day()-6, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("from %s", laptop[0])
	}
	mustNotContain(t, r.body, u.memberKey, "cpk_")

	r = u.admin.get("/admin/usage.csv?by=model&period=30d")
	rows, err = csv.NewReader(strings.NewReader(r.body)).ReadAll()
	if err != nil || len(rows) != 4 || strings.Join(rows[0], ",") != "from_utc,to_utc,model,requests,errors,input_tokens,cached_tokens,output_tokens,api_equivalent_usd" {
		t.Fatalf("models: %v %q", err, rows)
	}
	if rows[1][2] != "gpt-5.5" || rows[1][3] != "2" || rows[1][8] != "13.3750" {
		t.Errorf("first model row %q", rows[1])
	}
	if r := u.admin.get("/admin/usage.csv?by=user"); r.status != http.StatusBadRequest {
		t.Errorf("by=user: %d", r.status)
	}
}

// Members get 403 on the page and the exports.
func TestAdminUsageRefusesMembers(t *testing.T) {
	a := newAdminEnv(t)
	for _, path := range []string{"/admin/usage", "/admin/usage?period=30d", "/admin/usage.csv?by=key", "/admin/usage.csv?by=model&period=today"} {
		r := a.member.get(path)
		if r.status != http.StatusForbidden {
			t.Fatalf("GET %s as a member: %d", path, r.status)
		}
		mustNotContain(t, r.body, "admin@example.com", "laptop")
	}
}

// Every record is counted once however the pages cut among records that
// share a time, on both engines (PostgreSQL keeps microseconds, so
// records a few hundred nanoseconds apart share one there).
func TestAdminUsageCountsEveryRecordOnce(t *testing.T) {
	engines := map[string]func(t *testing.T) *vault.Vault{
		"bbolt": func(t *testing.T) *vault.Vault { return newEnv(t).v },
		"postgres": func(t *testing.T) *vault.Vault {
			v, err := engine.Open(context.Background(), pgtest.Start(t).NewDB(t), vault.Options{EncryptionKeys: []string{testEncKey}, Pepper: testPepper})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = v.Close() })
			return v
		},
	}
	for name, open := range engines {
		t.Run(name, func(t *testing.T) {
			v := open(t)
			u, err := v.CreateUser("ada@example.com", "")
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now().UTC().Truncate(time.Second).Add(-time.Minute)
			// 5 at one time, 3 more within its microsecond, then singles
			// and another group: 13 records, 1..13 output tokens.
			var times []time.Time
			for range 5 {
				times = append(times, now)
			}
			for i := range 3 {
				times = append(times, now.Add(-time.Duration(100*(i+1))*time.Nanosecond))
			}
			times = append(times, now.Add(-time.Second), now.Add(-2*time.Second), now.Add(-3*time.Second), now.Add(-3*time.Second), now.Add(-3*time.Second))
			for i, at := range times {
				v.LogRequest(vault.LogRecord{Time: at, UserID: u.ID, Status: 200, Model: "gpt-5.5", RequestID: "req-" + strconv.Itoa(i), OutputTokens: int64(i + 1)})
			}
			waitFor(t, func() bool {
				rs, _ := v.RecentRequests("", time.Time{}, 100, vault.StatusAll)
				return len(rs) == len(times)
			})
			d, err := NewDashboard(Config{Vault: v})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close(context.Background())
			for _, page := range []int{1, 2, 3, 4, 7, 1000} {
				d.valuePage = page
				b, err := d.usageReport(periodOf("today"))
				if err != nil || b.Total.Requests != int64(len(times)) || b.Total.Output != 13*14/2 || b.Capped {
					t.Fatalf("pages of %d: %v requests %d, output %d, capped %v; want %d and %d", page, err, b.Total.Requests, b.Total.Output, b.Capped, len(times), 13*14/2)
				}
			}
		})
	}
}
