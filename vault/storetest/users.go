package storetest

import (
	"sort"
	"testing"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

func testUsers(t *testing.T, h *harness) {
	s := h.store()
	_, err := s.GetUser(ctx, "nobody")
	wantErr(t, "GetUser(unknown)", err, vault.ErrNotFound)
	if us, err := s.ListUsers(ctx); err != nil || len(us) != 0 {
		t.Fatalf("ListUsers on an empty store: %v, %v", us, err)
	}
	a := mustUser(t, s, "u-a", "a@example.com")
	b := mustUser(t, s, "u-b", "b@example.com")
	got, err := s.GetUser(ctx, "u-a")
	must(t, err)
	same(t, "GetUser", got, a)
	got, err = s.UserByEmail(ctx, "b@example.com")
	must(t, err)
	same(t, "UserByEmail", got, b)
	_, err = s.UserByEmail(ctx, "nobody@example.com")
	wantErr(t, "UserByEmail(unknown)", err, vault.ErrNotFound)

	// UpdateUser changes everything but the email.
	b.Name, b.Disabled, b.AccountPolicy = "Renamed", true, vault.PolicyMostRemaining
	changed := b
	changed.Email = "other@example.com"
	must(t, s.UpdateUser(ctx, changed))
	got, err = s.GetUser(ctx, "u-b")
	must(t, err)
	same(t, "after UpdateUser", got, b)
	wantErr(t, "UpdateUser(unknown)", s.UpdateUser(ctx, user("nobody", "n@example.com")), vault.ErrNotFound)
	// The email index still points at b, not at the ignored new address.
	wantErr(t, "CreateUser(b's email) after update", s.CreateUser(ctx, user("u-c", "b@example.com")), vault.ErrEmailTaken)

	all, err := s.ListUsers(ctx)
	must(t, err)
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	same(t, "ListUsers", all, []vault.User{a, b})
}

func testUserUniqueness(t *testing.T, h *harness) {
	s := h.store()
	mustUser(t, s, "u-a", "a@example.com")
	wantErr(t, "duplicate email", s.CreateUser(ctx, user("u-b", "a@example.com")), vault.ErrEmailTaken)
	wantErr(t, "duplicate id", s.CreateUser(ctx, user("u-a", "other@example.com")), vault.ErrDuplicate)
	// The failed creates left nothing behind.
	_, err := s.GetUser(ctx, "u-b")
	wantErr(t, "user of a failed create", err, vault.ErrNotFound)
	mustUser(t, s, "u-c", "other@example.com")
}

func testDeleteUserCascade(t *testing.T, h *harness) {
	s := h.store()
	wantErr(t, "DeleteUser(unknown)", s.DeleteUser(ctx, "nobody"), vault.ErrNotFound)
	mustUser(t, s, "u-a", "a@example.com")
	mustUser(t, s, "u-b", "b@example.com")
	for _, u := range []string{"u-a", "u-b"} {
		must(t, s.CreateKey(ctx, key("k-"+u, u)))
		for _, acct := range []string{"a1", "a2"} {
			must(t, s.UpdateTokens(ctx, u, acct, func(*vault.TokenRecord) (*vault.TokenRecord, error) {
				rec := tokens(1, "ct-"+u)
				return &rec, nil
			}))
		}
		must(t, s.PutSession(ctx, hash("sess-"+u), vault.SessionRecord{UserID: u, Created: t0, Expires: t0.Add(day)}))
		must(t, s.PutOAuthSession(ctx, hash("oauth-"+u), vault.OAuthRecord{UserID: u, Expires: t0.Add(day)}))
	}
	must(t, s.PutQuotas(ctx, map[vault.AccountRef]vault.QuotaSnapshot{
		{UserID: "u-a", ID: "a1"}: {PlanType: "plus", Seen: t0}, {UserID: "u-a", ID: "a2"}: {PlanType: "plus", Seen: t0},
		{UserID: "u-b", ID: "a1"}: {PlanType: "pro", Seen: t0},
	}))
	must(t, s.AppendLogs(ctx, []vault.LogRecord{{Time: t0, UserID: "u-a", RequestID: "r1", Status: 200}},
		[]vault.UsageDelta{{UserID: "u-a", DayUsage: vault.DayUsage{Day: midnight(t0), Requests: 1}}}))

	must(t, s.DeleteUser(ctx, "u-a"))

	_, err := s.GetUser(ctx, "u-a")
	wantErr(t, "GetUser(deleted)", err, vault.ErrNotFound)
	_, err = s.GetKey(ctx, "k-u-a")
	wantErr(t, "GetKey(deleted user's)", err, vault.ErrNotFound)
	if ks, err := s.ListKeys(ctx, "u-a"); err != nil || len(ks) != 0 {
		t.Fatalf("ListKeys(deleted user) = %v, %v", ks, err)
	}
	_, err = s.GetTokens(ctx, "u-a", "a1")
	wantErr(t, "GetTokens(deleted user)", err, vault.ErrNotFound)
	if all, err := s.ListUserTokens(ctx, "u-a"); err != nil || len(all) != 0 {
		t.Fatalf("ListUserTokens(deleted user) = %v, %v", all, err)
	}
	_, err = s.GetSession(ctx, hash("sess-u-a"))
	wantErr(t, "GetSession(deleted user's)", err, vault.ErrNotFound)
	_, err = s.TakeOAuthSession(ctx, hash("oauth-u-a"))
	wantErr(t, "TakeOAuthSession(deleted user's)", err, vault.ErrNotFound)
	qs, err := s.ListQuotas(ctx)
	must(t, err)
	if _, ok := qs[vault.AccountRef{UserID: "u-b", ID: "a1"}]; !ok || len(qs) != 1 {
		t.Fatalf("quotas after delete: %v", qs)
	}
	// History stays.
	recs, err := s.RecentLogs(ctx, vault.LogQuery{UserID: "u-a", Limit: 10})
	must(t, err)
	if ids(recs) != "[r1]" {
		t.Fatalf("request log of the deleted user: %s", ids(recs))
	}
	if us, err := s.Usage(ctx, "u-a", t0, t0); err != nil || len(us) != 1 {
		t.Fatalf("usage of the deleted user: %v, %v", us, err)
	}
	// The other user is untouched.
	if _, err := s.GetKey(ctx, "k-u-b"); err != nil {
		t.Fatalf("other user's key: %v", err)
	}
	if _, err := s.GetTokens(ctx, "u-b", "a2"); err != nil {
		t.Fatalf("other user's tokens: %v", err)
	}
	if _, err := s.GetSession(ctx, hash("sess-u-b")); err != nil {
		t.Fatalf("other user's session: %v", err)
	}
	// The email and the key hash are free again.
	mustUser(t, s, "u-a2", "a@example.com")
	must(t, s.CreateKey(ctx, vault.KeyRecord{Key: vault.Key{ID: "k-new", UserID: "u-a2", Created: t0}, Hash: hash("k-u-a")}))
}
