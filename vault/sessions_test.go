package vault

import (
	"testing"
	"time"
)

func TestSessions(t *testing.T) {
	v, path, clock := newTestVault(t, nil)
	u := mustUser(t, v, "a@example.com")
	if _, err := v.CreateSession("no-such-user", time.Hour); err != ErrNotFound {
		t.Fatalf("session for unknown user: %v", err)
	}
	if _, err := v.CreateSession(u.ID, 0); err == nil {
		t.Fatal("zero ttl accepted")
	}
	short, _ := v.CreateSession(u.ID, time.Minute)
	long, _ := v.CreateSession(u.ID, time.Hour)
	gone, _ := v.CreateSession(u.ID, time.Hour)
	if short == long || len(short) != 43 {
		t.Fatalf("tokens %q %q", short, long)
	}
	for _, tok := range []string{short, long, gone} {
		if got, err := v.SessionUser(tok); err != nil || got.ID != u.ID {
			t.Fatalf("SessionUser = %+v, %v", got, err)
		}
	}
	if err := v.DeleteSession(gone); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute)
	for tok, want := range map[string]error{short: ErrInvalidToken, long: nil, gone: ErrInvalidToken, "made-up": ErrInvalidToken} {
		if _, err := v.SessionUser(tok); err != want {
			t.Errorf("SessionUser: %v, want %v", err, want)
		}
	}
	v.Close()
	v2 := openAt(t, path, testOptions(clock))
	if _, err := v2.SessionUser(long); err != nil {
		t.Fatalf("session lost on reopen: %v", err)
	}
}

func TestLoginTokens(t *testing.T) {
	v, _, clock := newTestVault(t, nil)
	tok, err := v.CreateLoginToken(" Bob@Example.com", 15*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	expired, _ := v.CreateLoginToken("carol@example.com", time.Minute)
	if _, err := v.CreateLoginToken("not-an-email", time.Minute); err == nil {
		t.Fatal("bad email accepted")
	}
	clock.Advance(2 * time.Minute)
	if email, err := v.ConsumeLoginToken(tok); err != nil || email != "bob@example.com" {
		t.Fatalf("Consume = %q, %v", email, err)
	}
	for name, tok := range map[string]string{"reused": tok, "expired": expired, "unknown": "nope"} {
		if _, err := v.ConsumeLoginToken(tok); err != ErrInvalidToken {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestOAuthSessions(t *testing.T) {
	v, _, clock := newTestVault(t, nil)
	const state = "state-0123456789abcdef"
	in := OAuthSession{UserID: "u1", Verifier: "pkce-verifier", Expires: t0.Add(10 * time.Minute)}
	if err := v.PutOAuthSession("short", in); err == nil {
		t.Fatal("short state accepted")
	}
	if err := v.PutOAuthSession(state, OAuthSession{Expires: t0}); err == nil {
		t.Fatal("already expired session accepted")
	}
	if err := v.PutOAuthSession(state, in); err != nil {
		t.Fatal(err)
	}
	if err := v.PutOAuthSession(state+"-expiring", OAuthSession{UserID: "u1", Verifier: "x", Expires: t0.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute)
	got, err := v.TakeOAuthSession(state)
	if err != nil || got != in {
		t.Fatalf("Take = %+v, %v", got, err)
	}
	for name, s := range map[string]string{"twice": state, "expired": state + "-expiring", "unknown": "state-unknown-0000000"} {
		if _, err := v.TakeOAuthSession(s); err != ErrInvalidToken {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestExpiredSecretsPurged(t *testing.T) {
	v, path, clock := newTestVault(t, nil)
	u := mustUser(t, v, "a@example.com")
	v.CreateSession(u.ID, time.Minute)
	keep, _ := v.CreateSession(u.ID, time.Hour)
	v.CreateLoginToken("a@example.com", time.Minute)
	v.PutOAuthSession("state-0123456789abcdef", OAuthSession{Expires: t0.Add(time.Minute)})
	v.Close()
	clock.Advance(2 * time.Minute)
	v2 := openAt(t, path, testOptions(clock)) // purges at open
	if n, err := v2.purgeExpiredSecrets(); err != nil || n != 0 {
		t.Fatalf("left behind at open: %d, %v", n, err)
	}
	if _, err := v2.SessionUser(keep); err != nil {
		t.Fatalf("live session purged: %v", err)
	}
	clock.Advance(time.Hour)
	if n, err := v2.purgeExpiredSecrets(); err != nil || n != 1 {
		t.Fatalf("purge = %d, %v; want 1", n, err)
	}
}
