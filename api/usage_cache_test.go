package api

import (
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// GET /v1/usage carries the prompt cache's hit rate: the calling key's per
// day and model, and with scope=user every key's too; requests older than
// the window are not in it.
func TestUsageCacheHitRate(t *testing.T) {
	e := newEnv(t)
	now := time.Now().UTC()
	e.rec.recs = append(e.rec.recs, []vault.LogRecord{
		{Time: now, UserID: "u1", KeyID: "key1", Model: "gpt-5.5", Status: 200, InputTokens: 1000, CachedTokens: 750},
		{Time: now.Add(-time.Minute), UserID: "u1", KeyID: "key1", Model: "gpt-5.5", Status: 200, InputTokens: 1000, CachedTokens: 0, FailoverFrom: "acct-a"},
		{Time: now, UserID: "u1", KeyID: "key2", Model: "gpt-5.4-mini", Status: 200, InputTokens: 3000, CachedTokens: 3000},
		{Time: now.Add(-(CacheDays + 1) * 24 * time.Hour), UserID: "u1", KeyID: "key1", Model: "gpt-5.5", Status: 200, InputTokens: 9000, CachedTokens: 9000},
	}...)
	_, m := e.do(t, "GET", "/v1/usage", testKey, nil)
	c, _ := m["cache"].(map[string]any)
	if c == nil || c["input_tokens"] != 2000.0 || c["cached_tokens"] != 750.0 || c["hit_rate"] != 0.375 || c["cache_resets"] != 1.0 || c["by_key"] != nil {
		t.Fatalf("key scope cache %v", m["cache"])
	}
	days, _ := c["by_day"].([]any)
	models, _ := c["by_model"].([]any)
	if len(days) != 1 || days[0].(map[string]any)["day"] != now.Format(time.DateOnly) || len(models) != 1 || models[0].(map[string]any)["hit_rate"] != 0.375 {
		t.Fatalf("key scope by day %v, by model %v", days, models)
	}
	_, m = e.do(t, "GET", "/v1/usage?scope=user", testKey, nil)
	c, _ = m["cache"].(map[string]any)
	keys, _ := c["by_key"].([]any)
	if c["input_tokens"] != 5000.0 || c["hit_rate"] != 0.75 || len(keys) != 2 || keys[0].(map[string]any)["key_id"] != "key2" ||
		keys[0].(map[string]any)["hit_rate"] != 1.0 {
		t.Fatalf("user scope cache %v", m["cache"])
	}
}

// /v1/usage names the limit in force and every rate-limit family with its
// windows, beside the account's own.
func TestAccountQuotaFamilies(t *testing.T) {
	seen := time.Unix(1_800_000_000, 0).UTC()
	q := accountQuotaOf(vault.QuotaSnapshot{PlanType: "pro", ActiveLimit: "codex_bengalfox", Seen: seen,
		Primary: &vault.QuotaWindow{UsedPercent: 10, WindowMinutes: 300},
		Families: []vault.QuotaFamily{{ID: "codex-bengalfox", Name: "GPT-6-Astra",
			Primary: &vault.QuotaWindow{UsedPercent: 100, WindowMinutes: 300, ResetAfter: time.Hour}}}})
	if q.ActiveLimit != "codex_bengalfox" || q.FiveHour.UsedPercent != 10 || len(q.Limits) != 1 {
		t.Fatalf("%+v", q)
	}
	l := q.Limits[0]
	if l.ID != "codex-bengalfox" || l.Name != "GPT-6-Astra" || l.FiveHour.UsedPercent != 100 || !l.FiveHour.ResetsAt.Equal(seen.Add(time.Hour)) || l.Weekly != nil {
		t.Fatalf("limit %+v", l)
	}
}
