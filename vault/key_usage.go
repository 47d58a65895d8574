package vault

import (
	"context"
	"time"

	"github.com/usemysub/caddy-codex-proxy/keypolicy"
)

// Token budgets across instances. Each instance counts its own requests
// in memory the moment they end (keypolicy.Tracker.Record: pending). On a
// KeyUsageStore the request-log writer also keeps each key's tokens per
// day in the store, in the same transaction as the records, and announces
// the keys it changed (ChangeKeyUsage); every instance then re-reads those
// keys' day and week totals (committed). A request is counted once on
// every instance: usageMu keeps a re-read from overlapping a write of this
// instance's records and the confirmation that moves them from pending to
// committed (appendLogs), and a usage reset (ResetKeyUsage).

// KeyUsageStore is what a Store shared by several instances implements so
// that token budgets hold for their total. The engine keeps each key's
// tokens (input + output) per UTC day of the request's start, counting the
// records AppendLogs writes that started at or after the key's reset
// point; ResetKeyUsage clears what it kept for the key. In each
// AppendLogs transaction that changed a key's usage it announces the keys
// with a ChangeKeyUsage on Changes (a single-process engine announces
// nothing). Both engines implement it: on bbolt it is what keeps a week's
// budget across a restart when the request log keeps less than a week.
type KeyUsageStore interface {
	// KeyUsage returns the tokens of the keys keyIDs (nil: every key) in
	// the UTC day starting at day and the ISO week starting at week.
	// Keys without any may be absent.
	KeyUsage(ctx context.Context, keyIDs []string, day, week time.Time) (map[string]keypolicy.Totals, error)
}

// appendLogs writes a batch of request records and, once they are
// committed, moves their tokens from pending to committed in the key
// counters.
func (v *Vault) appendLogs(ctx context.Context, batch []LogRecord, usage []UsageDelta) error {
	v.usageMu.Lock()
	defer v.usageMu.Unlock()
	if err := v.store.AppendLogs(ctx, batch, usage); err != nil {
		return err
	}
	written := make([]keypolicy.Rebuilt, 0, len(batch))
	for _, r := range batch {
		if r.KeyID != "" {
			written = append(written, keypolicy.Rebuilt{KeyID: r.KeyID, Started: r.Time, Tokens: r.InputTokens + r.OutputTokens})
		}
	}
	v.usage.Committed(written)
	return nil
}

// reloadKeyUsage re-reads the stored token usage of the active keys ids
// (nil: all of them) for the current day and week, on a KeyUsageStore.
func (v *Vault) reloadKeyUsage(ctx context.Context, ids []string) error {
	ks, ok := v.store.(KeyUsageStore)
	if !ok || ids != nil && len(ids) == 0 {
		return nil
	}
	v.usageMu.Lock()
	defer v.usageMu.Unlock()
	now := v.now()
	day, week := keypolicy.DayStart(now), keypolicy.WeekStart(now)
	got, err := ks.KeyUsage(ctx, ids, day, week)
	if err != nil {
		return err
	}
	// Keys the store has nothing for count zero (their usage was reset);
	// inactive keys have no counters to set.
	v.mu.RLock()
	defer v.mu.RUnlock()
	totals := make(map[string]keypolicy.Totals, max(len(ids), len(got)))
	if ids == nil {
		for id := range v.keysByID {
			totals[id] = got[id]
		}
	} else {
		for _, id := range ids {
			if _, ok := v.keysByID[id]; ok {
				totals[id] = got[id]
			}
		}
	}
	v.usage.SetCommitted(day, week, totals)
	return nil
}
