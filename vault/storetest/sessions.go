package storetest

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

func testSessions(t *testing.T, h *harness) {
	s := h.store()
	sess := vault.SessionRecord{UserID: "u-a", Created: t0, Expires: t0.Add(day)}
	wantErr(t, "PutSession(unknown user)", s.PutSession(ctx, hash("s1"), sess), vault.ErrNotFound)
	mustUser(t, s, "u-a", "a@example.com")
	must(t, s.PutSession(ctx, hash("s1"), sess))
	got, err := s.GetSession(ctx, hash("s1"))
	must(t, err)
	same(t, "GetSession", got, sess)
	_, err = s.GetSession(ctx, hash("s2"))
	wantErr(t, "GetSession(unknown)", err, vault.ErrNotFound)
	must(t, s.DeleteSession(ctx, hash("s1")))
	must(t, s.DeleteSession(ctx, hash("s1"))) // unknown: fine
	_, err = s.GetSession(ctx, hash("s1"))
	wantErr(t, "GetSession(deleted)", err, vault.ErrNotFound)

	// A session an OpenID Connect admin claim began keeps its flag.
	admin := vault.SessionRecord{UserID: "u-a", Created: t0, Expires: t0.Add(day), AdminByClaim: true}
	must(t, s.PutSession(ctx, hash("s3"), admin))
	got, err = s.GetSession(ctx, hash("s3"))
	must(t, err)
	same(t, "GetSession(AdminByClaim)", got, admin)
	must(t, s.DeleteSession(ctx, hash("s3")))

	login := vault.LoginRecord{Email: "a@example.com", Expires: t0.Add(15 * time.Minute)}
	must(t, s.PutLoginToken(ctx, hash("l1"), login))
	peek, err := s.GetLoginToken(ctx, hash("l1"))
	must(t, err)
	same(t, "GetLoginToken", peek, login)
	_, err = s.GetLoginToken(ctx, hash("l2"))
	wantErr(t, "GetLoginToken(unknown)", err, vault.ErrNotFound)
	gotLogin, err := s.TakeLoginToken(ctx, hash("l1"))
	must(t, err)
	same(t, "TakeLoginToken", gotLogin, login)
	_, err = s.TakeLoginToken(ctx, hash("l1"))
	wantErr(t, "TakeLoginToken(second time)", err, vault.ErrNotFound)

	oauth := vault.OAuthRecord{UserID: "u-a", Expires: t0.Add(day),
		Verifier: vault.Sealed{KeyID: "0a1b2c3d", Nonce: []byte("twelve-bytes"), Ciphertext: []byte("sealed verifier")}}
	must(t, s.PutOAuthSession(ctx, hash("o1"), oauth))
	gotOAuth, err := s.TakeOAuthSession(ctx, hash("o1"))
	must(t, err)
	same(t, "TakeOAuthSession", gotOAuth, oauth)
	_, err = s.TakeOAuthSession(ctx, hash("o1"))
	wantErr(t, "TakeOAuthSession(second time)", err, vault.ErrNotFound)

	// Sign out everywhere: every session and OAuth flow of one user goes,
	// another user's stay.
	mustUser(t, s, "u-b", "b@example.com")
	must(t, s.PutSession(ctx, hash("a1"), sess))
	must(t, s.PutSession(ctx, hash("a2"), sess))
	must(t, s.PutSession(ctx, hash("b1"), vault.SessionRecord{UserID: "u-b", Created: t0, Expires: t0.Add(day)}))
	must(t, s.PutOAuthSession(ctx, hash("o2"), oauth))
	n, err := s.DeleteUserSessions(ctx, "u-a")
	must(t, err)
	if n != 2 {
		t.Fatalf("DeleteUserSessions removed %d sessions, want 2", n)
	}
	for _, k := range []string{"a1", "a2"} {
		_, err = s.GetSession(ctx, hash(k))
		wantErr(t, "GetSession(after DeleteUserSessions)", err, vault.ErrNotFound)
	}
	_, err = s.TakeOAuthSession(ctx, hash("o2"))
	wantErr(t, "TakeOAuthSession(after DeleteUserSessions)", err, vault.ErrNotFound)
	_, err = s.GetSession(ctx, hash("b1"))
	must(t, err)
}

// testTakeConcurrent: of many concurrent takes of one login token, exactly
// one succeeds.
func testTakeConcurrent(t *testing.T, h *harness) {
	s := h.store()
	must(t, s.PutLoginToken(ctx, hash("l1"), vault.LoginRecord{Email: "a@example.com", Expires: t0.Add(day)}))
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.TakeLoginToken(ctx, hash("l1")); err == nil {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := wins.Load(); n != 1 {
		t.Fatalf("%d takes of one login token succeeded, want 1", n)
	}
}

func testPurgeSessions(t *testing.T, h *harness) {
	s := h.store()
	mustUser(t, s, "u-a", "a@example.com")
	now := t0.Add(day)
	must(t, s.PutSession(ctx, hash("s-old"), vault.SessionRecord{UserID: "u-a", Created: t0, Expires: now.Add(-tick)}))
	must(t, s.PutSession(ctx, hash("s-edge"), vault.SessionRecord{UserID: "u-a", Created: t0, Expires: now}))
	must(t, s.PutSession(ctx, hash("s-live"), vault.SessionRecord{UserID: "u-a", Created: t0, Expires: now.Add(tick)}))
	must(t, s.PutLoginToken(ctx, hash("l-old"), vault.LoginRecord{Email: "a@example.com", Expires: now.Add(-tick)}))
	must(t, s.PutLoginToken(ctx, hash("l-live"), vault.LoginRecord{Email: "a@example.com", Expires: now.Add(tick)}))
	must(t, s.PutOAuthSession(ctx, hash("o-old"), vault.OAuthRecord{UserID: "u-a", Expires: now.Add(-tick)}))
	must(t, s.PutOAuthSession(ctx, hash("o-live"), vault.OAuthRecord{UserID: "u-a", Expires: now.Add(tick)}))
	n, err := s.PurgeExpiredSessions(ctx, now)
	must(t, err)
	if n != 4 {
		t.Fatalf("purged %d, want 4 (expiring at now counts as expired)", n)
	}
	for _, k := range []string{"s-old", "s-edge"} {
		_, err := s.GetSession(ctx, hash(k))
		wantErr(t, "purged session "+k, err, vault.ErrNotFound)
	}
	if _, err := s.GetSession(ctx, hash("s-live")); err != nil {
		t.Fatalf("live session purged: %v", err)
	}
	_, err = s.TakeLoginToken(ctx, hash("l-old"))
	wantErr(t, "purged login token", err, vault.ErrNotFound)
	if _, err := s.TakeLoginToken(ctx, hash("l-live")); err != nil {
		t.Fatalf("live login token purged: %v", err)
	}
	_, err = s.TakeOAuthSession(ctx, hash("o-old"))
	wantErr(t, "purged OAuth session", err, vault.ErrNotFound)
	if _, err := s.TakeOAuthSession(ctx, hash("o-live")); err != nil {
		t.Fatalf("live OAuth session purged: %v", err)
	}
}
