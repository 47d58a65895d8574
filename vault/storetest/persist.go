package storetest

import (
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// testPersistence writes one of everything, closes the store, reopens the
// database and reads it all back.
func testPersistence(t *testing.T, h *harness) {
	s := h.store()
	a := mustUser(t, s, "u-a", "a@example.com")
	k := key("k1", "u-a")
	must(t, s.CreateKey(ctx, k))
	must(t, s.TouchKeys(ctx, map[string]time.Time{"k1": t0.Add(time.Minute)}))
	k.LastUsed = t0.Add(time.Minute)
	tok := tokens(3, "ciphertext")
	must(t, s.UpdateTokens(ctx, "u-a", "a1", func(*vault.TokenRecord) (*vault.TokenRecord, error) { return &tok, nil }))
	sess := vault.SessionRecord{UserID: "u-a", Created: t0, Expires: t0.Add(day)}
	must(t, s.PutSession(ctx, hash("s1"), sess))
	login := vault.LoginRecord{Email: "a@example.com", Expires: t0.Add(day)}
	must(t, s.PutLoginToken(ctx, hash("l1"), login))
	oauth := vault.OAuthRecord{UserID: "u-a", Expires: t0.Add(day), Verifier: vault.Sealed{KeyID: "k", Nonce: []byte("n"), Ciphertext: []byte("c")}}
	must(t, s.PutOAuthSession(ctx, hash("o1"), oauth))
	rec := logRec("r1", "u-a", t0, 200, "")
	rec.AccountID, rec.FailoverFrom = "a2", "a1" // served by a2 after a1 was at its limit
	must(t, s.AppendLogs(ctx, []vault.LogRecord{rec}, []vault.UsageDelta{{UserID: "u-a", DayUsage: vault.DayUsage{Day: midnight(t0), Requests: 1}}}))
	q := quota("plus", 12)
	must(t, s.PutQuotas(ctx, map[vault.AccountRef]vault.QuotaSnapshot{{UserID: "u-a", ID: "a1"}: q}))
	if err := closeOnce(s); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = h.store()
	gotU, err := s.GetUser(ctx, "u-a")
	must(t, err)
	same(t, "user", gotU, a)
	gotK, err := s.GetKey(ctx, "k1")
	must(t, err)
	same(t, "key", gotK, k)
	gotT, err := s.GetTokens(ctx, "u-a", "a1")
	must(t, err)
	same(t, "tokens", gotT, tok)
	gotS, err := s.GetSession(ctx, hash("s1"))
	must(t, err)
	same(t, "session", gotS, sess)
	gotL, err := s.TakeLoginToken(ctx, hash("l1"))
	must(t, err)
	same(t, "login token", gotL, login)
	gotO, err := s.TakeOAuthSession(ctx, hash("o1"))
	must(t, err)
	same(t, "OAuth session", gotO, oauth)
	gotR, err := s.RecentLogs(ctx, vault.LogQuery{UserID: "u-a", Limit: 5})
	must(t, err)
	same(t, "request log", gotR, []vault.LogRecord{rec})
	gotD, err := s.Usage(ctx, "u-a", t0, t0)
	must(t, err)
	same(t, "usage", gotD, []vault.DayUsage{{Day: midnight(t0), Requests: 1}})
	gotQ, err := s.ListQuotas(ctx)
	must(t, err)
	same(t, "quotas", gotQ, map[vault.AccountRef]vault.QuotaSnapshot{{UserID: "u-a", ID: "a1"}: q})
	// Uniqueness survives the reopen too.
	wantErr(t, "duplicate email after reopen", s.CreateUser(ctx, user("u-b", "a@example.com")), vault.ErrEmailTaken)
	k2 := key("k2", "u-a")
	k2.Hash = k.Hash
	wantErr(t, "duplicate key hash after reopen", s.CreateKey(ctx, k2), vault.ErrDuplicate)
}

// testClosed: a closed store says so, and closes its Changes channel.
func testClosed(t *testing.T, h *harness) {
	s := h.store()
	mustUser(t, s, "u-a", "a@example.com")
	ch := s.Changes()
	if err := closeOnce(s); err != nil {
		t.Fatalf("Close: %v", err)
	}
	_, err := s.GetUser(ctx, "u-a")
	wantErr(t, "GetUser after Close", err, vault.ErrClosed)
	wantErr(t, "CreateUser after Close", s.CreateUser(ctx, user("u-b", "b@example.com")), vault.ErrClosed)
	if ch != nil {
		select {
		case _, ok := <-ch:
			for ok {
				_, ok = <-ch
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Changes channel still open after Close")
		}
	}
}
