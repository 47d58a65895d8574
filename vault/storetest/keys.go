package storetest

import (
	"sort"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

func testKeys(t *testing.T, h *harness) {
	s := h.store()
	wantErr(t, "CreateKey(unknown user)", s.CreateKey(ctx, key("k0", "nobody")), vault.ErrNotFound)
	mustUser(t, s, "u-a", "a@example.com")
	mustUser(t, s, "u-b", "b@example.com")
	k1, k2, k3 := key("k1", "u-a"), key("k2", "u-a"), key("k3", "u-b")
	for _, k := range []vault.KeyRecord{k1, k2, k3} {
		must(t, s.CreateKey(ctx, k))
	}
	got, err := s.GetKey(ctx, "k2")
	must(t, err)
	same(t, "GetKey", got, k2)
	_, err = s.GetKey(ctx, "k0")
	wantErr(t, "GetKey(unknown)", err, vault.ErrNotFound)

	list, err := s.ListKeys(ctx, "u-a")
	must(t, err)
	sortKeys(list)
	same(t, "ListKeys(u-a)", list, []vault.KeyRecord{k1, k2})
	if list, err := s.ListKeys(ctx, "nobody"); err != nil || len(list) != 0 {
		t.Fatalf("ListKeys(unknown) = %v, %v", list, err)
	}
	all, err := s.ListAllKeys(ctx)
	must(t, err)
	sortKeys(all)
	same(t, "ListAllKeys", all, []vault.KeyRecord{k1, k2, k3})
}

func testKeyUniqueness(t *testing.T, h *harness) {
	s := h.store()
	mustUser(t, s, "u-a", "a@example.com")
	mustUser(t, s, "u-b", "b@example.com")
	must(t, s.CreateKey(ctx, key("k1", "u-a")))
	dupID := key("k1", "u-b")
	dupID.Hash = hash("other")
	wantErr(t, "duplicate key id", s.CreateKey(ctx, dupID), vault.ErrDuplicate)
	dupHash := key("k2", "u-b")
	dupHash.Hash = hash("k1")
	wantErr(t, "duplicate key hash", s.CreateKey(ctx, dupHash), vault.ErrDuplicate)
	// A revoked key's hash stays taken.
	must(t, s.RevokeKey(ctx, "u-a", "k1", time.Time{}))
	wantErr(t, "hash of a revoked key", s.CreateKey(ctx, dupHash), vault.ErrDuplicate)
	if list, _ := s.ListKeys(ctx, "u-b"); len(list) != 0 {
		t.Fatalf("failed creates left keys behind: %v", list)
	}
}

func testRevokeAndTouch(t *testing.T, h *harness) {
	s := h.store()
	mustUser(t, s, "u-a", "a@example.com")
	mustUser(t, s, "u-b", "b@example.com")
	for _, id := range []string{"k1", "k2", "k3"} {
		must(t, s.CreateKey(ctx, key(id, "u-a")))
	}

	// TouchKeys only ever moves LastUsed forward and skips unknown keys.
	must(t, s.TouchKeys(ctx, map[string]time.Time{"k1": t0.Add(time.Minute), "k2": t0.Add(2 * time.Minute), "gone": t0}))
	must(t, s.TouchKeys(ctx, map[string]time.Time{"k1": t0}))
	lastUsed := func(id string) time.Time {
		t.Helper()
		k, err := s.GetKey(ctx, id)
		must(t, err)
		return k.LastUsed
	}
	if got := lastUsed("k1"); !got.Equal(t0.Add(time.Minute)) {
		t.Fatalf("k1 last used %v, want %v", got, t0.Add(time.Minute))
	}
	if got := lastUsed("k3"); !got.IsZero() {
		t.Fatalf("untouched key last used %v", got)
	}

	wantErr(t, "RevokeKey(other user's)", s.RevokeKey(ctx, "u-b", "k1", time.Time{}), vault.ErrNotFound)
	wantErr(t, "RevokeKey(unknown)", s.RevokeKey(ctx, "u-a", "k0", time.Time{}), vault.ErrNotFound)
	must(t, s.RevokeKey(ctx, "u-a", "k1", t0.Add(5*time.Minute)))
	must(t, s.RevokeKey(ctx, "u-a", "k2", t0)) // earlier than stored: kept
	must(t, s.RevokeKey(ctx, "u-a", "k2", time.Time{}))
	for id, want := range map[string]time.Time{"k1": t0.Add(5 * time.Minute), "k2": t0.Add(2 * time.Minute)} {
		k, err := s.GetKey(ctx, id)
		must(t, err)
		if !k.Disabled || !k.LastUsed.Equal(want) {
			t.Fatalf("%s after revoke: disabled %t, last used %v; want true, %v", id, k.Disabled, k.LastUsed, want)
		}
	}
	if k, _ := s.GetKey(ctx, "k3"); k.Disabled {
		t.Fatal("revoking k1 and k2 disabled k3")
	}
}

// sortKeys orders keys by id.
func sortKeys(ks []vault.KeyRecord) {
	sort.Slice(ks, func(i, j int) bool { return ks[i].ID < ks[j].ID })
}
