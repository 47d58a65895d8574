package vault

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// notifyingStore is the bbolt engine with a Changes channel the test
// feeds, standing in for a server engine's notifications from other
// instances.
type notifyingStore struct {
	TestStore
	ch chan Change
}

func (n *notifyingStore) Changes() <-chan Change { return n.ch }

func (n *notifyingStore) Close() error {
	err := n.TestStore.Close()
	close(n.ch)
	return err
}

// clusterVault is a Vault on a notifying store; the returned store is the
// shared database "another instance" writes to directly, and notify
// delivers a change and returns once the vault has applied it.
func clusterVault(t *testing.T) (*Vault, TestStore, func(Change)) {
	t.Helper()
	bs, err := OpenTestStore(filepath.Join(t.TempDir(), "vault.db"), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	ns := &notifyingStore{TestStore: bs, ch: make(chan Change)}
	v, err := New(ns, testOptions(newClock()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	notify := func(c Change) {
		ns.ch <- c
		// The channel is unbuffered and applied in order: once this no-op
		// is taken, c has been applied.
		ns.ch <- Change{}
	}
	return v, bs, notify
}

func TestChangesFromOtherInstances(t *testing.T) {
	ctx := context.Background()
	v, other, notify := clusterVault(t)
	u := mustUser(t, v, "alice@example.com")
	plain, k, err := v.CreateKey(u.ID, "laptop")
	if err != nil {
		t.Fatal(err)
	}

	// Revoked elsewhere: works from the cache until the change arrives.
	if err := other.RevokeKey(ctx, u.ID, k.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := v.VerifyKey(plain); err != nil {
		t.Fatalf("before the notification: %v", err)
	}
	notify(Change{Kind: ChangeKey, UserID: u.ID, KeyID: k.ID})
	if _, _, err := v.VerifyKey(plain); !errors.Is(err, ErrKeyInvalid) {
		t.Fatalf("key revoked elsewhere still works: %v", err)
	}

	// A key created elsewhere works here once announced.
	plain2 := "cpk_created-on-another-instance-0123456789abcdef"
	sum := v.keyHash(plain2)
	rec := KeyRecord{Key: Key{ID: "k-other", UserID: u.ID, Prefix: plain2[:12], Created: t0}, Hash: sum[:]}
	if err := other.CreateKey(ctx, rec); err != nil {
		t.Fatal(err)
	}
	notify(Change{Kind: ChangeKey, UserID: u.ID, KeyID: rec.ID})
	if got, _, err := v.VerifyKey(plain2); err != nil || got.ID != rec.ID {
		t.Fatalf("key created elsewhere: %+v, %v", got, err)
	}

	// Disabled elsewhere.
	disabled := u
	disabled.Disabled = true
	if err := other.UpdateUser(ctx, disabled); err != nil {
		t.Fatal(err)
	}
	notify(Change{Kind: ChangeUser, UserID: u.ID})
	if _, _, err := v.VerifyKey(plain2); !errors.Is(err, ErrUserDisabled) {
		t.Fatalf("user disabled elsewhere: %v", err)
	}

	// Tokens re-linked elsewhere: the new access token is used at once.
	if err := v.PutTokens(u.ID, bundle("rt-0", t0.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	relinked := withClaims(bundle("rt-elsewhere", t0.Add(2*time.Hour)), false)
	relinked.AccessToken += "-elsewhere"
	relinked.Version = 5
	ref := first(t, v, u.ID)
	sealed, err := v.sealBundle(ref, relinked)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.UpdateTokens(ctx, u.ID, ref.ID, func(*TokenRecord) (*TokenRecord, error) { return sealed, nil }); err != nil {
		t.Fatal(err)
	}
	notify(Change{Kind: ChangeTokens, UserID: u.ID})
	if tok, _, err := v.AccessToken(ctx, u.ID, false); err != nil || tok != relinked.AccessToken {
		t.Fatalf("tokens changed elsewhere: got %q, %v", tok, err)
	}
	// Unlinked elsewhere.
	if err := other.DeleteTokens(ctx, u.ID, ref.ID); err != nil {
		t.Fatal(err)
	}
	notify(Change{Kind: ChangeTokens, UserID: u.ID})
	if _, _, err := v.AccessToken(ctx, u.ID, false); !errors.Is(err, ErrNotLinked) {
		t.Fatalf("unlinked elsewhere: %v", err)
	}

	// Deleted elsewhere.
	if err := other.DeleteUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	notify(Change{Kind: ChangeUser, UserID: u.ID})
	if _, err := v.User(u.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("user deleted elsewhere: %v", err)
	}
	if _, err := v.UserByEmail(u.Email); !errors.Is(err, ErrNotFound) {
		t.Fatalf("email of a user deleted elsewhere: %v", err)
	}
}

// TestChangeAllResyncs: after missed notifications the engine sends
// ChangeAll and the caches match the database again.
func TestChangeAllResyncs(t *testing.T) {
	ctx := context.Background()
	v, other, notify := clusterVault(t)
	alice, bob := mustUser(t, v, "alice@example.com"), mustUser(t, v, "bob@example.com")
	plainA, keyA, _ := v.CreateKey(alice.ID, "")
	plainB, _, _ := v.CreateKey(bob.ID, "")
	if err := v.PutTokens(bob.ID, bundle("rt-0", t0.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	// Meanwhile, unannounced: alice's key revoked, bob deleted, carol added.
	if err := other.RevokeKey(ctx, alice.ID, keyA.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := other.DeleteUser(ctx, bob.ID); err != nil {
		t.Fatal(err)
	}
	carol := User{ID: "carol-id", Email: "carol@example.com", Created: t0}
	if err := other.CreateUser(ctx, carol); err != nil {
		t.Fatal(err)
	}
	notify(Change{Kind: ChangeAll})
	if _, _, err := v.VerifyKey(plainA); !errors.Is(err, ErrKeyInvalid) {
		t.Fatalf("revoked key: %v", err)
	}
	if _, _, err := v.VerifyKey(plainB); !errors.Is(err, ErrKeyInvalid) {
		t.Fatalf("deleted user's key: %v", err)
	}
	if _, _, err := v.AccessToken(ctx, bob.ID, false); !errors.Is(err, ErrNotLinked) {
		t.Fatalf("deleted user's tokens: %v", err)
	}
	if got, err := v.UserByEmail("carol@example.com"); err != nil || got.ID != carol.ID {
		t.Fatalf("user added elsewhere: %+v, %v", got, err)
	}
}

// A session of a user another instance has just created is good here
// before the change notification arrives (their first sign-in there, the
// next request here).
func TestSessionOfAUserCreatedElsewhere(t *testing.T) {
	ctx := context.Background()
	v, other, _ := clusterVault(t)
	u := User{ID: "u-elsewhere", Email: "new@example.com", Created: t0}
	if err := other.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	token := "session-token-made-on-another-instance"
	if err := other.PutSession(ctx, secretKey(token), SessionRecord{UserID: u.ID, Created: t0, Expires: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	got, _, err := v.Session(token)
	if err != nil || got.Email != "new@example.com" {
		t.Fatalf("Session before the notification: %+v %v", got, err)
	}
	if _, _, err := v.Session("no-such-session"); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("an unknown session: %v", err)
	}
}

// A sign-up of an email another instance has just given a user (the same
// person's two sign-in links, two instances, the same moment) loses the
// race in the store, not in this instance's cache: CreateUser still says
// ErrEmailTaken, and UserByEmail then finds the winner before the change
// notification arrives, so the caller signs them in instead of failing.
func TestCreateUserLosingARaceFindsTheWinner(t *testing.T) {
	ctx := context.Background()
	v, other, _ := clusterVault(t)
	won := User{ID: "u-winner", Email: "new@example.com", Created: t0}
	if err := other.CreateUser(ctx, won); err != nil {
		t.Fatal(err)
	}
	if _, err := v.CreateUser("New@Example.com", ""); !errors.Is(err, ErrEmailTaken) {
		t.Fatalf("CreateUser of a taken email: %v", err)
	}
	got, err := v.UserByEmail("new@example.com")
	if err != nil || got.ID != won.ID {
		t.Fatalf("UserByEmail after losing the race: %+v %v", got, err)
	}
	if u, err := v.User(won.ID); err != nil || u.Email != won.Email {
		t.Fatalf("User(winner): %+v %v", u, err)
	}
}
