package vault

import (
	"context"
	"sync"
	"time"
)

// QuotaSnapshot is a linked account's latest ChatGPT rate limits as the upstream
// reported them (x-codex-* response headers), and when they were seen.
// The vault keeps it as data; the codex package parses it.
type QuotaSnapshot struct {
	PlanType    string `json:"plan_type,omitempty"`
	ActiveLimit string `json:"active_limit,omitempty"`
	// Primary is the short window, Secondary the long one; nil if absent.
	Primary   *QuotaWindow  `json:"primary,omitempty"`
	Secondary *QuotaWindow  `json:"secondary,omitempty"`
	Credits   *QuotaCredits `json:"credits,omitempty"`
	// Families are the other rate-limit families reported beside codex's
	// own windows (a model's own limit …), by id; nil when none.
	Families []QuotaFamily `json:"families,omitempty"`
	// Seen is when the upstream sent it.
	Seen time.Time `json:"seen"`
}

// QuotaWindow is one usage window of a QuotaSnapshot.
type QuotaWindow struct {
	UsedPercent   float64       `json:"used_percent"`
	WindowMinutes int           `json:"window_minutes"`
	ResetAt       time.Time     `json:"reset_at,omitzero"`
	ResetAfter    time.Duration `json:"reset_after,omitempty"`
}

// QuotaFamily is one rate-limit family of a QuotaSnapshot: its id as the
// headers name it, its display name ("" when not given) and its windows.
type QuotaFamily struct {
	ID        string       `json:"id"`
	Name      string       `json:"name,omitempty"`
	Primary   *QuotaWindow `json:"primary,omitempty"`
	Secondary *QuotaWindow `json:"secondary,omitempty"`
}

// QuotaCredits is the credit state of a QuotaSnapshot.
type QuotaCredits struct {
	HasCredits bool   `json:"has_credits"`
	Unlimited  bool   `json:"unlimited"`
	Balance    string `json:"balance,omitempty"`
}

// clone copies q so the caller's windows are not shared.
func (q QuotaSnapshot) clone() QuotaSnapshot {
	if q.Primary != nil {
		w := *q.Primary
		q.Primary = &w
	}
	if q.Secondary != nil {
		w := *q.Secondary
		q.Secondary = &w
	}
	if q.Credits != nil {
		c := *q.Credits
		q.Credits = &c
	}
	if q.Families != nil {
		fs := make([]QuotaFamily, len(q.Families))
		for i, f := range q.Families {
			if f.Primary != nil {
				w := *f.Primary
				f.Primary = &w
			}
			if f.Secondary != nil {
				w := *f.Secondary
				f.Secondary = &w
			}
			fs[i] = f
		}
		q.Families = fs
	}
	return q
}

// quotaCache holds the latest snapshot per account and which ones changed
// since the last write.
type quotaCache struct {
	mu    sync.Mutex
	snaps map[AccountRef]QuotaSnapshot
	dirty map[AccountRef]bool
}

// drop forgets a user's snapshots (the user was deleted).
func (c *quotaCache) drop(userID string) {
	c.mu.Lock()
	for ref := range c.snaps {
		if ref.UserID == userID {
			delete(c.snaps, ref)
			delete(c.dirty, ref)
		}
	}
	c.mu.Unlock()
}

// dropAccount forgets one account's snapshot (it was removed).
func (c *quotaCache) dropAccount(ref AccountRef) {
	c.mu.Lock()
	delete(c.snaps, ref)
	delete(c.dirty, ref)
	c.mu.Unlock()
}

// get returns an account's snapshot.
func (c *quotaCache) get(ref AccountRef) (QuotaSnapshot, bool) {
	c.mu.Lock()
	q, ok := c.snaps[ref]
	c.mu.Unlock()
	return q, ok
}

// RecordQuota remembers the latest rate limits of the user's preferred
// account; RecordAccountQuota names the account.
func (v *Vault) RecordQuota(userID string, q QuotaSnapshot) {
	if ref, ok := v.preferred(userID); ok {
		v.RecordAccountQuota(ref.UserID, ref.ID, q)
	}
}

// RecordAccountQuota remembers one account's latest rate limits. It only
// updates memory, so it can run on every response; the background writer
// stores changed snapshots every QuotaFlushInterval (all accounts in one
// write) and at Close. A snapshot older than the one held is ignored; a
// zero Seen means now.
func (v *Vault) RecordAccountQuota(userID, accountID string, q QuotaSnapshot) {
	if userID == "" || accountID == "" {
		return
	}
	ref := AccountRef{UserID: userID, ID: accountID}
	if q.Seen.IsZero() {
		q.Seen = v.now()
	}
	q = q.clone()
	q.Seen = q.Seen.UTC()
	c := &v.quotas
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.snaps[ref]; ok && old.Seen.After(q.Seen) {
		return
	}
	if c.snaps == nil {
		c.snaps, c.dirty = map[AccountRef]QuotaSnapshot{}, map[AccountRef]bool{}
	}
	c.snaps[ref] = q
	c.dirty[ref] = true
}

// Quota returns the latest rate-limit snapshot (kept across restarts) of
// the user's preferred account, or ErrNotFound if the upstream has not
// reported one yet.
func (v *Vault) Quota(userID string) (QuotaSnapshot, error) {
	ref, ok := v.preferred(userID)
	if !ok {
		return QuotaSnapshot{}, ErrNotFound
	}
	return v.AccountQuota(ref.UserID, ref.ID)
}

// AccountQuota returns one account's latest rate-limit snapshot, or
// ErrNotFound if the upstream has not reported one yet.
func (v *Vault) AccountQuota(userID, accountID string) (QuotaSnapshot, error) {
	q, ok := v.quotas.get(AccountRef{UserID: userID, ID: accountID})
	if !ok {
		return QuotaSnapshot{}, ErrNotFound
	}
	return q.clone(), nil
}

// flushQuotas writes the snapshots that changed since the last flush.
func (v *Vault) flushQuotas() {
	c := &v.quotas
	c.mu.Lock()
	if len(c.dirty) == 0 {
		c.mu.Unlock()
		return
	}
	batch := make(map[AccountRef]QuotaSnapshot, len(c.dirty))
	for ref := range c.dirty {
		batch[ref] = c.snaps[ref].clone()
	}
	clear(c.dirty)
	c.mu.Unlock()
	if err := v.store.PutQuotas(context.Background(), batch); err != nil {
		c.mu.Lock()
		for ref := range batch {
			if _, ok := c.snaps[ref]; ok {
				c.dirty[ref] = true // try again next tick
			}
		}
		c.mu.Unlock()
		v.logWarn("vault: writing quota snapshots failed", "accounts", len(batch), "error", err)
	}
}

// loadQuotas fills the snapshot cache from the store.
func (v *Vault) loadQuotas(ctx context.Context) error {
	all, err := v.store.ListQuotas(ctx)
	if err != nil {
		return err
	}
	c := &v.quotas
	c.mu.Lock()
	defer c.mu.Unlock()
	c.snaps, c.dirty = make(map[AccountRef]QuotaSnapshot, len(all)), map[AccountRef]bool{}
	for ref, q := range all {
		c.snaps[ref] = q
	}
	return nil
}
