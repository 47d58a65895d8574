package vault

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestUsers(t *testing.T) {
	v, path, clock := newTestVault(t, nil)
	a, err := v.CreateUser("  Alice@Example.COM ", " Alice ")
	if err != nil {
		t.Fatal(err)
	}
	if a.Email != "alice@example.com" || a.Name != "Alice" || len(a.ID) != 36 || !a.Created.Equal(t0) {
		t.Fatalf("user %+v", a)
	}
	if _, err := v.CreateUser("ALICE@example.com", ""); err != ErrEmailTaken {
		t.Fatalf("duplicate email: %v", err)
	}
	b := mustUser(t, v, "bob@example.com")
	for _, bad := range []string{"", "   ", "nobody", "@example.com", "a@", "a b@example.com", "a@exa\x00mple.com"} {
		if _, err := v.CreateUser(bad, ""); err == nil {
			t.Errorf("CreateUser(%q) accepted", bad)
		}
	}
	check := func(v *Vault) {
		t.Helper()
		if got, err := v.UserByEmail("ALICE@example.com"); err != nil || got != a {
			t.Errorf("UserByEmail = %+v, %v", got, err)
		}
		if got, err := v.User(b.ID); err != nil || got != b {
			t.Errorf("User = %+v, %v", got, err)
		}
		if _, err := v.User("nope"); err != ErrNotFound {
			t.Errorf("unknown id: %v", err)
		}
		if _, err := v.UserByEmail("carol@example.com"); err != ErrNotFound {
			t.Errorf("unknown email: %v", err)
		}
		if all, _ := v.ListUsers(); len(all) != 2 || all[0] != a || all[1] != b {
			t.Errorf("ListUsers = %+v", all)
		}
	}
	check(v)
	v.Close()
	check(openAt(t, path, testOptions(clock)))
}

func TestDeleteUserRemovesEverything(t *testing.T) {
	v, path, clock := newTestVault(t, nil)
	u := mustUser(t, v, "alice@example.com")
	keep := mustUser(t, v, "bob@example.com")
	plain, _, _ := v.CreateKey(u.ID, "")
	keepKey, _, _ := v.CreateKey(keep.ID, "")
	if err := v.PutTokens(u.ID, bundle("rt-0", t0.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	session, _ := v.CreateSession(u.ID, time.Hour)
	keepSession, _ := v.CreateSession(keep.ID, time.Hour)
	state := "state-0123456789abcdef"
	if err := v.PutOAuthSession(state, OAuthSession{UserID: u.ID, Verifier: "v", Expires: t0.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := v.DeleteUser(u.ID); err != nil {
		t.Fatal(err)
	}
	if err := v.DeleteUser(u.ID); err != ErrNotFound {
		t.Fatalf("second delete: %v", err)
	}
	check := func(v *Vault) {
		t.Helper()
		if _, err := v.User(u.ID); err != ErrNotFound {
			t.Error("user still there")
		}
		if _, _, err := v.VerifyKey(plain); err != ErrKeyInvalid {
			t.Error("key still valid")
		}
		if keys, _ := v.ListKeys(u.ID); len(keys) != 0 {
			t.Error("keys still listed")
		}
		if _, _, err := v.AccessToken(context.Background(), u.ID, false); err != ErrNotLinked {
			t.Errorf("tokens still there: %v", err)
		}
		if _, err := v.TokenInfo(u.ID); err != ErrNotLinked {
			t.Errorf("token info still there: %v", err)
		}
		if _, err := v.SessionUser(session); err != ErrInvalidToken {
			t.Error("session still valid")
		}
		// The other user is untouched.
		if _, _, err := v.VerifyKey(keepKey); err != nil {
			t.Errorf("other user's key: %v", err)
		}
		if _, err := v.SessionUser(keepSession); err != nil {
			t.Errorf("other user's session: %v", err)
		}
	}
	check(v)
	if _, err := v.TakeOAuthSession(state); err != ErrInvalidToken {
		t.Error("OAuth session still there")
	}
	v.Close()
	v2 := openAt(t, path, testOptions(clock))
	check(v2)
	if _, err := v2.CreateUser("alice@example.com", ""); err != nil {
		t.Fatalf("email not free again: %v", err)
	}
}

// TestDisabledUser: disabling takes effect at once for keys and sessions,
// survives a reopen, and enabling restores both.
func TestDisabledUser(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault.db")
	opts := testOptions(newClock())
	v := openAt(t, path, opts)
	u, err := v.CreateUser("dis@example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	key, _, err := v.CreateKey(u.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	sess, err := v.CreateSession(u.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.SetUserDisabled(u.ID, true); err != nil {
		t.Fatal(err)
	}
	if _, _, err := v.VerifyKey(key); !errors.Is(err, ErrUserDisabled) {
		t.Fatalf("key of a disabled user: %v", err)
	}
	if _, err := v.SessionUser(sess); !errors.Is(err, ErrUserDisabled) {
		t.Fatalf("session of a disabled user: %v", err)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	v = openAt(t, path, opts)
	if _, _, err := v.VerifyKey(key); !errors.Is(err, ErrUserDisabled) {
		t.Fatalf("after reopen: %v", err)
	}
	if _, err := v.SetUserDisabled(u.ID, false); err != nil {
		t.Fatal(err)
	}
	if _, _, err := v.VerifyKey(key); err != nil {
		t.Fatalf("after enable: %v", err)
	}
	if _, err := v.SetUserDisabled("nobody", true); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown user: %v", err)
	}
}
