package storetest

import (
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/keypolicy"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// testKeyPolicy: a key's policy and usage reset point round-trip, change
// only their own field, survive a reopen, and are the owner's to change.
func testKeyPolicy(t *testing.T, h *harness) {
	s := h.store()
	mustUser(t, s, "u-a", "a@example.com")
	mustUser(t, s, "u-b", "b@example.com")
	k := key("k1", "u-a")
	k.Policy = keypolicy.Policy{Expires: t0.Add(day), Models: []string{"gpt-5.4-mini"}, RPM: 10}
	must(t, s.CreateKey(ctx, k))
	got, err := s.GetKey(ctx, "k1")
	must(t, err)
	same(t, "created with a policy", got, k)

	p := keypolicy.Policy{Models: []string{"gpt-5.4*", "gpt-5.5"}, Concurrency: 4, TokensPerDay: 100_000, TokensPerWeek: 1 << 40, MaxEffort: "high"}
	must(t, s.UpdateKeyPolicy(ctx, "u-a", "k1", p))
	must(t, s.TouchKeys(ctx, map[string]time.Time{"k1": t0.Add(time.Minute)}))
	must(t, s.ResetKeyUsage(ctx, "u-a", "k1", t0.Add(2*time.Minute)))
	k.Policy, k.LastUsed, k.UsageReset = p, t0.Add(time.Minute), t0.Add(2*time.Minute)
	got, err = s.GetKey(ctx, "k1")
	must(t, err)
	same(t, "after policy update, touch and reset", got, k)

	wantErr(t, "UpdateKeyPolicy(other user's)", s.UpdateKeyPolicy(ctx, "u-b", "k1", keypolicy.Policy{}), vault.ErrNotFound)
	wantErr(t, "UpdateKeyPolicy(unknown)", s.UpdateKeyPolicy(ctx, "u-a", "k0", keypolicy.Policy{}), vault.ErrNotFound)
	wantErr(t, "ResetKeyUsage(other user's)", s.ResetKeyUsage(ctx, "u-b", "k1", t0), vault.ErrNotFound)
	wantErr(t, "ResetKeyUsage(unknown)", s.ResetKeyUsage(ctx, "u-a", "k0", t0), vault.ErrNotFound)

	// Clearing the policy stores the zero policy.
	must(t, s.UpdateKeyPolicy(ctx, "u-a", "k1", keypolicy.Policy{}))
	k.Policy = keypolicy.Policy{}
	must(t, closeOnce(s))
	s = h.store()
	got, err = s.GetKey(ctx, "k1")
	must(t, err)
	same(t, "cleared policy after reopen", got, k)
	list, err := s.ListAllKeys(ctx)
	must(t, err)
	same(t, "ListAllKeys", list, []vault.KeyRecord{k})
}
