package dashboard

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/codex"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

func TestPriceCost(t *testing.T) {
	custom := map[string]Price{
		"gpt-5.5":          {Input: 2, CachedInput: 0.5, Output: 20},
		"My-Model":         {Input: 1, CachedInput: 1, Output: 1},
		FallbackPriceModel: {Input: 3, CachedInput: 0.3, Output: 30},
	}
	tests := []struct {
		name            string
		overrides       map[string]Price
		model           string
		in, cached, out int64
		want            float64
	}{
		{"default model", nil, "gpt-5.5", 1_000_000, 0, 1_000_000, 1.25 + 10},
		{"mini", nil, "gpt-5.4-mini", 2_000_000, 0, 500_000, 0.5 + 1},
		{"case-insensitive", nil, "GPT-5.3-Codex", 1_000_000, 0, 0, 1.25},
		{"cached split", nil, "gpt-5.5", 1_000_000, 400_000, 0, 0.6*1.25 + 0.4*0.125},
		{"cached above input is capped", nil, "gpt-5.5", 1_000_000, 5_000_000, 0, 0.125},
		{"unknown model uses the fallback", nil, "llama-9", 1_000_000, 0, 1_000_000, 1.25 + 10},
		{"empty model uses the fallback", nil, "", 0, 0, 1_000_000, 10},
		{"override", custom, "gpt-5.5", 1_000_000, 500_000, 1_000_000, 0.5*2 + 0.5*0.5 + 20},
		{"override adds a model", custom, "my-model", 1_000_000, 0, 1_000_000, 2},
		{"override fallback", custom, "unknown", 1_000_000, 1_000_000, 0, 0.3},
		{"override keeps other defaults", custom, "gpt-5.4-mini", 0, 0, 1_000_000, 2},
		{"nothing", nil, "gpt-5.5", 0, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := NewPriceTable(tt.overrides).Lookup(tt.model).Cost(tt.in, tt.cached, tt.out)
			if math.Abs(got-tt.want) > 1e-9 {
				t.Fatalf("cost = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestValueGroupsByModel(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	recs := []vault.LogRecord{
		// Reasoning tokens are part of output tokens: not counted again.
		{Time: now, Model: "gpt-5.5", InputTokens: 600_000, CachedTokens: 200_000, OutputTokens: 100_000, ReasoningTokens: 80_000},
		{Time: now.Add(-time.Hour), Model: "gpt-5.5", InputTokens: 400_000, CachedTokens: 200_000, OutputTokens: 100_000},
		{Time: now.Add(-2 * time.Hour), Model: "gpt-5.4-mini", InputTokens: 1_000_000},
		{Time: now.Add(-48 * time.Hour), Model: "gpt-5.5", OutputTokens: 1_000_000}, // before since
	}
	v := NewPriceTable(nil).valueOf(recs, now.Add(-24*time.Hour))
	want := 0.6*1.25 + 0.4*0.125 + 0.2*10 + 0.25
	if math.Abs(v.USD-want) > 1e-9 || v.Requests != 3 {
		t.Fatalf("value = %+v, want %v over 3 requests", v, want)
	}
}

func TestValidatePrices(t *testing.T) {
	if err := ValidatePrices(map[string]Price{"m": {Input: -1}}); err == nil {
		t.Fatal("negative price accepted")
	}
	if err := ValidatePrices(map[string]Price{"m": {Output: math.Inf(1)}}); err == nil {
		t.Fatal("infinite price accepted")
	}
	if _, err := NewDashboard(Config{Vault: &vault.Vault{}, Prices: map[string]Price{"": {}}}); err == nil {
		t.Fatal("empty model name accepted")
	}
}

func TestResetIn(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Minute:                                 "resets now",
		30 * time.Second:                             "resets now",
		45 * time.Minute:                             "resets in 45 min",
		2*time.Hour + 10*time.Minute:                 "resets in 2 h 10 min",
		3 * time.Hour:                                "resets in 3 h",
		4*24*time.Hour + 5*time.Hour:                 "resets in 4 d 5 h",
		2 * 24 * time.Hour:                           "resets in 2 d",
		2*time.Hour + 9*time.Minute + 40*time.Second: "resets in 2 h 10 min",
	} {
		if got := resetIn(d); got != want {
			t.Errorf("resetIn(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestOverviewQuotaBars(t *testing.T) {
	for _, tc := range []struct {
		name  string
		store func(*vault.Vault) *QuotaStore
	}{
		{"in memory", func(*vault.Vault) *QuotaStore { return NewQuotaStore() }},
		{"in the vault", NewVaultQuotaStore},
	} {
		t.Run(tc.name, func(t *testing.T) { testOverviewQuotaBars(t, tc.store) })
	}
}

func testOverviewQuotaBars(t *testing.T, newStore func(*vault.Vault) *QuotaStore) {
	var store *QuotaStore
	e := newEnv(t, func(c *Config) { store = newStore(c.Vault); c.Quotas = store })
	b := e.signIn("ada@example.com")
	u := e.user("ada@example.com")
	e.link(t, u.ID, "acc-q")

	r := b.get("/overview")
	mustContain(t, r.body, "ChatGPT usage limits", "No data yet — make a request")
	mustNotContain(t, r.body, "<meter")

	now := e.clock.Now()
	reset := now.Add(2*time.Hour + 10*time.Minute).UTC().Truncate(time.Second)
	store.SetAt(u.ID, &codex.RateLimits{
		PlanType:  "plus",
		Primary:   &codex.RateWindow{UsedPercent: 42, WindowMinutes: 300, ResetAt: reset},
		Secondary: &codex.RateWindow{UsedPercent: 7.5, WindowMinutes: 10080, ResetAt: now.Add(4*24*time.Hour + 5*time.Hour + 30*time.Second)},
	}, now)
	store.SetAt("someone-else", &codex.RateLimits{Primary: &codex.RateWindow{UsedPercent: 99}}, now)

	r = b.get("/overview")
	mustContain(t, r.body,
		"5-hour limit", "42% used", `<meter id="quota-primary"`, `value="42"`, `aria-labelledby="quota-primary-label"`,
		"resets in 2 h 10 min", `title="`+reset.Format("2006-01-02 15:04 UTC")+`"`,
		"Weekly limit", "7.5% used", `value="7.5"`, "resets in 4 d 5 h",
		`<span class="badge">plus</span>`)
	mustNotContain(t, r.body, "No data yet", "99% used", "style=")

	mustNotContain(t, r.body, "Limit in force", ">in force<")

	// Another family's windows show beside codex's, and the limit in force
	// is named and marked.
	store.SetAt(u.ID, &codex.RateLimits{
		PlanType: "plus", ActiveLimit: "codex_bengalfox",
		Primary: &codex.RateWindow{UsedPercent: 42, WindowMinutes: 300, ResetAt: reset},
		Families: []codex.RateFamily{{ID: "codex-bengalfox", Name: "GPT-6-Astra",
			Primary: &codex.RateWindow{UsedPercent: 100, WindowMinutes: 300, ResetAt: reset}}},
	}, now)
	r = b.get("/overview")
	mustContain(t, r.body, "GPT-6-Astra: 5-hour limit", `<meter id="quota-f0-primary"`, "100% used",
		`Limit in force: <span class="mono">codex_bengalfox</span>`)
	if strings.Count(r.body, ">in force<") != 1 {
		t.Fatalf("%d windows marked in force, want the family's one", strings.Count(r.body, ">in force<"))
	}

	// Another user sees no data.
	b2 := e.signIn("bob@example.com")
	mustContain(t, b2.get("/overview").body, "No data yet — make a request")
}

func TestOverviewSavings(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Prices = map[string]Price{"custom": {Input: 100, CachedInput: 10, Output: 1000}} })
	b := e.signIn("ada@example.com")
	u := e.user("ada@example.com")

	r := b.get("/overview")
	mustContain(t, r.body, "API-equivalent value", "$0.00")

	now := e.clock.Now()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	recs := []vault.LogRecord{
		// Today: $1.25 + $10 (gpt-5.5) + $100 (custom) = $111.25.
		{Time: now, Model: "gpt-5.5", InputTokens: 1_000_000, OutputTokens: 1_000_000, ReasoningTokens: 500_000},
		{Time: now.Add(-time.Second), Model: "custom", InputTokens: 1_000_000},
		// Earlier this week: cached input only, $0.125 + $2 = $2.125.
		{Time: today.Add(-3 * 24 * time.Hour), Model: "gpt-5.5", InputTokens: 1_000_000, CachedTokens: 1_000_000, OutputTokens: 200_000},
		// Older than 7 days: not counted.
		{Time: today.Add(-8 * 24 * time.Hour), Model: "gpt-5.5", OutputTokens: 100_000_000},
		// Another user: not counted.
		{Time: now, UserID: "someone-else", Model: "gpt-5.5", OutputTokens: 100_000_000},
	}
	for _, rec := range recs {
		if rec.UserID == "" {
			rec.UserID = u.ID
		}
		rec.Status = 200
		e.v.LogRequest(rec)
	}
	waitFor(t, func() bool {
		rs, _ := e.v.RecentRequests(u.ID, time.Time{}, 10, vault.StatusAll)
		return len(rs) == 4
	})
	r = b.get("/overview")
	// The 7 days: 111.25 + 2.125 = 113.375.
	mustContain(t, r.body, "API-equivalent value", "$113.38", "7 days · $111.25 today", "At OpenAI API list prices")
	mustNotContain(t, r.body, "style=")
}

// TestOverviewSavingsCapped: past the record cap the value is marked as
// covering only the newest requests.
func TestOverviewSavingsCapped(t *testing.T) {
	e := newEnv(t)
	e.d.valueMax, e.d.valuePage = 4, 2
	b := e.signIn("ada@example.com")
	u := e.user("ada@example.com")
	now := e.clock.Now()
	for i := range 7 {
		e.v.LogRequest(vault.LogRecord{Time: now.Add(-time.Duration(i) * time.Second), UserID: u.ID, Status: 200, Model: "gpt-5.5", OutputTokens: 1_000_000})
	}
	waitFor(t, func() bool {
		rs, _ := e.v.RecentRequests(u.ID, time.Time{}, 10, vault.StatusAll)
		return len(rs) == 7
	})
	// 4 of 7 requests read: $40, marked as a lower bound.
	mustContain(t, b.get("/overview").body, "$40.00+", "7 days (newest 4 requests) · $40.00 today")
}

// TestVaultQuotaStoreRoundTrip: what the API handler records comes back
// whole from the vault, windows and credits included.
func TestVaultQuotaStoreRoundTrip(t *testing.T) {
	e := newEnv(t)
	u, err := e.v.CreateUser("ada@example.com", "Ada")
	if err != nil {
		t.Fatal(err)
	}
	e.link(t, u.ID, "acc-q")
	store := NewVaultQuotaStore(e.v)
	if _, ok := store.Get(u.ID); ok {
		t.Fatal("snapshot before any was recorded")
	}
	seen := e.clock.Now().UTC()
	rl := &codex.RateLimits{
		PlanType: "pro", ActiveLimit: "secondary",
		Primary:   &codex.RateWindow{UsedPercent: 12.5, WindowMinutes: 300, ResetAt: seen.Add(time.Hour), ResetAfter: time.Hour},
		Secondary: &codex.RateWindow{UsedPercent: 80, WindowMinutes: 10080},
		Credits:   &codex.Credits{HasCredits: true, Unlimited: false, Balance: "4.20"},
		Families:  []codex.RateFamily{{ID: "premium", Name: "Premium", Secondary: &codex.RateWindow{UsedPercent: 3, WindowMinutes: 10080}}},
	}
	store.SetAt(u.ID, rl, seen)
	rl.Primary.UsedPercent = 99 // the caller's copy changes later
	got, ok := store.Get(u.ID)
	if !ok {
		t.Fatal("no snapshot after SetAt")
	}
	rl.Primary.UsedPercent = 12.5
	if !reflect.DeepEqual(got, QuotaSnapshot{RateLimits: *rl, Seen: seen}) {
		t.Fatalf("got %+v %+v %+v %+v", got, *got.Primary, *got.Secondary, *got.Credits)
	}
}
