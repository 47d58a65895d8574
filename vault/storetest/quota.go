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
		Families: []vault.QuotaFamily{{ID: "codex-bengalfox", Name: "GPT-6-Astra",
			Primary: &vault.QuotaWindow{UsedPercent: used / 4, WindowMinutes: 300, ResetAt: t0.Add(2 * time.Hour)}}},
		Seen: t0,
	}
}

func testQuotas(t *testing.T, h *harness) {
	s := h.store()
	if qs, err := s.ListQuotas(ctx); err != nil || len(qs) != 0 {
		t.Fatalf("ListQuotas on an empty store: %v, %v", qs, err)
	}
	mustUser(t, s, "u-a", "a@example.com")
	mustUser(t, s, "u-b", "b@example.com")
	type ref = vault.AccountRef
	aa1, aa2, ba1 := ref{UserID: "u-a", ID: "a1"}, ref{UserID: "u-a", ID: "a2"}, ref{UserID: "u-b", ID: "a1"}
	for _, r := range []ref{aa1, aa2, ba1} {
		must(t, s.UpdateTokens(ctx, r.UserID, r.ID, func(*vault.TokenRecord) (*vault.TokenRecord, error) {
			rec := tokens(1, "ct")
			return &rec, nil
		}))
	}
	a, b := quota("plus", 42), vault.QuotaSnapshot{PlanType: "pro", Seen: t0} // b: no windows
	a2 := quota("pro", 7)
	// Snapshots of accounts that do not exist are skipped.
	must(t, s.PutQuotas(ctx, map[ref]vault.QuotaSnapshot{aa1: a, aa2: a2, ba1: b,
		{UserID: "deleted-user", ID: "a1"}: a, {UserID: "u-a", ID: "removed"}: a}))
	got, err := s.ListQuotas(ctx)
	must(t, err)
	same(t, "ListQuotas", got, map[ref]vault.QuotaSnapshot{aa1: a, aa2: a2, ba1: b})

	a3 := quota("plus", 57.5)
	a3.Seen = t0.Add(time.Minute)
	must(t, s.PutQuotas(ctx, map[ref]vault.QuotaSnapshot{aa1: a3}))
	got, err = s.ListQuotas(ctx)
	must(t, err)
	same(t, "ListQuotas after replacing one", got, map[ref]vault.QuotaSnapshot{aa1: a3, aa2: a2, ba1: b})
	must(t, s.PutQuotas(ctx, nil))

	// Removing an account removes its snapshot, and only its.
	must(t, s.DeleteTokens(ctx, "u-a", "a2"))
	got, err = s.ListQuotas(ctx)
	must(t, err)
	same(t, "ListQuotas after removing an account", got, map[ref]vault.QuotaSnapshot{aa1: a3, ba1: b})
}
