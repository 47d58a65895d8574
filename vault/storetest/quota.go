package storetest

import (
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// quota is a snapshot with every field set.
func quota(plan string, used float64) vault.QuotaSnapshot {
	return vault.QuotaSnapshot{
		PlanType: plan, ActiveLimit: "primary",
		Primary:   &vault.QuotaWindow{UsedPercent: used, WindowMinutes: 300, ResetAt: t0.Add(time.Hour), ResetAfter: time.Hour},
		Secondary: &vault.QuotaWindow{UsedPercent: used / 2, WindowMinutes: 10080, ResetAt: t0.Add(3 * day)},
		Credits:   &vault.QuotaCredits{HasCredits: true, Balance: "12.50"},
		Seen:      t0,
	}
}

func testQuotas(t *testing.T, h *harness) {
	s := h.store()
	if qs, err := s.ListQuotas(ctx); err != nil || len(qs) != 0 {
		t.Fatalf("ListQuotas on an empty store: %v, %v", qs, err)
	}
	mustUser(t, s, "u-a", "a@example.com")
	mustUser(t, s, "u-b", "b@example.com")
	a, b := quota("plus", 42), vault.QuotaSnapshot{PlanType: "pro", Seen: t0} // b: no windows
	must(t, s.PutQuotas(ctx, map[string]vault.QuotaSnapshot{"u-a": a, "u-b": b, "deleted-user": a}))
	got, err := s.ListQuotas(ctx)
	must(t, err)
	same(t, "ListQuotas", got, map[string]vault.QuotaSnapshot{"u-a": a, "u-b": b})

	a2 := quota("plus", 57.5)
	a2.Seen = t0.Add(time.Minute)
	must(t, s.PutQuotas(ctx, map[string]vault.QuotaSnapshot{"u-a": a2}))
	got, err = s.ListQuotas(ctx)
	must(t, err)
	same(t, "ListQuotas after replacing one", got, map[string]vault.QuotaSnapshot{"u-a": a2, "u-b": b})
	must(t, s.PutQuotas(ctx, nil))
}
