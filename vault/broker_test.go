package vault

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// linkedVault is a vault with one user whose tokens expire at exp, and a
// rotating refresher that accepts the stored refresh token "rt-0".
func linkedVault(t *testing.T, exp time.Duration, mod func(*Options)) (*Vault, string, User, *rotatingRefresher, *fakeClock) {
	t.Helper()
	clock := newClock()
	rr := newRotating(clock, "rt-0")
	opts := testOptions(clock)
	opts.Refresher = rr
	if mod != nil {
		mod(&opts)
	}
	path := t.TempDir() + "/vault.db"
	v := openAt(t, path, opts)
	u := mustUser(t, v, "alice@example.com")
	if err := v.PutTokens(u.ID, bundle("rt-0", t0.Add(exp))); err != nil {
		t.Fatal(err)
	}
	return v, path, u, rr, clock
}

func TestAccessTokenFreshness(t *testing.T) {
	for _, tc := range []struct {
		name        string
		exp         time.Duration // access token expiry relative to now
		noJWT       bool          // opaque access token: fall back to last_refresh
		lastRefresh time.Duration // relative to now, with noJWT
		wantRefresh bool
	}{
		{name: "fresh", exp: time.Hour},
		{name: "inside skew", exp: 4 * time.Minute, wantRefresh: true},
		{name: "just outside skew", exp: 6 * time.Minute},
		{name: "expired", exp: -time.Minute, wantRefresh: true},
		{name: "no exp, refreshed 7 days ago", noJWT: true, lastRefresh: -7 * 24 * time.Hour},
		{name: "no exp, refreshed 9 days ago", noJWT: true, lastRefresh: -9 * 24 * time.Hour, wantRefresh: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, _, u, rr, _ := linkedVault(t, time.Hour, nil)
			b := bundle("rt-0", t0.Add(tc.exp))
			if tc.noJWT {
				b.AccessToken, b.IDToken, b.AccountID = "opaque-access-token", "", "acc-1"
				b.LastRefresh = t0.Add(tc.lastRefresh)
			}
			if err := v.PutTokens(u.ID, b); err != nil {
				t.Fatal(err)
			}
			tok, acc, err := v.AccessToken(context.Background(), u.ID, false)
			if err != nil {
				t.Fatal(err)
			}
			if acc != "acc-1" {
				t.Errorf("account = %q", acc)
			}
			refreshed := rr.calls.Load() == 1
			if refreshed != tc.wantRefresh {
				t.Fatalf("refreshed = %v, want %v", refreshed, tc.wantRefresh)
			}
			if refreshed == (tok == b.AccessToken) {
				t.Fatalf("token changed = %v, refreshed = %v", tok != b.AccessToken, refreshed)
			}
		})
	}
}

func TestAccessTokenConcurrentCallersShareOneRefresh(t *testing.T) {
	v, path, u, rr, clock := linkedVault(t, -time.Minute, nil)
	rr.delay = 50 * time.Millisecond
	const n = 100
	var wg sync.WaitGroup
	tokens := make([]string, n)
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			tokens[i], _, errs[i] = v.AccessToken(context.Background(), u.ID, false)
		}()
	}
	close(start)
	wg.Wait()
	if c := rr.calls.Load(); c != 1 {
		t.Fatalf("refresher called %d times, want 1", c)
	}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if tokens[i] != tokens[0] || !strings.HasSuffix(tokens[i], "-1") {
			t.Fatalf("caller %d got a different or old token", i)
		}
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	// The rotated refresh token is what the file holds, and it still works.
	opts := testOptions(clock)
	opts.Refresher = rr
	v2 := openAt(t, path, opts)
	got := storedBundle(t, v2, u.ID)
	if got.RefreshToken != "rt-1" || !rr.isValid(got.RefreshToken) {
		t.Fatalf("stored refresh token = %q (valid %v), want rt-1", got.RefreshToken, rr.isValid(got.RefreshToken))
	}
	if got.Version != 2 || got.PlanType != "pro" || !got.LastRefresh.Equal(clock.Now()) {
		t.Fatalf("stored metadata not updated: %v", got)
	}
	clock.Advance(2 * time.Hour)
	if _, _, err := v2.AccessToken(context.Background(), u.ID, false); err != nil {
		t.Fatalf("refresh with the stored token after reopen: %v", err)
	}
}

func TestForcedRefresh(t *testing.T) {
	v, _, u, rr, _ := linkedVault(t, time.Hour, nil)
	ctx := context.Background()
	st := v.tokenStateOf(first(t, v, u.ID))
	seen := st.cur.Load()
	tok, _, err := v.AccessToken(ctx, u.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	if rr.calls.Load() != 1 || tok == seen.b.AccessToken {
		t.Fatalf("force did not refresh a fresh token (calls %d)", rr.calls.Load())
	}
	// A caller whose 401 was for the token that was just replaced gets the
	// new one instead of refreshing again.
	f, cb, err := v.joinRefresh(ctx, st, seen)
	if err != nil || f != nil || cb == nil || cb.b.AccessToken != tok {
		t.Fatalf("joinRefresh for a replaced token: flight %v, bundle %v, err %v", f != nil, cb != nil, err)
	}
	if rr.calls.Load() != 1 {
		t.Fatalf("refresher called %d times, want 1", rr.calls.Load())
	}
}

func TestRefreshWithoutNewRefreshTokenKeepsOld(t *testing.T) {
	clock := newClock()
	ref := refresherFunc(func(ctx context.Context, rt string) (RefreshedTokens, error) {
		return RefreshedTokens{AccessToken: "opaque-new-access", ExpiresIn: time.Hour}, nil
	})
	v, _, _ := newTestVault(t, func(o *Options) { o.Now = clock.Now; o.Refresher = ref })
	u := mustUser(t, v, "a@example.com")
	if err := v.PutTokens(u.ID, bundle("rt-0", t0.Add(-time.Minute))); err != nil {
		t.Fatal(err)
	}
	tok, acc, err := v.AccessToken(context.Background(), u.ID, false)
	if err != nil || tok != "opaque-new-access" || acc != "acc-1" {
		t.Fatalf("got %q %q %v", tok, acc, err)
	}
	got := storedBundle(t, v, u.ID)
	if got.RefreshToken != "rt-0" || !got.Expiry.Equal(t0.Add(time.Hour)) {
		t.Fatalf("stored refresh token %q expiry %v", got.RefreshToken, got.Expiry)
	}
}

// refresherFunc adapts a function to Refresher.
type refresherFunc func(ctx context.Context, rt string) (RefreshedTokens, error)

func (f refresherFunc) Refresh(ctx context.Context, rt string) (RefreshedTokens, error) {
	return f(ctx, rt)
}

func TestPermanentFailureNeedsRelink(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"reused", &permanentErr{"refresh_token_reused"}},
		{"wrapped", fmt.Errorf("codex: refresh: %w", &permanentErr{"refresh_token_invalidated"})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, path, u, rr, clock := linkedVault(t, -time.Minute, nil)
			rr.failures = []error{tc.err}
			_, _, err := v.AccessToken(context.Background(), u.ID, false)
			wantErr(t, err, ErrRelinkNeeded)
			var p *permanentErr
			if !errors.As(err, &p) {
				t.Errorf("the refresher's error is not wrapped: %v", err)
			}
			if !strings.Contains(err.Error(), "re-link their ChatGPT account") {
				t.Errorf("message does not tell what to do: %v", err)
			}
			if rr.calls.Load() != 1 {
				t.Fatalf("permanent error retried: %d calls", rr.calls.Load())
			}
			info, err := v.TokenInfo(u.ID)
			if err != nil || !info.RelinkNeeded || !strings.Contains(info.RelinkReason, "refresh_token_") {
				t.Fatalf("relink not persisted: %+v %v", info, err)
			}
			// Fails fast, forced or not, also after a restart.
			for _, force := range []bool{false, true} {
				_, _, err = v.AccessToken(context.Background(), u.ID, force)
				wantErr(t, err, ErrRelinkNeeded)
			}
			v.Close()
			opts := testOptions(clock)
			opts.Refresher = rr
			v2 := openAt(t, path, opts)
			_, _, err = v2.AccessToken(context.Background(), u.ID, true)
			wantErr(t, err, ErrRelinkNeeded)
			if rr.calls.Load() != 1 {
				t.Fatalf("refresher called again after relink: %d calls", rr.calls.Load())
			}
			// Linking again clears it.
			rr.valid["rt-new"] = true
			if err := v2.PutTokens(u.ID, bundle("rt-new", t0.Add(time.Hour))); err != nil {
				t.Fatal(err)
			}
			if _, _, err := v2.AccessToken(context.Background(), u.ID, false); err != nil {
				t.Fatalf("after re-link: %v", err)
			}
		})
	}
}

func TestTransientFailureRetries(t *testing.T) {
	t.Run("recovers", func(t *testing.T) {
		var slept []time.Duration
		v, _, u, rr, _ := linkedVault(t, -time.Minute, func(o *Options) {
			o.Sleep = func(ctx context.Context, d time.Duration) error { slept = append(slept, d); return nil }
		})
		rr.failures = []error{&transientErr{503}, errors.New("connection reset")}
		tok, _, err := v.AccessToken(context.Background(), u.ID, false)
		if err != nil || !strings.HasSuffix(tok, "-1") {
			t.Fatalf("got %q, %v", tok, err)
		}
		if rr.calls.Load() != 3 || fmt.Sprint(slept) != "[1s 2s]" {
			t.Fatalf("calls %d, back-off %v; want 3 calls, [1s 2s]", rr.calls.Load(), slept)
		}
	})
	t.Run("gives up keeping the old token", func(t *testing.T) {
		v, _, u, rr, _ := linkedVault(t, -time.Minute, nil)
		rr.failures = []error{&transientErr{502}, &transientErr{503}, &transientErr{500}, &transientErr{500}}
		before := storedBundle(t, v, u.ID)
		_, _, err := v.AccessToken(context.Background(), u.ID, false)
		wantErr(t, err, ErrRefreshUnavailable)
		var te *transientErr
		if !errors.As(err, &te) || te.status != 500 {
			t.Fatalf("last cause not wrapped: %v", err)
		}
		if rr.calls.Load() != 3 {
			t.Fatalf("calls = %d, want 3", rr.calls.Load())
		}
		after := storedBundle(t, v, u.ID)
		if after.RefreshToken != "rt-0" || after.Version != before.Version || after.RelinkNeeded {
			t.Fatalf("stored bundle changed: %v", after)
		}
		// The next call tries again and the kept token still works.
		tok, _, err := v.AccessToken(context.Background(), u.ID, false)
		if err != nil || !strings.HasSuffix(tok, "-1") {
			t.Fatalf("after the outage: %q %v", tok, err)
		}
	})
	t.Run("serves a still valid token", func(t *testing.T) {
		v, _, u, rr, _ := linkedVault(t, 2*time.Minute, nil)
		rr.failures = []error{&transientErr{503}, &transientErr{503}, &transientErr{503}}
		old := v.tokenStateOf(first(t, v, u.ID)).cur.Load().b.AccessToken
		tok, _, err := v.AccessToken(context.Background(), u.ID, false)
		if err != nil || tok != old {
			t.Fatalf("got %v; want the old, still valid token", err)
		}
		// Not when forced: that token was just refused upstream.
		rr.failures = []error{&transientErr{503}, &transientErr{503}, &transientErr{503}}
		_, _, err = v.AccessToken(context.Background(), u.ID, true)
		wantErr(t, err, ErrRefreshUnavailable)
	})
}

func TestRefreshErrorsHideTokens(t *testing.T) {
	v, _, u, rr, _ := linkedVault(t, -time.Minute, nil)
	rr.failures = []error{
		errors.New("POST failed for refresh_token=rt-0-secret-value"),
		errors.New("POST failed for refresh_token=rt-0-secret-value"),
		errors.New("POST failed for refresh_token=rt-0-secret-value"),
	}
	if err := v.PutTokens(u.ID, bundle("rt-0-secret-value", t0.Add(-time.Minute))); err != nil {
		t.Fatal(err)
	}
	_, _, err := v.AccessToken(context.Background(), u.ID, false)
	if err == nil || strings.Contains(err.Error(), "rt-0-secret-value") {
		t.Fatalf("error leaks the refresh token: %v", err)
	}
}

func TestRereadBeforeRefresh(t *testing.T) {
	t.Run("fresh tokens on disk: no network", func(t *testing.T) {
		v, _, u, rr, _ := linkedVault(t, -time.Minute, nil)
		// Another writer rotated the bundle behind the cache's back.
		other := bundle("rt-other", t0.Add(time.Hour))
		other.AccessToken = accessJWT("acc-1", t0.Add(time.Hour)) + "-other"
		writeBehindCache(t, v, u.ID, other, 2)
		tok, _, err := v.AccessToken(context.Background(), u.ID, false)
		if err != nil || tok != other.AccessToken {
			t.Fatalf("got %v, want the token written by the other writer", err)
		}
		if rr.calls.Load() != 0 {
			t.Fatalf("refresher called %d times", rr.calls.Load())
		}
		// And it is cached now: no disk read either.
		if v.tokenStateOf(first(t, v, u.ID)).cur.Load().b.RefreshToken != "rt-other" {
			t.Fatal("cache not updated")
		}
	})
	t.Run("stale tokens on disk: refresh with the stored refresh token", func(t *testing.T) {
		v, _, u, rr, _ := linkedVault(t, -time.Minute, nil)
		writeBehindCache(t, v, u.ID, bundle("rt-other", t0.Add(-time.Minute)), 2)
		rr.valid = map[string]bool{"rt-other": true} // rt-0 was spent by the other writer
		if _, _, err := v.AccessToken(context.Background(), u.ID, false); err != nil {
			t.Fatal(err)
		}
		if got := storedBundle(t, v, u.ID); got.RefreshToken != "rt-1" || got.Version != 3 {
			t.Fatalf("stored %q version %d", got.RefreshToken, got.Version)
		}
	})
}

// writeBehindCache stores b as version for user directly in the file, the
// way another process would.
func writeBehindCache(t *testing.T, v *Vault, userID string, b TokenBundle, version uint64) {
	t.Helper()
	b = withClaims(b, false)
	b.Version = version
	ref := first(t, v, userID)
	rec, err := v.sealBundle(ref, b)
	if err != nil {
		t.Fatal(err)
	}
	err = boltOf(v).DB().Update(func(tx *bbolt.Tx) error {
		return putJSON(tx.Bucket(bucketTokens), accountKey(ref.UserID, ref.ID), rec)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCancelledCallerKeepsRotatedToken(t *testing.T) {
	v, path, u, rr, clock := linkedVault(t, -time.Minute, nil)
	rr.gate = make(chan struct{})
	rr.entered = make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, _, err := v.AccessToken(ctx, u.ID, false)
		done <- err
	}()
	<-rr.entered // the refresh is at the token endpoint
	cancel()
	wantErr(t, <-done, context.Canceled)
	close(rr.gate) // the endpoint answers after the caller left
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if rr.ctxErr != nil {
		t.Fatalf("refresh context was cancelled with the caller: %v", rr.ctxErr)
	}
	opts := testOptions(clock)
	opts.Refresher = rr
	v2 := openAt(t, path, opts)
	if got := storedBundle(t, v2, u.ID); got.RefreshToken != "rt-1" || !rr.isValid("rt-1") {
		t.Fatalf("rotated refresh token lost: stored %q", got.RefreshToken)
	}
}

func TestPutTokensDuringRefreshWins(t *testing.T) {
	v, _, u, rr, _ := linkedVault(t, -time.Minute, nil)
	rr.gate = make(chan struct{})
	rr.entered = make(chan struct{}, 1)
	done := make(chan string, 1)
	go func() {
		tok, _, err := v.AccessToken(context.Background(), u.ID, false)
		if err != nil {
			tok = err.Error()
		}
		done <- tok
	}()
	<-rr.entered
	// The user re-links while the old chain is being refreshed.
	relinked := bundle("rt-relinked", t0.Add(time.Hour))
	if err := v.PutTokens(u.ID, relinked); err != nil {
		t.Fatal(err)
	}
	close(rr.gate)
	if tok := <-done; tok != relinked.AccessToken {
		t.Fatalf("got %q, want the re-linked token", tok)
	}
	if got := storedBundle(t, v, u.ID); got.RefreshToken != "rt-relinked" {
		t.Fatalf("refresh overwrote the new link: stored %q", got.RefreshToken)
	}
}

func TestAccessTokenErrors(t *testing.T) {
	v, _, _ := newTestVault(t, nil)
	u := mustUser(t, v, "a@example.com")
	_, _, err := v.AccessToken(context.Background(), u.ID, false)
	wantErr(t, err, ErrNotLinked)
	_, _, err = v.AccessToken(context.Background(), "no-such-user", false)
	wantErr(t, err, ErrNotLinked)
	// Without a refresher a stale token cannot be renewed.
	if err := v.PutTokens(u.ID, bundle("rt-0", t0.Add(-time.Minute))); err != nil {
		t.Fatal(err)
	}
	_, _, err = v.AccessToken(context.Background(), u.ID, false)
	wantErr(t, err, ErrRefreshUnavailable)
}

func TestNewTokenHandedOutOnlyAfterCommit(t *testing.T) {
	v, _, u, _, _ := linkedVault(t, -time.Minute, nil)
	commits := boltOf(v).Commits()
	var during error
	v.testHookAfterRefresh = func() {
		// The token endpoint has answered but nothing is on disk yet: a
		// caller arriving now must wait, not get the new token.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		_, _, during = v.AccessToken(ctx, u.ID, false)
		if boltOf(v).Commits() != commits {
			t.Error("something was committed before the hook")
		}
	}
	v.testHookAfterPersist = func() {
		if got := storedBundle(t, v, u.ID); got.RefreshToken != "rt-1" {
			t.Errorf("after persist the file holds %q", got.RefreshToken)
		}
	}
	if _, _, err := v.AccessToken(context.Background(), u.ID, false); err != nil {
		t.Fatal(err)
	}
	wantErr(t, during, context.DeadlineExceeded)
}

func TestFreshAccessTokenTouchesNothing(t *testing.T) {
	v, _, u, rr, _ := linkedVault(t, time.Hour, nil)
	stats, commits := boltOf(v).DB().Stats(), boltOf(v).Commits()
	for range 100 {
		if _, _, err := v.AccessToken(context.Background(), u.ID, false); err != nil {
			t.Fatal(err)
		}
	}
	if after := boltOf(v).DB().Stats(); after.TxN != stats.TxN || boltOf(v).Commits() != commits || rr.calls.Load() != 0 {
		t.Fatalf("fresh path used the file (%d reads, %d commits) or the refresher (%d)",
			after.TxN-stats.TxN, boltOf(v).Commits()-commits, rr.calls.Load())
	}
}

// TestRefreshWaitsForAnotherInstance: while another instance holds the
// user's refresh lock, this one does not call the token endpoint; once the
// other commits its rotated token and lets go, this one re-reads and uses
// it instead of spending the (now dead) refresh token it had cached.
func TestRefreshWaitsForAnotherInstance(t *testing.T) {
	v, _, u, rr, _ := linkedVault(t, -time.Minute, nil)
	ctx := context.Background()
	unlock, err := v.store.LockRefresh(ctx, u.ID, first(t, v, u.ID).ID) // the other instance
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan string, 1)
	go func() {
		tok, _, err := v.AccessToken(ctx, u.ID, false)
		if err != nil {
			tok = err.Error()
		}
		done <- tok
	}()
	select {
	case tok := <-done:
		t.Fatalf("AccessToken returned %q while another instance was refreshing", tok)
	case <-time.After(50 * time.Millisecond):
	}
	if n := rr.calls.Load(); n != 0 {
		t.Fatalf("token endpoint called %d times under another instance's lock", n)
	}
	// The other instance rotated rt-0 and committed before unlocking.
	rotated := bundle("rt-other", t0.Add(time.Hour))
	rotated.AccessToken += "-other"
	writeBehindCache(t, v, u.ID, rotated, 2)
	rr.valid = map[string]bool{"rt-other": true}
	unlock()
	if tok := <-done; tok != rotated.AccessToken {
		t.Fatalf("got %q, want the other instance's token", tok)
	}
	if n := rr.calls.Load(); n != 0 {
		t.Fatalf("token endpoint called %d times; the stored token was fresh", n)
	}
}

// TestRefreshUsesAnotherInstancesChange: the other instance's change
// notification reaches the cache while this instance waits for the
// refresh lock. Once it gets the lock, the store and the cache agree on
// the other's fresh token: it must use it, not refresh again.
func TestRefreshUsesAnotherInstancesChange(t *testing.T) {
	v, _, u, rr, _ := linkedVault(t, -time.Minute, nil)
	ctx := context.Background()
	unlock, err := v.store.LockRefresh(ctx, u.ID, first(t, v, u.ID).ID) // the other instance
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan string, 1)
	go func() {
		tok, _, err := v.AccessToken(ctx, u.ID, false)
		if err != nil {
			tok = err.Error()
		}
		done <- tok
	}()
	time.Sleep(50 * time.Millisecond) // the flight is waiting for the lock
	rotated := bundle("rt-other", t0.Add(time.Hour))
	rotated.AccessToken += "-other"
	writeBehindCache(t, v, u.ID, rotated, 2)
	rr.valid = map[string]bool{"rt-other": true}
	if err := v.applyChange(ctx, Change{Kind: ChangeTokens, UserID: u.ID}); err != nil {
		t.Fatal(err)
	}
	unlock()
	if tok := <-done; tok != rotated.AccessToken {
		t.Fatalf("got %q, want the other instance's token", tok)
	}
	if n := rr.calls.Load(); n != 0 {
		t.Fatalf("token endpoint called %d times; the other instance had just refreshed", n)
	}
}
