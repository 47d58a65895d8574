package postgres

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/usemysub/caddy-codex-proxy/internal/pgtest"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// propagation is how soon a write on one instance must take effect on
// another.
const propagation = time.Second

// TestChangesReachOtherInstance: two instances on one database; what an
// operator does on A (revoke a key, disable a user, unlink a login) takes
// effect on B within a second, though B checks keys from memory. After B's
// listener connection is killed, B reloads everything (catching what it
// missed meanwhile) and keeps following.
func TestChangesReachOtherInstance(t *testing.T) {
	dsn := pgtest.Start(t).NewDB(t)
	a := openInstance(t, dsn, nil)
	b := openInstance(t, dsn, nil)
	ctx := context.Background()

	alice, err := a.v.CreateUser("alice@example.com", "Alice")
	if err != nil {
		t.Fatal(err)
	}
	bob, err := a.v.CreateUser("bob@example.com", "Bob")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, label := range []string{"one", "two", "three", "four"} {
		k, _, err := a.v.CreateKey(alice.ID, label)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	bobKey, _, err := a.v.CreateKey(bob.ID, "bob")
	if err != nil {
		t.Fatal(err)
	}
	accepts := func(inst instance, key string) func() bool {
		return func() bool { _, _, err := inst.v.VerifyKey(key); return err == nil }
	}
	refuses := func(inst instance, key string, want error) func() bool {
		return func() bool { _, _, err := inst.v.VerifyKey(key); return errors.Is(err, want) }
	}
	// Created on A: usable on B.
	eventually(t, propagation, "B accepts a key created on A", accepts(b, keys[0]))
	eventually(t, propagation, "B accepts bob's key", accepts(b, bobKey))

	if err := a.v.RevokeKey(alice.ID, keyID(t, a, alice.ID, "one")); err != nil {
		t.Fatal(err)
	}
	took := eventually(t, propagation, "B refuses a key revoked on A", refuses(b, keys[0], vault.ErrKeyInvalid))
	t.Logf("revoke on A → refused on B after %s", took)
	if _, _, err := b.v.VerifyKey(keys[1]); err != nil {
		t.Fatalf("revoking one key refused another on B: %v", err)
	}

	if _, err := a.v.SetUserDisabled(bob.ID, true); err != nil {
		t.Fatal(err)
	}
	eventually(t, propagation, "B refuses a user disabled on A", refuses(b, bobKey, vault.ErrUserDisabled))

	if err := a.v.PutTokens(alice.ID, bundle("rt-0", time.Now().Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	eventually(t, propagation, "B serves tokens linked on A", func() bool {
		_, _, err := b.v.AccessToken(ctx, alice.ID, false)
		return err == nil
	})
	if err := a.v.Unlink(alice.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, propagation, "B stops serving tokens unlinked on A", func() bool {
		_, _, err := b.v.AccessToken(ctx, alice.ID, false)
		return errors.Is(err, vault.ErrNotLinked)
	})

	// Kill B's listener and hold its reconnect while A revokes a key: the
	// notification is lost, and B's reload after reconnecting catches it.
	entered, release := make(chan struct{}), make(chan struct{})
	hook := func() {
		entered <- struct{}{}
		<-release
	}
	b.s.testHookBeforeListen.Store(&hook)
	reconnects := b.s.reconnects.Load()
	terminate(t, dsn, b.s.listenPID.Load())
	<-entered
	b.s.testHookBeforeListen.Store(nil)
	if err := a.v.RevokeKey(alice.ID, keyID(t, a, alice.ID, "two")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if _, _, err := b.v.VerifyKey(keys[1]); err != nil {
		t.Fatalf("B refused key two while its listener was down (%v): the test no longer exercises the reload", err)
	}
	close(release)
	eventually(t, propagation, "B reloads after its listener reconnects", refuses(b, keys[1], vault.ErrKeyInvalid))
	if got := b.s.reconnects.Load(); got != reconnects+1 {
		t.Fatalf("listener reconnects: %d, want %d", got, reconnects+1)
	}
	// And it follows later changes as before.
	if err := a.v.RevokeKey(alice.ID, keyID(t, a, alice.ID, "three")); err != nil {
		t.Fatal(err)
	}
	eventually(t, propagation, "B refuses a key revoked after the reconnect", refuses(b, keys[2], vault.ErrKeyInvalid))
	if _, _, err := b.v.VerifyKey(keys[3]); err != nil {
		t.Fatalf("B refuses an untouched key after the reload: %v", err)
	}
}

// keyID finds the id of the user's key by label.
func keyID(t *testing.T, inst instance, userID, label string) string {
	t.Helper()
	ks, err := inst.v.ListKeys(userID)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range ks {
		if k.Label == label {
			return k.ID
		}
	}
	t.Fatalf("no key %q", label)
	return ""
}

// linkedPair opens instance A, links a user whose access token expired,
// then opens B (which loads it), both with the shared endpoint ep.
func linkedPair(t *testing.T, ep *endpoint, modA func(*vault.Options)) (dsn string, a, b instance, userID string) {
	t.Helper()
	dsn = pgtest.Start(t).NewDB(t)
	withEP := func(o *vault.Options) { o.Refresher = ep }
	a = openInstance(t, dsn, func(o *vault.Options) {
		withEP(o)
		if modA != nil {
			modA(o)
		}
	})
	u, err := a.v.CreateUser("alice@example.com", "Alice")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.v.PutTokens(u.ID, bundle("rt-0", time.Now().Add(-time.Minute))); err != nil {
		t.Fatal(err)
	}
	b = openInstance(t, dsn, withEP)
	return dsn, a, b, u.ID
}

// TestOneRefreshAcrossInstances: many callers on two instances want a
// fresh token for the same expired login at once; the token endpoint sees
// exactly one refresh and everyone gets its result.
func TestOneRefreshAcrossInstances(t *testing.T) {
	ep := newEndpoint("rt-0")
	ep.delay = 50 * time.Millisecond // keep the flights overlapping
	_, a, b, user := linkedPair(t, ep, nil)
	const perInstance = 25
	var wg sync.WaitGroup
	start := make(chan struct{})
	tokens := make(chan string, 2*perInstance)
	errs := make(chan error, 2*perInstance)
	for _, inst := range []instance{a, b} {
		for range perInstance {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				tok, _, err := inst.v.AccessToken(context.Background(), user, false)
				if err != nil {
					errs <- err
					return
				}
				tokens <- tok
			}()
		}
	}
	close(start)
	wg.Wait()
	close(tokens)
	close(errs)
	for err := range errs {
		t.Fatalf("AccessToken: %v", err)
	}
	if n := ep.calls.Load(); n != 1 {
		t.Fatalf("token endpoint called %d times, want 1", n)
	}
	for tok := range tokens {
		if !strings.HasSuffix(tok, "-1") {
			t.Fatalf("a caller got a token other than the one refresh's")
		}
	}
	if n := ep.reused(); n != 0 {
		t.Fatalf("a spent refresh token was presented %d times", n)
	}
}

// TestRefreshLockEndsWithHolder: A takes the refresh lock and hangs in
// the token endpoint; its lock connection dies (as when its host is cut
// off). B, waiting for the lock, gets it from PostgreSQL, refreshes and
// serves; no refresh token is presented twice.
func TestRefreshLockEndsWithHolder(t *testing.T) {
	ep := newEndpoint("rt-0")
	ep.hold, ep.holdCalls = make(chan struct{}), 1
	ep.entered = make(chan string, 4)
	dsn, a, b, user := linkedPair(t, ep, func(o *vault.Options) { o.RefreshTimeout = 3 * time.Second })
	defer close(ep.hold)
	ctx := context.Background()

	aDone := make(chan string, 1)
	go func() {
		tok, _, err := a.v.AccessToken(ctx, user, false)
		if err != nil {
			tok = "error: " + err.Error()
		}
		aDone <- tok
	}()
	if rt := <-ep.entered; rt != "rt-0" {
		t.Fatalf("A presented %q", rt)
	}
	bDone := make(chan string, 1)
	go func() {
		tok, _, err := b.v.AccessToken(ctx, user, false)
		if err != nil {
			tok = "error: " + err.Error()
		}
		bDone <- tok
	}()
	select {
	case tok := <-bDone:
		t.Fatalf("B returned %q while A held the refresh lock", tok)
	case <-time.After(300 * time.Millisecond):
	}
	if n := ep.calls.Load(); n != 1 {
		t.Fatalf("token endpoint called %d times while A held the lock", n)
	}

	accts, err := a.v.Accounts(user)
	if err != nil || len(accts) != 1 {
		t.Fatalf("accounts: %v, %v", accts, err)
	}
	terminate(t, dsn, lockHolder(t, dsn, user, accts[0].ID))
	select {
	case tok := <-bDone:
		if !strings.HasSuffix(tok, "-1") {
			t.Fatalf("B got %q, want the token of its own refresh", tok)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("B did not take over the refresh lock of a dead holder")
	}
	// A's call never reached the endpoint and ends with its refresh
	// timeout; by then B's change told A about the new token, which A's
	// caller gets instead of an error. No relink, no second refresh.
	if tok := <-aDone; !strings.HasSuffix(tok, "-1") {
		t.Fatalf("A's caller got %q, want the token B refreshed", tok)
	}
	if tok, _, err := a.v.AccessToken(ctx, user, false); err != nil || !strings.HasSuffix(tok, "-1") {
		t.Fatalf("A afterwards: %q, %v", tok, err)
	}
	if n := ep.calls.Load(); n != 2 {
		t.Fatalf("token endpoint called %d times, want 2 (A's hung one, B's)", n)
	}
	if n := ep.reused(); n != 0 {
		t.Fatalf("a spent refresh token was presented %d times", n)
	}
}

// lockHolder returns the backend holding the account's refresh lock.
func lockHolder(t *testing.T, dsn, userID, accountID string) uint32 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var pid int32
	err = conn.QueryRow(ctx, `SELECT pid FROM pg_locks
WHERE locktype = 'advisory' AND granted AND objsubid = 2 AND classid::bigint = $1 AND objid::bigint = $2`,
		int64(uint32(lockClassRefresh)), int64(uint32(refreshKey(userID, accountID)))).Scan(&pid)
	if err != nil {
		t.Fatalf("finding the refresh lock's holder: %v", err)
	}
	return uint32(pid)
}

// TestSignUpRaceAcrossInstances: the same new email signs up on two
// instances at once (one person's two sign-in links, or a double click
// behind a load balancer). One insert wins; the other instance's
// CreateUser says ErrEmailTaken and its UserByEmail then has the winner at
// once, as the dashboard's sign-in and `user add` read it, instead of a
// 500 until the change notification arrives.
func TestSignUpRaceAcrossInstances(t *testing.T) {
	dsn := pgtest.Start(t).NewDB(t)
	a := openInstance(t, dsn, nil)
	b := openInstance(t, dsn, nil)
	for i := range 20 {
		email := "racer" + strings.Repeat("x", i) + "@example.com"
		var wg sync.WaitGroup
		ids := make([]string, 2)
		errs := make([]error, 2)
		for j, inst := range []instance{a, b} {
			wg.Go(func() {
				u, err := inst.v.CreateUser(email, "")
				if errors.Is(err, vault.ErrEmailTaken) {
					u, err = inst.v.UserByEmail(email)
				}
				ids[j], errs[j] = u.ID, err
			})
		}
		wg.Wait()
		if errs[0] != nil || errs[1] != nil || ids[0] == "" || ids[0] != ids[1] {
			t.Fatalf("race %d: users %q, errors %v", i, ids, errs)
		}
	}
}
