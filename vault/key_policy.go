package vault

import (
	"context"
	"fmt"
	"time"

	"github.com/usemysub/caddy-codex-proxy/keypolicy"
)

// Per-key policies: the policy is part of the key record (Key.Policy);
// the counters that enforce it live in memory in a keypolicy.Tracker the
// Vault feeds from LogRequest and rebuilds from the request log at start,
// so a restart does not reset a day's budget. Request rates and
// concurrency are per process. Token usage is per process on a store of
// its own, and the total of every instance on a KeyUsageStore (PostgreSQL):
// see key_usage.go.

// rebuildPage is how many request-log records one rebuild read takes.
const rebuildPage = 1000

// GetKey returns one of the user's keys, revoked ones included, or
// ErrNotFound.
func (v *Vault) GetKey(userID, keyID string) (Key, error) {
	rec, err := v.store.GetKey(context.Background(), keyID)
	if err != nil {
		return Key{}, err
	}
	if rec.UserID != userID {
		return Key{}, ErrNotFound
	}
	k := rec.Key
	v.mu.RLock()
	if e, ok := v.keysByID[keyID]; ok {
		k.LastUsed = maxTime(k.LastUsed, unixNano(e.lastUsed.Load()))
	}
	v.mu.RUnlock()
	return k, nil
}

// UpdateKeyPolicy replaces the policy of one of the user's active keys and
// returns the key. The policy must be valid (keypolicy.Policy.Validate);
// when it returns, requests with the key are checked against it. Revoked
// and unknown keys, and other users' keys, fail with ErrNotFound.
func (v *Vault) UpdateKeyPolicy(userID, keyID string, p keypolicy.Policy) (Key, error) {
	if err := p.Validate(v.now()); err != nil {
		return Key{}, err
	}
	p = p.Clone()
	v.lockCaches()
	defer v.mu.Unlock()
	e, ok := v.keysByID[keyID]
	if !ok || e.key.UserID != userID {
		return Key{}, fmt.Errorf("%w: no active key %s", ErrNotFound, keyID)
	}
	if err := v.store.UpdateKeyPolicy(context.Background(), userID, keyID, p); err != nil {
		return Key{}, err
	}
	k := e.key
	k.Policy = p
	v.replaceKeyLocked(e, k)
	k.LastUsed = unixNano(e.lastUsed.Load())
	return k, nil
}

// ResetKeyUsage sets the counters of one of the user's active keys back
// to zero (requests in progress stay in progress) and stores the reset
// point, so a restart rebuilding from the request log does not count the
// requests before it again.
func (v *Vault) ResetKeyUsage(userID, keyID string) error {
	// No read of the stored usage may straddle the reset.
	v.usageMu.Lock()
	defer v.usageMu.Unlock()
	at := v.now().UTC()
	v.lockCaches()
	defer v.mu.Unlock()
	e, ok := v.keysByID[keyID]
	if !ok || e.key.UserID != userID {
		return fmt.Errorf("%w: no active key %s", ErrNotFound, keyID)
	}
	if err := v.store.ResetKeyUsage(context.Background(), userID, keyID, at); err != nil {
		return err
	}
	k := e.key
	k.UsageReset = at
	v.replaceKeyLocked(e, k)
	v.usage.Reset(keyID, at)
	return nil
}

// AdmitKey decides whether a request with k may start now (budgets,
// request rate, concurrency; expiry and models are the caller's checks,
// see keypolicy.CheckExpiry and CheckModel). When admitted, release must
// be called once the request ends. Memory only: no store access.
func (v *Vault) AdmitKey(k Key) (release func(), refused *keypolicy.Refusal) {
	return v.usage.Admit(k.ID, k.Policy)
}

// AdmitKeyHold is AdmitKey with a reservation of reserve tokens against
// k's budgets while the request runs (keypolicy.Hold). The caller records
// the request (LogRequest) and then releases the hold. Memory only.
func (v *Vault) AdmitKeyHold(k Key, reserve int64) (*keypolicy.Hold, *keypolicy.Refusal) {
	return v.usage.AdmitHold(k.ID, k.Policy, reserve)
}

// AdmitKeyRate decides whether a request with k that costs no tokens may
// run now: the request rate only (keypolicy.Tracker.AdmitRate). Memory
// only.
func (v *Vault) AdmitKeyRate(k Key) *keypolicy.Refusal {
	return v.usage.AdmitRate(k.ID, k.Policy)
}

// KeyStatus returns k's counters against its policy now.
func (v *Vault) KeyStatus(k Key) keypolicy.Status {
	return v.usage.Status(k.ID, k.Policy)
}

// replaceKeyLocked swaps an active key's entry for one holding k, keeping
// its last-used state; v.mu is held. Entries are never changed in place:
// VerifyKey copies e.key after releasing the lock.
func (v *Vault) replaceKeyLocked(e *keyEntry, k Key) {
	n := &keyEntry{key: k, hash: e.hash}
	n.key.LastUsed = time.Time{}
	n.lastUsed.Store(e.lastUsed.Load())
	n.dirty.Store(e.dirty.Load())
	v.keysByHash[e.hash] = n
	v.keysByID[k.ID] = n
}

// refreshKeyLocked brings an active key's entry up to date with a record
// another instance changed (policy, usage reset); v.mu is held.
func (v *Vault) refreshKeyLocked(e *keyEntry, rec KeyRecord) {
	if rec.UsageReset.After(e.key.UsageReset) {
		v.usage.Reset(rec.ID, rec.UsageReset)
	}
	k := rec.Key
	k.LastUsed = time.Time{}
	v.replaceKeyLocked(e, k)
}

// loadKeyUsage rebuilds the key counters from the request log: every
// request since the start of the ISO week (the longest window), after
// each key's reset point. Refused requests are left out.
func (v *Vault) loadKeyUsage(ctx context.Context) error {
	now := v.now()
	since := keypolicy.WeekStart(now)
	if m := now.Add(-time.Minute); m.Before(since) {
		since = m // the first minute of a week: the request rate reaches back
	}
	v.mu.RLock()
	for id, e := range v.keysByID {
		if !e.key.UsageReset.IsZero() {
			v.usage.SetReset(id, e.key.UsageReset)
		}
	}
	v.mu.RUnlock()

	var reqs []keypolicy.Rebuilt
	var before time.Time
	seen := map[string]bool{} // request ids at the page boundary's time
	for {
		recs, err := v.store.RecentLogs(ctx, LogQuery{Before: before, Limit: rebuildPage})
		if err != nil {
			return err
		}
		added := 0
		var oldest time.Time
		for _, r := range recs {
			if r.Time.Before(since) {
				break
			}
			oldest = r.Time
			if seen[r.RequestID+"\x00"+r.Time.String()] {
				continue
			}
			added++
			if r.KeyID == "" || keypolicy.IsRefusalCode(r.ErrorCode) {
				continue
			}
			reqs = append(reqs, keypolicy.Rebuilt{KeyID: r.KeyID, Started: r.Time, Tokens: r.InputTokens + r.OutputTokens, Estimated: r.Estimated})
		}
		if len(recs) < rebuildPage || added == 0 || oldest.IsZero() || len(recs) > 0 && recs[len(recs)-1].Time.Before(since) {
			break
		}
		// Records with the oldest time may continue on the next page: ask
		// again from just after it and skip the ones already counted.
		clear(seen)
		for _, r := range recs {
			if r.Time.Equal(oldest) {
				seen[r.RequestID+"\x00"+r.Time.String()] = true
			}
		}
		before = oldest.Add(time.Microsecond)
	}
	v.usage.Load(reqs)
	// A shared store's totals replace the log's: they count what every
	// instance wrote, past the log's retention.
	return v.reloadKeyUsage(ctx, nil)
}
