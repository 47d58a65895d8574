package vault

import (
	"encoding/binary"
	"errors"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/usemysub/caddy-codex-proxy/claims"
)

// chatgpt is a bundle of ChatGPT account acc (email acc@chatgpt.example),
// fresh for an hour.
func chatgpt(acc string) TokenBundle {
	exp := t0.Add(time.Hour)
	c := claims.Claims{AccountID: acc, PlanType: "plus", Email: acc + "@chatgpt.example", Expiry: exp}
	return TokenBundle{IDToken: claims.Encode(c), AccessToken: claims.Encode(c), RefreshToken: "rt-" + acc, LastRefresh: t0}
}

// addAccount links acc to the user and returns its id.
func addAccount(t *testing.T, v *Vault, userID, acc, label string) string {
	t.Helper()
	b := chatgpt(acc)
	b.Label = label
	a, err := v.AddAccount(userID, b)
	if err != nil {
		t.Fatalf("AddAccount(%s): %v", acc, err)
	}
	return a.ID
}

// ids lists the accounts' ids and their ChatGPT account ids.
func accountsOf(t *testing.T, v *Vault, userID string) (ids, chatgptIDs []string) {
	t.Helper()
	accts, err := v.Accounts(userID)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range accts {
		ids = append(ids, a.ID)
		chatgptIDs = append(chatgptIDs, a.AccountID)
	}
	return ids, chatgptIDs
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestAccountsLinkOrderRemove(t *testing.T) {
	v, path, clock := newTestVault(t, nil)
	u := mustUser(t, v, "ada@example.com")
	if _, err := v.AddAccount("nobody", chatgpt("acc-x")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("AddAccount(unknown user): %v", err)
	}
	personal := addAccount(t, v, u.ID, "acc-personal", "personal")
	work := addAccount(t, v, u.ID, "acc-work", "work")
	if _, cg := accountsOf(t, v, u.ID); !equal(cg, []string{"acc-personal", "acc-work"}) {
		t.Fatalf("order added: %v", cg)
	}
	// Linking the same ChatGPT login again is a re-link, not a third account.
	relinked := chatgpt("acc-work")
	relinked.RefreshToken = "rt-work-2"
	a, err := v.AddAccount(u.ID, relinked)
	if err != nil || a.ID != work || a.Label != "work" || a.Position != 2 {
		t.Fatalf("re-link: %+v, %v", a, err)
	}
	if ids, _ := accountsOf(t, v, u.ID); len(ids) != 2 {
		t.Fatalf("re-link added an account: %v", ids)
	}
	if err := v.SetAccountOrder(u.ID, []string{work}); err != nil {
		t.Fatal(err)
	}
	if err := v.SetAccountOrder(u.ID, []string{"nope"}); !errors.Is(err, ErrNoSuchAccount) {
		t.Fatalf("order with an unknown id: %v", err)
	}
	if err := v.SetAccountOrder(u.ID, []string{work, work}); err == nil {
		t.Fatal("order with a repeated id accepted")
	}
	if err := v.SetAccountLabel(u.ID, personal, "home"); err != nil {
		t.Fatal(err)
	}
	if _, err := v.SetAccountPolicy(u.ID, "round-robin"); err == nil {
		t.Fatal("unknown policy accepted")
	}
	if _, err := v.SetAccountPolicy(u.ID, PolicyMostRemaining); err != nil {
		t.Fatal(err)
	}
	// Everything survives a restart.
	v.Close()
	v = openAt(t, path, testOptions(clock))
	accts, err := v.Accounts(u.ID)
	if err != nil || len(accts) != 2 || accts[0].ID != work || accts[1].ID != personal || accts[1].Label != "home" ||
		accts[0].Position != 1 || accts[1].Position != 2 {
		t.Fatalf("after restart: %+v, %v", accts, err)
	}
	if got, _ := v.User(u.ID); got.AccountPolicy != PolicyMostRemaining {
		t.Fatalf("policy after restart: %q", got.AccountPolicy)
	}
	// The single-account API works on the first account.
	if tok, acc, err := v.AccessToken(t.Context(), u.ID, false); err != nil || acc != "acc-work" || tok == "" {
		t.Fatalf("AccessToken: %q, %v", acc, err)
	}
	if info, err := v.TokenInfo(u.ID); err != nil || info.AccountID != "acc-work" {
		t.Fatalf("TokenInfo: %+v, %v", info, err)
	}
	// PutTokens of a new login replaces the first account, keeping its place.
	if err := v.PutTokens(u.ID, chatgpt("acc-new")); err != nil {
		t.Fatal(err)
	}
	if ids, cg := accountsOf(t, v, u.ID); !equal(ids, []string{work, personal}) || !equal(cg, []string{"acc-new", "acc-personal"}) {
		t.Fatalf("after PutTokens: %v %v", ids, cg)
	}
	if err := v.RemoveAccount(u.ID, work); err != nil {
		t.Fatal(err)
	}
	if err := v.RemoveAccount(u.ID, work); !errors.Is(err, ErrNoSuchAccount) {
		t.Fatalf("removing twice: %v", err)
	}
	if _, acc, err := v.AccessToken(t.Context(), u.ID, false); err != nil || acc != "acc-personal" {
		t.Fatalf("after removing the first: %q, %v", acc, err)
	}
	if err := v.Unlink(u.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := v.AccessToken(t.Context(), u.ID, false); !errors.Is(err, ErrNotLinked) {
		t.Fatalf("after Unlink: %v", err)
	}
}

// TestAccountBinding: a bundle copied to another account of the same user
// does not open.
func TestAccountBinding(t *testing.T) {
	v, path, clock := newTestVault(t, nil)
	u := mustUser(t, v, "ada@example.com")
	a := addAccount(t, v, u.ID, "acc-a", "")
	b := addAccount(t, v, u.ID, "acc-b", "")
	err := boltOf(v).DB().Update(func(tx *bbolt.Tx) error {
		bk := tx.Bucket(bucketTokens)
		return bk.Put(accountKey(u.ID, b), append([]byte(nil), bk.Get(accountKey(u.ID, a))...))
	})
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
	v2 := openAt(t, path, testOptions(clock))
	_, _, err = v2.AccountToken(t.Context(), u.ID, b, false)
	wantErr(t, err, ErrTokenUndecryptable)
	if _, acc, err := v2.AccountToken(t.Context(), u.ID, a, false); err != nil || acc != "acc-a" {
		t.Fatalf("the original: %q, %v", acc, err)
	}
}

// TestUpgradeBoltToAccounts: a schema 2 file (one bundle per user, sealed
// for the user alone) upgrades in place to account 1, keeps working, and
// is re-sealed bound to the account.
func TestUpgradeBoltToAccounts(t *testing.T) {
	v, path, clock := newTestVault(t, nil)
	u := mustUser(t, v, "ada@example.com")
	if err := v.PutTokens(u.ID, bundle("rt-0", t0.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	ref := first(t, v, u.ID)
	v.RecordQuota(u.ID, QuotaSnapshot{PlanType: "plus"})
	rec := tokenRecordOf(t, v, u.ID)
	pt, _, err := v.openSealed(rec.Sealed, ref)
	if err != nil {
		t.Fatal(err)
	}
	// What schema 2 wrote: sealed for the user, stored under the user.
	if rec.Sealed, err = v.keyring.seal(pt, u.ID); err != nil {
		t.Fatal(err)
	}
	rec.Position, rec.Linked = 0, time.Time{}
	v.Close()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		if err := deletePrefix(tx.Bucket(bucketTokens), accountKey(u.ID, "")); err != nil {
			return err
		}
		q := append([]byte(nil), tx.Bucket(bucketQuotas).Get(accountKey(ref.UserID, ref.ID))...)
		if err := deletePrefix(tx.Bucket(bucketQuotas), accountKey(u.ID, "")); err != nil {
			return err
		}
		if err := tx.Bucket(bucketQuotas).Put([]byte(u.ID), q); err != nil {
			return err
		}
		if err := putJSON(tx.Bucket(bucketTokens), []byte(u.ID), rec); err != nil {
			return err
		}
		var buf [8]byte
		binary.BigEndian.PutUint64(buf[:], 2)
		return tx.Bucket(bucketMeta).Put(keySchemaVersion, buf[:])
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	v2 := openAt(t, path, testOptions(clock))
	accts, err := v2.Accounts(u.ID)
	if err != nil || len(accts) != 1 || accts[0].Position != 1 || accts[0].Linked.IsZero() || accts[0].AccountID != "acc-1" {
		t.Fatalf("accounts after the upgrade: %+v, %v", accts, err)
	}
	if tok, _, err := v2.AccessToken(t.Context(), u.ID, false); err != nil || tok == "" {
		t.Fatalf("tokens after the upgrade: %v", err)
	}
	if q, err := v2.Quota(u.ID); err != nil || q.PlanType != "plus" {
		t.Fatalf("quota after the upgrade: %+v, %v", q, err)
	}
	after := tokenRecordOf(t, v2, u.ID)
	if _, legacy, err := v2.openSealed(after.Sealed, AccountRef{UserID: u.ID, ID: accts[0].ID}); err != nil || legacy {
		t.Fatalf("not re-sealed for the account: legacy %v, %v", legacy, err)
	}
}

func TestRoutePolicies(t *testing.T) {
	v, _, clock := newTestVault(t, nil)
	u := mustUser(t, v, "ada@example.com")
	if _, err := v.Route(u.ID, RouteHint{}); !errors.Is(err, ErrNotLinked) {
		t.Fatalf("Route without accounts: %v", err)
	}
	a := addAccount(t, v, u.ID, "acc-a", "")
	b := addAccount(t, v, u.ID, "acc-b", "")
	c := addAccount(t, v, u.ID, "acc-c", "")
	route := func(h RouteHint) []string {
		t.Helper()
		r, err := v.Route(u.ID, h)
		if err != nil {
			t.Fatalf("Route(%+v): %v", h, err)
		}
		return r.Accounts
	}
	if got := route(RouteHint{}); !equal(got, []string{a, b, c}) {
		t.Fatalf("prefer-order: %v", got)
	}
	// most-remaining: by the tighter window; unknown counts as unused.
	v.RecordAccountQuota(u.ID, a, QuotaSnapshot{
		Primary:   &QuotaWindow{UsedPercent: 10, ResetAt: t0.Add(time.Hour)},
		Secondary: &QuotaWindow{UsedPercent: 90, ResetAt: t0.Add(48 * time.Hour)}})
	v.RecordAccountQuota(u.ID, b, QuotaSnapshot{Primary: &QuotaWindow{UsedPercent: 50, ResetAt: t0.Add(time.Hour)}})
	v.RecordAccountQuota(u.ID, c, QuotaSnapshot{Primary: &QuotaWindow{UsedPercent: 99, ResetAt: t0.Add(-time.Minute)}}) // reset since
	if got := route(RouteHint{}); !equal(got, []string{a, b, c}) {
		t.Fatalf("prefer-order ignores quotas: %v", got)
	}
	if _, err := v.SetAccountPolicy(u.ID, PolicyMostRemaining); err != nil {
		t.Fatal(err)
	}
	if got := route(RouteHint{}); !equal(got, []string{c, b, a}) {
		t.Fatalf("most-remaining: %v", got)
	}
	if _, err := v.SetAccountPolicy(u.ID, PolicyPreferOrder); err != nil {
		t.Fatal(err)
	}
	// Affinity: the conversation stays where it was served.
	v.NoteServed(u.ID, "conv-1", c)
	if got := route(RouteHint{Affinity: "conv-1"}); !equal(got, []string{c, a, b}) {
		t.Fatalf("affinity: %v", got)
	}
	if got := route(RouteHint{Affinity: "conv-2"}); !equal(got, []string{a, b, c}) {
		t.Fatalf("another conversation: %v", got)
	}
	// Pin: that account alone.
	if got := route(RouteHint{Pin: b, Affinity: "conv-1"}); !equal(got, []string{b}) {
		t.Fatalf("pin: %v", got)
	}
	if _, err := v.Route(u.ID, RouteHint{Pin: "gone"}); !errors.Is(err, ErrNoSuchAccount) {
		t.Fatalf("pin to a removed account: %v", err)
	}
	// Exhausted accounts are skipped until they reset; affinity yields.
	v.MarkExhausted(u.ID, c, t0.Add(2*time.Hour))
	v.MarkExhausted(u.ID, a, t0.Add(time.Hour))
	if got := route(RouteHint{Affinity: "conv-1"}); !equal(got, []string{b}) {
		t.Fatalf("with a and c exhausted: %v", got)
	}
	if _, _, err := v.AccountToken(t.Context(), u.ID, a, false); !errors.Is(err, ErrAccountsExhausted) {
		t.Fatalf("AccountToken of an exhausted account: %v", err)
	}
	if _, err := v.Route(u.ID, RouteHint{Pin: a}); !errors.Is(err, ErrAccountsExhausted) {
		t.Fatalf("pinned to an exhausted account: %v", err)
	}
	// A re-link-needed account is skipped like an exhausted one.
	st := v.tokenStateOf(AccountRef{UserID: u.ID, ID: b})
	dead := st.cur.Load().b
	dead.RelinkNeeded = true
	st.store(v.newCached(dead))
	_, err := v.Route(u.ID, RouteHint{})
	var ex *ExhaustedError
	if !errors.As(err, &ex) || !ex.Until.Equal(t0.Add(time.Hour)) {
		t.Fatalf("all usable accounts exhausted: %v, want the soonest reset %v", err, t0.Add(time.Hour))
	}
	accts, _ := v.Accounts(u.ID)
	if !accts[0].ExhaustedUntil.Equal(t0.Add(time.Hour)) || !accts[1].ExhaustedUntil.IsZero() {
		t.Fatalf("Accounts' exhaustion: %+v", accts)
	}
	// After the reset, a is back first.
	clock.Advance(time.Hour)
	if got := route(RouteHint{}); !equal(got, []string{a}) {
		t.Fatalf("after a reset: %v", got)
	}
	// Re-linking an exhausted account clears the mark.
	addAccount(t, v, u.ID, "acc-c", "")
	if got := route(RouteHint{}); !equal(got, []string{a, c}) {
		t.Fatalf("after re-linking c: %v", got)
	}
	// Only re-link-needed accounts: Route returns them so that the caller
	// gets ErrRelinkNeeded from AccountToken.
	v2, _, _ := newTestVault(t, nil)
	w := mustUser(t, v2, "w@example.com")
	only := addAccount(t, v2, w.ID, "acc-w", "")
	st = v2.tokenStateOf(AccountRef{UserID: w.ID, ID: only})
	dead = st.cur.Load().b
	dead.RelinkNeeded = true
	st.store(v2.newCached(dead))
	if _, _, err := v2.AccessToken(t.Context(), w.ID, false); !errors.Is(err, ErrRelinkNeeded) {
		t.Fatalf("only a dead account: %v", err)
	}
}

// TestMarkExhaustedConcurrent: once MarkExhausted returns, no Route of any
// goroutine picks the account.
func TestMarkExhaustedConcurrent(t *testing.T) {
	v, _, _ := newTestVault(t, nil)
	u := mustUser(t, v, "ada@example.com")
	a := addAccount(t, v, u.ID, "acc-a", "")
	addAccount(t, v, u.ID, "acc-b", "")
	var marked sync.WaitGroup
	marked.Add(1)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			marked.Wait()
			for range 200 {
				r, err := v.Route(u.ID, RouteHint{})
				if err != nil || r.Accounts[0] == a {
					errs <- "routed to the exhausted account"
					return
				}
			}
		}()
	}
	v.MarkExhausted(u.ID, a, t0.Add(time.Hour))
	marked.Done()
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}
