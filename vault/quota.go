package vault

import (
	"context"
	"sync"
	"time"
)

// QuotaSnapshot is a user's latest ChatGPT rate limits as the upstream
// reported them (x-codex-* response headers), and when they were seen.
// The vault keeps it as data; the codex package parses it.
type QuotaSnapshot struct {
	PlanType    string `json:"plan_type,omitempty"`
	ActiveLimit string `json:"active_limit,omitempty"`
	// Primary is the short window, Secondary the long one; nil if absent.
	Primary   *QuotaWindow  `json:"primary,omitempty"`
	Secondary *QuotaWindow  `json:"secondary,omitempty"`
	Credits   *QuotaCredits `json:"credits,omitempty"`
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
	return q
}

// quotaCache holds the latest snapshot per user and which ones changed
// since the last write.
type quotaCache struct {
	mu    sync.Mutex
	snaps map[string]QuotaSnapshot
	dirty map[string]bool
}

// drop forgets a user's snapshot (the user was deleted).
func (c *quotaCache) drop(userID string) {
	c.mu.Lock()
	delete(c.snaps, userID)
	delete(c.dirty, userID)
	c.mu.Unlock()
}

// RecordQuota remembers the user's latest rate limits. It only updates
// memory, so it can run on every response; the background writer stores
// changed snapshots every QuotaFlushInterval (all users in one write) and
// at Close. A snapshot older than the one held is ignored; a zero Seen
// means now.
func (v *Vault) RecordQuota(userID string, q QuotaSnapshot) {
	if userID == "" {
		return
	}
	if q.Seen.IsZero() {
		q.Seen = v.now()
	}
	q = q.clone()
	q.Seen = q.Seen.UTC()
	c := &v.quotas
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.snaps[userID]; ok && old.Seen.After(q.Seen) {
		return
	}
	if c.snaps == nil {
		c.snaps, c.dirty = map[string]QuotaSnapshot{}, map[string]bool{}
	}
	c.snaps[userID] = q
	c.dirty[userID] = true
}

// Quota returns the user's latest rate-limit snapshot (kept across
// restarts), or ErrNotFound if the upstream has not reported one yet.
func (v *Vault) Quota(userID string) (QuotaSnapshot, error) {
	c := &v.quotas
	c.mu.Lock()
	q, ok := c.snaps[userID]
	c.mu.Unlock()
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
	batch := make(map[string]QuotaSnapshot, len(c.dirty))
	for id := range c.dirty {
		batch[id] = c.snaps[id].clone()
	}
	clear(c.dirty)
	c.mu.Unlock()
	if err := v.store.PutQuotas(context.Background(), batch); err != nil {
		c.mu.Lock()
		for id := range batch {
			if _, ok := c.snaps[id]; ok {
				c.dirty[id] = true // try again next tick
			}
		}
		c.mu.Unlock()
		v.logWarn("vault: writing quota snapshots failed", "users", len(batch), "error", err)
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
	c.snaps, c.dirty = make(map[string]QuotaSnapshot, len(all)), map[string]bool{}
	for id, q := range all {
		c.snaps[id] = q
	}
	return nil
}
