package vault

import (
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// ChangeStats counts how this instance followed the writes of the other
// instances sharing its database (Store.Changes). Every field but Pending
// only grows from zero, so each can be exported as a counter (the names in
// brackets are the suggested Prometheus names); Pending is a gauge. A Vault
// on a store without Changes (bbolt) reports all zeros.
type ChangeStats struct {
	// Applied is how many changes from other instances were applied to the
	// caches, on the first attempt or a retry
	// [codex_vault_changes_applied_total].
	Applied uint64
	// RereadsFailed is how many attempts to re-read what a change names
	// failed: each failed attempt counts, first tries and retries alike
	// [codex_vault_change_rereads_failed_total].
	RereadsFailed uint64
	// Retries is how many re-read attempts were retries of an earlier
	// failed one, full reloads included [codex_vault_change_retries_total].
	Retries uint64
	// Resyncs is how many full reloads completed: after the listener
	// reconnected (ChangeAll) or periodic (Options.ResyncInterval)
	// [codex_vault_resyncs_total].
	Resyncs uint64
	// ResyncsFailed is how many full reload attempts failed; each is
	// retried with back-off [codex_vault_resyncs_failed_total].
	ResyncsFailed uint64
	// Pending is how many changes wait for a retry right now, a full
	// reload counting as one (a gauge) [codex_vault_changes_pending].
	Pending uint64
}

// changeCounters are the live counters behind ChangeStats.
type changeCounters struct {
	applied, rereadsFailed, retries, resyncs, resyncsFailed, pending atomic.Uint64
}

// ChangeStats returns the counters of cluster change handling; see
// ChangeStats. Safe to call at any time, also after Close.
func (v *Vault) ChangeStats() ChangeStats {
	c := &v.changeStats
	return ChangeStats{
		Applied:       c.applied.Load(),
		RereadsFailed: c.rereadsFailed.Load(),
		Retries:       c.retries.Load(),
		Resyncs:       c.resyncs.Load(),
		ResyncsFailed: c.resyncsFailed.Load(),
		Pending:       c.pending.Load(),
	}
}

// Retry back-off for a change whose re-read failed: the n-th retry waits
// a random time in [d/2, d) with d = changeRetryMin·2ⁿ⁻¹ capped at
// changeRetryMax. The first retry comes soon enough that one failed read
// still leaves a revocation within about a second; the cap keeps a long
// outage from costing more than a query per record every half minute.
const (
	changeRetryMin = 250 * time.Millisecond
	changeRetryMax = 30 * time.Second
)

// changeBackoff is the wait before retry attempt n (1 = the first retry).
func changeBackoff(n int) time.Duration {
	d := changeRetryMin
	for i := 1; i < n && d < changeRetryMax; i++ {
		d *= 2
	}
	d = min(d, changeRetryMax)
	// Jitter: instances that failed together do not retry together.
	return d/2 + rand.N(d/2)
}
