package vault

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Refresher exchanges a refresh token at the OAuth token endpoint. The codex
// package implements it; errors for which errors.As finds a
// `Permanent() bool` method returning true mean the refresh token is dead
// and the user must log in again.
type Refresher interface {
	Refresh(ctx context.Context, refreshToken string) (RefreshedTokens, error)
}

// RefreshedTokens is a token endpoint's answer. Every field is optional:
// what is empty keeps its previous value.
type RefreshedTokens struct {
	IDToken      string
	AccessToken  string
	RefreshToken string
	ExpiresIn    time.Duration
}

// String describes the answer without its tokens.
func (r RefreshedTokens) String() string {
	return fmt.Sprintf("RefreshedTokens{IDToken:%s AccessToken:%s RefreshToken:%s ExpiresIn:%s}",
		redacted(r.IDToken), redacted(r.AccessToken), redacted(r.RefreshToken), r.ExpiresIn)
}

// GoString is String, so %#v does not print the tokens either.
func (r RefreshedTokens) GoString() string { return r.String() }

// Refresh policy.
const (
	// refreshAttempts is how often a transient failure is tried in total.
	refreshAttempts = 3
	// staleWithoutExpiry is when a token whose expiry is unknown is
	// refreshed anyway, counted from its last refresh (the official client's
	// fallback).
	staleWithoutExpiry = 8 * 24 * time.Hour
	// maxReasonLen bounds the stored re-link reason.
	maxReasonLen = 300
)

// refreshBackoff is the wait before the 2nd and 3rd attempt.
var refreshBackoff = [refreshAttempts - 1]time.Duration{time.Second, 2 * time.Second}

// tokenState is the broker's per-account state: the decrypted bundle, the
// refresh in flight, if any, and until when the account is known to be at
// its usage limit.
type tokenState struct {
	ref    AccountRef
	cur    atomic.Pointer[cachedBundle] // nil if the stored bundle did not decrypt
	mu     sync.Mutex                   // guards flight
	flight *flight
	// exhausted is the Unix nanoseconds until which the upstream said the
	// account is at its usage limit; 0 if not known to be.
	exhausted atomic.Int64
}

// cachedBundle is a decrypted bundle with its freshness precomputed, so the
// hot path only compares times.
type cachedBundle struct {
	b TokenBundle
	// staleAt is when a refresh is due; zero means now.
	staleAt time.Time
	// expiresAt is when the access token stops working; zero if unknown.
	expiresAt time.Time
}

// flight is one refresh that concurrent callers wait on together.
type flight struct {
	done chan struct{}
	cb   *cachedBundle // set before done closes
	err  error
}

// fresh reports whether the access token can be used without refreshing.
func (c *cachedBundle) fresh(now time.Time) bool {
	return !c.staleAt.IsZero() && now.Before(c.staleAt)
}

// newCached precomputes the freshness of b.
func (v *Vault) newCached(b TokenBundle) *cachedBundle {
	c := &cachedBundle{b: b}
	switch {
	case b.AccessToken == "" || b.RelinkNeeded:
	case !b.Expiry.IsZero():
		c.expiresAt = b.Expiry
		c.staleAt = b.Expiry.Add(-v.opts.RefreshSkew)
	case !b.LastRefresh.IsZero():
		c.staleAt = b.LastRefresh.Add(staleWithoutExpiry)
	}
	return c
}

// store installs c unless a newer version is already cached, and returns
// what is cached afterwards.
func (st *tokenState) store(c *cachedBundle) *cachedBundle {
	for {
		old := st.cur.Load()
		if old != nil && old.b.Version > c.b.Version {
			return old
		}
		if st.cur.CompareAndSwap(old, c) {
			return c
		}
	}
}

// AccessToken returns a usable ChatGPT access token and account id of the
// user's preferred usable account (Route without hints), refreshing it
// when it is stale or when force is set (after the upstream answered 401).
// See AccountToken.
func (v *Vault) AccessToken(ctx context.Context, userID string, force bool) (token, accountID string, err error) {
	r, err := v.Route(userID, RouteHint{})
	if err != nil {
		return "", "", err
	}
	return v.AccountToken(ctx, userID, r.Accounts[0], force)
}

// AccountToken returns a usable ChatGPT access token and ChatGPT account
// id for one of the user's linked accounts, refreshing it when it is stale
// or when force is set (after the upstream answered 401).
//
// Concurrent callers for one account share one refresh. The refresh runs
// detached from ctx with its own timeout, so a caller giving up never loses
// a rotated refresh token; the new refresh token is committed to disk before
// any caller sees the new access token. Errors: ErrNotLinked (no such
// account), ErrRelinkNeeded (fails fast, no refresh attempted),
// ErrAccountsExhausted (the account was marked exhausted: a request routed
// to it before the mark is not sent), ErrRefreshUnavailable (after
// retries), ErrTokenUndecryptable, or ctx's error.
func (v *Vault) AccountToken(ctx context.Context, userID, accountID string, force bool) (token, chatgptAccountID string, err error) {
	st := v.tokenStateOf(AccountRef{UserID: userID, ID: accountID})
	if st == nil {
		return "", "", ErrNotLinked
	}
	if until := st.exhaustedUntil(v.now()); !until.IsZero() {
		return "", "", &ExhaustedError{Until: until}
	}
	seen := st.cur.Load()
	if seen != nil {
		if seen.b.RelinkNeeded {
			return "", "", relinkErr(seen.b.RelinkReason, nil)
		}
		if !force && seen.fresh(v.now()) {
			return seen.b.AccessToken, seen.b.AccountID, nil
		}
	}
	f, cb, err := v.joinRefresh(ctx, st, seen)
	if err != nil {
		return "", "", err
	}
	if f != nil {
		select {
		case <-f.done:
		case <-ctx.Done():
			return "", "", ctx.Err()
		}
		cb, err = f.cb, f.err
	}
	if err != nil {
		// A token endpoint outage should not fail requests while the old
		// access token is still valid: the skew leaves minutes to spare.
		if prev := st.cur.Load(); !force && errors.Is(err, ErrRefreshUnavailable) && prev != nil &&
			!prev.b.RelinkNeeded && v.now().Before(prev.expiresAt) {
			return prev.b.AccessToken, prev.b.AccountID, nil
		}
		return "", "", err
	}
	return cb.b.AccessToken, cb.b.AccountID, nil
}

// joinRefresh returns the account's refresh in flight, starting one if
// needed, or a bundle that became fresh since the caller looked (seen).
func (v *Vault) joinRefresh(ctx context.Context, st *tokenState, seen *cachedBundle) (*flight, *cachedBundle, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.flight != nil {
		return st.flight, nil, nil
	}
	// Someone refreshed between our look and the lock: a forced caller's 401
	// was for the old token, so the new one is what it wants.
	if cur := st.cur.Load(); cur != nil && cur != seen {
		if cur.b.RelinkNeeded {
			return nil, nil, relinkErr(cur.b.RelinkReason, nil)
		}
		if cur.fresh(v.now()) {
			return nil, cur, nil
		}
	}
	v.life.RLock()
	defer v.life.RUnlock()
	if v.closed {
		return nil, nil, ErrClosed
	}
	v.flights.Add(1)
	f := &flight{done: make(chan struct{})}
	st.flight = f
	go func() {
		defer v.flights.Done()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), v.opts.RefreshTimeout)
		defer cancel()
		cb, err := v.refresh(rctx, st, seen)
		f.cb, f.err = cb, err
		st.mu.Lock()
		st.flight = nil
		st.mu.Unlock()
		close(f.done)
	}()
	return f, nil, nil
}

// refresh runs one flight: re-read the store, call the token endpoint with
// retries, commit the result. seen is the bundle the caller found stale.
func (v *Vault) refresh(ctx context.Context, st *tokenState, seen *cachedBundle) (*cachedBundle, error) {
	ref := st.ref
	// The flight already keeps this process to one refresh per account;
	// the store's lock extends that to every instance sharing the database.
	unlock, err := v.store.LockRefresh(ctx, ref.UserID, ref.ID)
	if err != nil {
		return nil, fmt.Errorf("%w: waiting for another refresh of this account: %w", ErrRefreshUnavailable, err)
	}
	defer unlock()
	// Another writer may have rotated the tokens since we cached them; using
	// our stale copy would spend a refresh token that is already used.
	stored, err := v.readBundle(ctx, ref)
	if err != nil {
		return nil, err
	}
	cur := st.cur.Load()
	if cur == nil || stored.Version > cur.b.Version {
		cur = st.store(v.newCached(stored))
	}
	// Newer than what the caller found stale, read here or reported by
	// another instance's change while we waited for the lock: that
	// instance refreshed, so use its result rather than refresh again.
	if seen == nil || cur.b.Version > seen.b.Version {
		if cur.b.RelinkNeeded {
			return nil, relinkErr(cur.b.RelinkReason, nil)
		}
		if cur.fresh(v.now()) {
			return cur, nil
		}
	}
	if v.opts.Refresher == nil {
		return nil, fmt.Errorf("%w: no token refresher is configured", ErrRefreshUnavailable)
	}
	var last error
	for attempt := 0; attempt < refreshAttempts; attempt++ {
		if attempt > 0 {
			if err := v.opts.Sleep(ctx, refreshBackoff[attempt-1]); err != nil {
				break
			}
		}
		got, err := v.opts.Refresher.Refresh(ctx, cur.b.RefreshToken)
		if err == nil {
			return v.commitRefresh(ctx, st, stored, cur.b, got)
		}
		err = scrub(err, cur.b)
		if isPermanent(err) {
			return v.markRelink(ctx, st, stored, cur.b, err)
		}
		last = err
		v.logWarn("vault: ChatGPT token refresh failed", "user_id", ref.UserID, "account", ref.ID, "attempt", attempt+1, "error", err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("%w: %w", ErrRefreshUnavailable, last)
}

// commitRefresh stores the refreshed tokens, replacing stored only if it
// is still what is on disk.
func (v *Vault) commitRefresh(ctx context.Context, st *tokenState, stored, base TokenBundle, got RefreshedTokens) (*cachedBundle, error) {
	ref := st.ref
	if v.testHookAfterRefresh != nil {
		v.testHookAfterRefresh()
	}
	// The old refresh token is spent: this commit must not fail because the
	// refresh used up its time.
	ctx = context.WithoutCancel(ctx)
	now := v.now().UTC()
	nb := base
	if got.IDToken != "" {
		nb.IDToken = got.IDToken
	}
	if got.AccessToken != "" {
		nb.AccessToken = got.AccessToken
		nb.Expiry = time.Time{}
		if got.ExpiresIn > 0 {
			nb.Expiry = now.Add(got.ExpiresIn)
		}
	}
	// No new refresh token means the old one stays valid.
	if got.RefreshToken != "" {
		nb.RefreshToken = got.RefreshToken
	}
	nb = withClaims(nb, true)
	nb.LastRefresh = now
	nb.Version = max(base.Version, stored.Version) + 1
	nb.RelinkNeeded, nb.RelinkReason = false, ""
	ok, err := v.replaceBundle(ctx, ref, stored, &nb)
	if err != nil {
		// Not durable, but keep it in memory: the old refresh token is spent
		// and this one is the only one that still works.
		st.store(v.newCached(nb))
		v.logError("vault: saving the refreshed ChatGPT token failed; it is kept in memory only and lost on restart", "user_id", ref.UserID, "account", ref.ID, "error", err)
		return nil, fmt.Errorf("vault: saving the refreshed ChatGPT token: %w", err)
	}
	if !ok {
		v.logInfo("vault: tokens changed during refresh; keeping the stored ones", "user_id", ref.UserID, "account", ref.ID)
		return v.adoptStored(ctx, st)
	}
	if v.testHookAfterPersist != nil {
		v.testHookAfterPersist()
	}
	return st.store(v.newCached(nb)), nil
}

// markRelink records that the user must log in again, so later calls fail
// fast without touching the token endpoint.
func (v *Vault) markRelink(ctx context.Context, st *tokenState, stored, base TokenBundle, cause error) (*cachedBundle, error) {
	ref := st.ref
	reason := cause.Error()
	if len(reason) > maxReasonLen {
		reason = strings.ToValidUTF8(reason[:maxReasonLen], "")
	}
	ctx = context.WithoutCancel(ctx)
	nb := base
	nb.Version = max(base.Version, stored.Version) + 1
	nb.RelinkNeeded, nb.RelinkReason = true, reason
	ok, err := v.replaceBundle(ctx, ref, stored, &nb)
	if err == nil && !ok {
		// Re-linked meanwhile: the dead token was not the current one.
		return v.adoptStored(ctx, st)
	}
	st.store(v.newCached(nb))
	if err != nil {
		v.logError("vault: saving the re-link flag failed", "user_id", ref.UserID, "account", ref.ID, "error", err)
	}
	v.logWarn("vault: ChatGPT refresh token rejected; user must re-link", "user_id", ref.UserID, "account", ref.ID, "reason", reason)
	return nil, relinkErr(reason, cause)
}

// replaceBundle stores nb if the stored bundle is still expected (same
// version and refresh token); ok is false otherwise, or if the account was
// unlinked or the user deleted meanwhile. The account's metadata (label,
// position) is taken from the stored record into nb: a reorder that
// happened during the refresh is kept.
func (v *Vault) replaceBundle(ctx context.Context, ref AccountRef, expected TokenBundle, nb *TokenBundle) (ok bool, err error) {
	err = v.updateTokens(ctx, ref, func(cur *TokenRecord) (*TokenRecord, error) {
		ok = false
		if cur == nil || cur.Version != expected.Version {
			return nil, nil
		}
		// Re-encryption keeps the version: compare the secret itself.
		b, err := v.openRecord(ref, *cur)
		if err != nil || b.RefreshToken != expected.RefreshToken {
			return nil, nil
		}
		ok = true
		nb.Label, nb.Position, nb.Linked = cur.Label, cur.Position, cur.Linked
		return v.sealBundle(ref, *nb)
	})
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return ok && err == nil, err
}

// adoptStored caches what is on disk and returns it if it can be used.
func (v *Vault) adoptStored(ctx context.Context, st *tokenState) (*cachedBundle, error) {
	b, err := v.readBundle(ctx, st.ref)
	if err != nil {
		return nil, err
	}
	cb := st.store(v.newCached(b))
	switch {
	case cb.b.RelinkNeeded:
		return nil, relinkErr(cb.b.RelinkReason, nil)
	case cb.fresh(v.now()):
		return cb, nil
	}
	return nil, fmt.Errorf("%w: the stored tokens changed during the refresh", ErrRefreshUnavailable)
}

// relinkErr is ErrRelinkNeeded with the reason, wrapping the refresher's
// error when there is one.
func relinkErr(reason string, cause error) error {
	if reason == "" {
		reason = "refresh token rejected"
	}
	if cause != nil {
		return fmt.Errorf("%w (reason: %s): %w", ErrRelinkNeeded, reason, cause)
	}
	return fmt.Errorf("%w (reason: %s)", ErrRelinkNeeded, reason)
}

// isPermanent reports whether err says the refresh token is dead.
func isPermanent(err error) bool {
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}

// scrub wraps err so its message cannot leak b's tokens, whatever the
// refresher put in it; errors.Is/As still see the original.
func scrub(err error, b TokenBundle) error {
	msg := err.Error()
	clean := msg
	for _, s := range []string{b.RefreshToken, b.AccessToken, b.IDToken} {
		if len(s) >= 8 {
			clean = strings.ReplaceAll(clean, s, "[redacted]")
		}
	}
	if clean == msg {
		return err
	}
	return &scrubbedError{msg: clean, err: err}
}

// scrubbedError is an error with secrets cut out of its message.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// tokenStateOf returns the account's broker state, or nil if not linked.
func (v *Vault) tokenStateOf(ref AccountRef) *tokenState {
	v.tokMu.RLock()
	st := v.tokens[ref.UserID][ref.ID]
	v.tokMu.RUnlock()
	return st
}

// stateFor returns the account's broker state, creating it.
func (v *Vault) stateFor(ref AccountRef) *tokenState {
	if st := v.tokenStateOf(ref); st != nil {
		return st
	}
	v.tokMu.Lock()
	defer v.tokMu.Unlock()
	m := v.tokens[ref.UserID]
	if m == nil {
		m = map[string]*tokenState{}
		v.tokens[ref.UserID] = m
	}
	st := m[ref.ID]
	if st == nil {
		st = &tokenState{ref: ref}
		m[ref.ID] = st
	}
	return st
}

// userStates returns the broker states of the user's accounts.
func (v *Vault) userStates(userID string) []*tokenState {
	v.tokMu.RLock()
	defer v.tokMu.RUnlock()
	m := v.tokens[userID]
	out := make([]*tokenState, 0, len(m))
	for _, st := range m {
		out = append(out, st)
	}
	return out
}

// dropAccountState forgets an account's cached tokens and quota.
func (v *Vault) dropAccountState(ref AccountRef) {
	v.tokMu.Lock()
	if m := v.tokens[ref.UserID]; m != nil {
		delete(m, ref.ID)
		if len(m) == 0 {
			delete(v.tokens, ref.UserID)
		}
	}
	v.tokMu.Unlock()
	v.quotas.dropAccount(ref)
}

// dropTokenState forgets the cached tokens of all of the user's accounts.
func (v *Vault) dropTokenState(userID string) {
	v.tokMu.Lock()
	delete(v.tokens, userID)
	v.tokMu.Unlock()
}
