package vault

import (
	"context"
	"errors"
	"math/rand/v2"
	"reflect"
	"slices"
	"time"
)

// Following other instances. A server engine reports what the other
// instances wrote (Store.Changes); the vault re-reads each record named
// and updates its caches. A re-read can fail (a query timeout under load,
// a connection broken by a database restart), so one that does is kept
// and retried with capped, jittered back-off until it applies, without
// holding up the changes behind it; a later change for the same record
// replaces the pending retry. A full reload (ChangeAll, after the listener
// reconnected) is retried the same way, and a periodic one
// (Options.ResyncInterval) bounds the drift even when a notification was
// lost entirely. Everything runs on the one follower goroutine, so a
// stale read never lands after a fresher one; a local write that
// overlaps a re-read makes it read again (readApply).

// changeSlot names what a pending retry is for: a later change in the
// same slot supersedes it.
type changeSlot struct {
	kind ChangeKind
	// id is the user id (ChangeUser, ChangeTokens), the key id
	// (ChangeKey) or empty (ChangeAll; ChangeKeyUsage, whose keys are
	// merged into one pending change).
	id string
}

// slotOf is the slot of c.
func slotOf(c Change) changeSlot {
	switch c.Kind {
	case ChangeUser, ChangeTokens:
		return changeSlot{c.Kind, c.UserID}
	case ChangeKey:
		return changeSlot{c.Kind, c.KeyID}
	}
	return changeSlot{kind: c.Kind}
}

// pendingChange is a change whose re-read failed, waiting for a retry.
type pendingChange struct {
	c        Change
	attempts int       // failed attempts so far
	since    time.Time // of the first failure
	due      time.Time
}

// maxPendingChanges bounds the retries kept for single records: past it
// (a long outage with many changes) they collapse into one full reload,
// which covers them all for a few queries.
const maxPendingChanges = 256

// follower is the state of followChanges, owned by its goroutine.
type follower struct {
	v       *Vault
	ctx     context.Context // ends when the vault closes
	pending map[changeSlot]*pendingChange
	timer   *time.Timer
}

// followChanges applies what other instances wrote (Store.Changes) to the
// in-memory caches until the channel closes or the vault closes,
// retrying failed re-reads and resyncing every Options.ResyncInterval.
func (v *Vault) followChanges(ch <-chan Change) {
	defer v.bg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := &follower{v: v, ctx: ctx, pending: map[changeSlot]*pendingChange{}, timer: time.NewTimer(time.Hour)}
	f.stopOnClose(cancel)
	f.timer.Stop()
	defer f.timer.Stop()
	var resync <-chan time.Time
	if v.opts.ResyncInterval > 0 {
		t := time.NewTicker(v.opts.ResyncInterval)
		defer t.Stop()
		resync = t.C
	}
	for {
		select {
		case c, ok := <-ch:
			if !ok {
				return
			}
			f.handle(c)
		case <-f.timer.C:
			f.retryDue()
		case <-resync:
			f.handle(Change{Kind: ChangeAll})
		case <-v.stop:
			return
		}
		f.arm()
	}
}

// stopOnClose cancels the follower's reads when the vault closes, so a
// read in flight does not hold up Close for a query timeout.
func (f *follower) stopOnClose(cancel context.CancelFunc) {
	go func() {
		<-f.v.stop
		cancel()
	}()
}

// handle applies a change that just arrived, superseding a pending retry
// for the same record.
func (f *follower) handle(c Change) {
	if c.Kind == 0 {
		return
	}
	slot := slotOf(c)
	prev := f.pending[slot]
	if c.Kind == ChangeKeyUsage {
		// Only the keys named again are superseded.
		if prev != nil {
			if rest := without(prev.c.KeyIDs, c.KeyIDs); len(rest) > 0 {
				left := *prev
				left.c.KeyIDs = rest
				f.pending[slot] = &left
			} else {
				delete(f.pending, slot)
			}
		}
		f.attempt(c, nil, false)
		return
	}
	delete(f.pending, slot)
	f.attempt(c, prev, false)
}

// retryDue retries the pending changes whose time has come. After one
// fails, the database is likely still away: the rest wait as long as it
// does instead of each paying a query timeout now.
func (f *follower) retryDue() {
	now := time.Now()
	var due []*pendingChange
	for _, p := range f.pending {
		if !p.due.After(now) {
			due = append(due, p)
		}
	}
	slices.SortFunc(due, func(a, b *pendingChange) int { return a.due.Compare(b.due) })
	for i, p := range due {
		if f.pending[slotOf(p.c)] != p {
			continue // superseded by a full reload meanwhile
		}
		delete(f.pending, slotOf(p.c))
		if f.attempt(p.c, p, true) {
			continue
		}
		if next := f.pending[slotOf(p.c)]; next != nil {
			for _, q := range due[i+1:] {
				q.due = next.due.Add(rand.N(changeRetryMin))
			}
		}
		return
	}
}

// attempt applies c once and reports whether it worked; if not, it is
// kept for a retry. prev is the pending change c continues, if any.
func (f *follower) attempt(c Change, prev *pendingChange, retry bool) bool {
	v, st := f.v, &f.v.changeStats
	if retry {
		st.retries.Add(1)
	}
	err := v.applyChange(f.ctx, c)
	if f.ctx.Err() != nil {
		return true // closing: nothing to retry
	}
	if err == nil {
		if c.Kind == ChangeAll {
			st.resyncs.Add(1)
			// Everything was re-read after the changes still pending.
			clear(f.pending)
		} else {
			st.applied.Add(1)
		}
		if prev != nil {
			v.logInfo("vault: a change from another instance applied after failed re-reads", changeAttrs(c, "attempts", prev.attempts+1, "stale_for", time.Since(prev.since).Round(time.Millisecond).String())...)
		}
		return true
	}
	if c.Kind == ChangeAll {
		st.resyncsFailed.Add(1)
	} else {
		st.rereadsFailed.Add(1)
	}
	now := time.Now()
	p := &pendingChange{c: c, attempts: 1, since: now}
	if prev != nil {
		p.attempts, p.since = prev.attempts+1, prev.since
	}
	slot := slotOf(c)
	if old := f.pending[slot]; old != nil && c.Kind == ChangeKeyUsage {
		p.c.KeyIDs = append(without(old.c.KeyIDs, c.KeyIDs), c.KeyIDs...)
		p.attempts, p.since = max(p.attempts, old.attempts), minTime(p.since, old.since)
	}
	wait := changeBackoff(p.attempts)
	p.due = now.Add(wait)
	f.pending[slot] = p
	f.logFailure(p, wait, err)
	if c.Kind != ChangeAll && len(f.pending) > maxPendingChanges {
		f.collapse(p)
	}
	return false
}

// collapse replaces every pending change with one full reload, due when
// p is.
func (f *follower) collapse(p *pendingChange) {
	all := &pendingChange{c: Change{Kind: ChangeAll}, attempts: p.attempts, since: p.since, due: p.due}
	for _, q := range f.pending {
		all.since = minTime(all.since, q.since)
	}
	f.v.logWarn("vault: too many changes from other instances wait for a retry; reloading everything instead", "pending", len(f.pending))
	clear(f.pending)
	f.pending[slotOf(all.c)] = all
}

// logFailure reports a failed re-read: at WARN when a change first fails
// and each time its attempts double, at ERROR once it has been stale for
// longer than a resync interval (revocations may not be in effect).
func (f *follower) logFailure(p *pendingChange, wait time.Duration, err error) {
	stale := time.Since(p.since)
	kv := changeAttrs(p.c, "attempt", p.attempts, "retry_in", wait.Round(time.Millisecond).String(), "stale_for", stale.Round(time.Millisecond).String(), "error", err)
	msg := "vault: re-reading a change from another instance failed; retrying"
	if p.c.Kind == ChangeAll {
		msg = "vault: reloading the caches from the database failed; retrying"
	}
	switch {
	case stale > f.v.resyncBound():
		f.v.logError(msg+"; this instance may still accept revoked keys or disabled users", kv...)
	case p.attempts&(p.attempts-1) == 0:
		f.v.logWarn(msg, kv...)
	}
}

// resyncBound is how long a change may stay unapplied before it is
// reported as an error: the resync interval, or two minutes without one.
func (v *Vault) resyncBound() time.Duration {
	if v.opts.ResyncInterval > 0 {
		return v.opts.ResyncInterval
	}
	return DefaultResyncInterval
}

// arm sets the timer for the earliest pending retry and updates the
// pending gauge.
func (f *follower) arm() {
	f.v.changeStats.pending.Store(uint64(len(f.pending)))
	f.timer.Stop()
	var next time.Time
	for _, p := range f.pending {
		if next.IsZero() || p.due.Before(next) {
			next = p.due
		}
	}
	if !next.IsZero() {
		f.timer.Reset(max(time.Until(next), 0))
	}
}

// changeAttrs are the log fields naming c (ids only, never secrets),
// followed by kv.
func changeAttrs(c Change, kv ...any) []any {
	out := []any{"change", c.Kind.String()}
	if c.UserID != "" {
		out = append(out, "user_id", c.UserID)
	}
	if c.KeyID != "" {
		out = append(out, "key_id", c.KeyID)
	}
	if len(c.KeyIDs) > 0 {
		out = append(out, "keys", len(c.KeyIDs))
	}
	return append(out, kv...)
}

// String names the kind for logs.
func (k ChangeKind) String() string {
	switch k {
	case ChangeUser:
		return "user"
	case ChangeKey:
		return "key"
	case ChangeTokens:
		return "tokens"
	case ChangeAll:
		return "all"
	case ChangeKeyUsage:
		return "key_usage"
	}
	return "unknown"
}

// without returns ids minus drop, in order.
func without(ids, drop []string) []string {
	var out []string
	for _, id := range ids {
		if !slices.Contains(drop, id) {
			out = append(out, id)
		}
	}
	return out
}

// minTime returns the earlier of a and b.
func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// lockCaches takes v.mu for a local write to the user and key caches and
// counts it, so that a re-read of another instance's change that started
// before it is read again rather than applied over it.
func (v *Vault) lockCaches() {
	v.mu.Lock()
	v.cacheGen++
}

// errCachesMoved: local writes kept changing the caches while a change was
// re-read; it is retried like a failed read.
var errCachesMoved = errors.New("vault: local writes overlapped re-reading a change")

// staleRereads is how often readApply reads again before it gives up.
const staleRereads = 3

// readApply runs read, then apply with v.mu held, unless a local write
// (lockCaches) came in between: what read got may then be older than
// what that write put in memory (a key revoked here after the read saw it
// active), so it reads again.
func (v *Vault) readApply(ctx context.Context, read func(context.Context) error, apply func()) error {
	for range staleRereads {
		v.mu.RLock()
		gen := v.cacheGen
		v.mu.RUnlock()
		if err := read(ctx); err != nil {
			return err
		}
		v.mu.Lock()
		if v.cacheGen == gen {
			apply()
			v.mu.Unlock()
			return nil
		}
		v.mu.Unlock()
	}
	return errCachesMoved
}

// applyChange re-reads what c names and updates the caches to match.
func (v *Vault) applyChange(ctx context.Context, c Change) error {
	switch c.Kind {
	case ChangeUser:
		return v.reloadUser(ctx, c.UserID)
	case ChangeKey:
		if err := v.reloadKey(ctx, c.KeyID); err != nil {
			return err
		}
		// A usage reset elsewhere cleared the stored totals too.
		return v.reloadKeyUsage(ctx, []string{c.KeyID})
	case ChangeTokens:
		return v.reloadTokens(ctx, c.UserID)
	case ChangeAll:
		if err := v.reloadAll(ctx); err != nil {
			return err
		}
		return v.reloadKeyUsage(ctx, nil)
	case ChangeKeyUsage:
		return v.reloadKeyUsage(ctx, c.KeyIDs)
	}
	return nil
}

// reloadUser re-reads a user and their keys, or forgets a deleted one.
func (v *Vault) reloadUser(ctx context.Context, id string) error {
	var (
		u    User
		keys []KeyRecord
		gone bool
	)
	return v.readApply(ctx, func(ctx context.Context) error {
		var err error
		u, err = v.store.GetUser(ctx, id)
		if gone = errors.Is(err, ErrNotFound); gone {
			return nil
		}
		if err != nil {
			return err
		}
		keys, err = v.store.ListKeys(ctx, id)
		return err
	}, func() {
		if gone {
			v.forgetUserLocked(id)
			return
		}
		if old, ok := v.users[id]; ok && old.Email != u.Email {
			delete(v.emails, old.Email)
		}
		v.users[id] = u
		v.emails[u.Email] = id
		for _, rec := range keys {
			v.applyKeyLocked(rec)
		}
	})
}

// reloadKey re-reads one key: indexed if active, dropped otherwise.
func (v *Vault) reloadKey(ctx context.Context, id string) error {
	var (
		rec  KeyRecord
		gone bool
	)
	return v.readApply(ctx, func(ctx context.Context) error {
		var err error
		rec, err = v.store.GetKey(ctx, id)
		if gone = errors.Is(err, ErrNotFound); gone {
			return nil
		}
		return err
	}, func() {
		if gone {
			v.unindexKeyLocked(id)
			return
		}
		v.applyKeyLocked(rec)
	})
}

// applyKeyLocked makes the index agree with a stored key; v.mu is held.
func (v *Vault) applyKeyLocked(rec KeyRecord) {
	if rec.Disabled {
		v.unindexKeyLocked(rec.ID)
		return
	}
	if e, ok := v.keysByID[rec.ID]; ok {
		if sameKey(e.key, rec.Key) {
			return // a resync of an unchanged key: keep the entry
		}
		// Active here already: take its new policy or reset point, keep
		// its unwritten last-used time.
		v.refreshKeyLocked(e, rec)
		return
	}
	v.indexRecord(rec)
}

// sameKey reports whether a cached key (whose LastUsed is not kept there)
// matches a stored one in everything else.
func sameKey(cached, stored Key) bool {
	stored.LastUsed = time.Time{}
	return reflect.DeepEqual(cached, stored)
}

// unindexKeyLocked drops a key from the index; v.mu is held.
func (v *Vault) unindexKeyLocked(id string) {
	if e, ok := v.keysByID[id]; ok {
		delete(v.keysByHash, e.hash)
		delete(v.keysByID, id)
		v.usage.Forget(id)
	}
}

// reloadTokens re-reads the bundles of all of a user's accounts into the
// broker's cache, dropping accounts removed elsewhere.
func (v *Vault) reloadTokens(ctx context.Context, userID string) error {
	// Only accounts cached before the read can have been removed: one
	// linked here meanwhile is not in what it returns.
	before := v.userStates(userID)
	all, err := v.store.ListUserTokens(ctx, userID)
	if err != nil {
		return err
	}
	for _, st := range before {
		if _, ok := all[st.ref.ID]; !ok {
			v.dropAccountState(st.ref)
		}
	}
	for id, rec := range all {
		v.cacheNewer(AccountRef{UserID: userID, ID: id}, rec)
	}
	return nil
}

// cacheNewer is cacheRecord for a record that may be what is cached
// already: a resync then costs no decryption.
func (v *Vault) cacheNewer(ref AccountRef, rec TokenRecord) {
	if st := v.tokenStateOf(ref); st != nil {
		if cur := st.cur.Load(); cur != nil && cur.b.Version >= rec.Version {
			return
		}
	}
	v.cacheRecord(ref, rec)
}

// reloadAll re-reads users, keys and tokens, for when notifications may
// have been missed, and reconciles the caches with them: entries that
// did not change are kept as they are, with their last-used times and
// usage counters.
func (v *Vault) reloadAll(ctx context.Context) error {
	var (
		users []User
		keys  []KeyRecord
	)
	err := v.readApply(ctx, func(ctx context.Context) error {
		var err error
		if users, err = v.store.ListUsers(ctx); err != nil {
			return err
		}
		keys, err = v.store.ListAllKeys(ctx)
		return err
	}, func() {
		live := make(map[string]bool, len(users))
		for _, u := range users {
			live[u.ID] = true
		}
		for id := range v.users {
			if !live[id] {
				v.forgetUserLocked(id)
			}
		}
		for _, u := range users {
			if old, ok := v.users[u.ID]; ok && old.Email != u.Email {
				delete(v.emails, old.Email)
			}
			v.users[u.ID] = u
			v.emails[u.Email] = u.ID
		}
		active := make(map[string]bool, len(keys))
		for _, rec := range keys {
			if !rec.Disabled {
				active[rec.ID] = true
			}
			v.applyKeyLocked(rec)
		}
		for id := range v.keysByID {
			if !active[id] {
				v.unindexKeyLocked(id)
			}
		}
	})
	if err != nil {
		return err
	}
	// As in reloadTokens: only what was cached before the read can be gone.
	v.tokMu.RLock()
	var before []AccountRef
	for user, m := range v.tokens {
		for id := range m {
			before = append(before, AccountRef{UserID: user, ID: id})
		}
	}
	v.tokMu.RUnlock()
	tokens, err := v.store.ListTokens(ctx)
	if err != nil {
		return err
	}
	for _, ref := range before {
		if !hasRef(tokens, ref) {
			v.dropAccountState(ref)
		}
	}
	for ref, rec := range tokens {
		v.cacheNewer(ref, rec)
	}
	return nil
}

// hasRef reports whether m has ref.
func hasRef(m map[AccountRef]TokenRecord, ref AccountRef) bool {
	_, ok := m[ref]
	return ok
}
