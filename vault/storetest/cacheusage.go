package storetest

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// cacheRec is a request-log record for the prompt-cache roll-up.
func cacheRec(userID, keyID, model string, at time.Time, in, cached int64, failover string) vault.LogRecord {
	r := logRec(fmt.Sprintf("r-%s-%d", userID, at.UnixNano()), userID, at, 200, "")
	r.KeyID, r.Model, r.InputTokens, r.CachedTokens, r.FailoverFrom = keyID, model, in, cached, failover
	return r
}

// cacheRows reads userID's rows from the day of from on, in a fixed order.
func cacheRows(t *testing.T, s vault.Store, userID, keyID string, from time.Time) []vault.CacheRow {
	t.Helper()
	rows, err := s.CacheRollup(ctx, userID, keyID, from)
	must(t, err)
	slices.SortFunc(rows, func(a, b vault.CacheRow) int {
		return cmp.Or(a.Day.Compare(b.Day), cmp.Compare(a.KeyID, b.KeyID), cmp.Compare(a.Model, b.Model))
	})
	return rows
}

// The roll-up sums each record's CacheDelta per user, UTC day, key and
// model in AppendLogs, across batches; reads from a day on (of one key);
// survives a reopen; and loses a day with the records of it.
func testCacheRollup(t *testing.T, h *harness) {
	s := h.store()
	d0, d1 := midnight(t0), midnight(t0.Add(-day))
	must(t, s.AppendLogs(ctx, []vault.LogRecord{
		cacheRec("alice", "k1", "gpt-a", t0, 100, 80, ""),
		cacheRec("alice", "k1", "gpt-a", t0.Add(tick), 100, 150, ""), // more cached than input: the input
		cacheRec("alice", "k2", "gpt-b", t0.Add(2*tick), 50, 0, "acct-0"),
		cacheRec("alice", "k1", "gpt-a", t0.Add(-day), 10, 5, ""),
		cacheRec("alice", "k1", "gpt-a", t0.Add(3*tick), 0, 0, ""), // no input: nothing
		cacheRec("bob", "k3", "gpt-a", t0, 1000, 10, ""),
	}, nil))
	must(t, s.AppendLogs(ctx, []vault.LogRecord{cacheRec("alice", "k1", "gpt-a", t0.Add(4*tick), 100, 100, "")}, nil))
	row := func(day time.Time, user, key, model string, n, in, cached, resets int64) vault.CacheRow {
		return vault.CacheRow{UserID: user, KeyID: key, Model: model, Day: day, Requests: n, InputTokens: in, CachedTokens: cached, Resets: resets}
	}
	all := []vault.CacheRow{
		row(d1, "alice", "k1", "gpt-a", 1, 10, 5, 0),
		row(d0, "alice", "k1", "gpt-a", 3, 300, 280, 0),
		row(d0, "alice", "k2", "gpt-b", 1, 50, 0, 1),
	}
	check := func(s vault.Store) {
		t.Helper()
		same(t, "alice's rows", cacheRows(t, s, "alice", "", t0.Add(-day)), all)
		same(t, "alice's rows of today (from midday)", cacheRows(t, s, "alice", "", t0), all[1:])
		same(t, "alice's rows of key k2", cacheRows(t, s, "alice", "k2", d1), all[2:])
		same(t, "bob's rows", cacheRows(t, s, "bob", "", d1), []vault.CacheRow{row(d0, "bob", "k3", "gpt-a", 1, 1000, 10, 0)})
		if got := cacheRows(t, s, "carol", "", d1); len(got) != 0 {
			t.Fatalf("rows of a user without requests: %+v", got)
		}
		if got := cacheRows(t, s, "alice", "", t0.Add(day)); len(got) != 0 {
			t.Fatalf("rows of tomorrow: %+v", got)
		}
	}
	check(s)
	must(t, closeOnce(s))
	s = h.store()
	check(s)

	// A purge that leaves nothing of yesterday drops yesterday's row and
	// keeps today's, records of which are left.
	n, err := s.PurgeLogs(ctx, t0.Add(-time.Hour))
	must(t, err)
	if n != 1 {
		t.Fatalf("purged %d records, want 1", n)
	}
	same(t, "alice's rows after the purge", cacheRows(t, s, "alice", "", d1), all[1:])
}

// Batches written at once, into the same rows, all count.
func testCacheRollupConcurrent(t *testing.T, h *harness) {
	s := h.store()
	const writers, batches = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*batches)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				at := t0.Add(time.Duration(w*batches+b) * tick)
				errs <- s.AppendLogs(ctx, []vault.LogRecord{
					cacheRec("alice", "k1", "gpt-a", at, 10, 3, ""),
					cacheRec("alice", "k2", "gpt-a", at, 20, 0, "acct-0"),
				}, nil)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	got := cacheRows(t, s, "alice", "", t0)
	const n = writers * batches
	same(t, "rows after concurrent batches", got, []vault.CacheRow{
		{UserID: "alice", KeyID: "k1", Model: "gpt-a", Day: midnight(t0), Requests: n, InputTokens: 10 * n, CachedTokens: 3 * n},
		{UserID: "alice", KeyID: "k2", Model: "gpt-a", Day: midnight(t0), Requests: n, InputTokens: 20 * n, Resets: n},
	})
}
