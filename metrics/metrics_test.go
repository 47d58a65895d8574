package metrics

import (
	"errors"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/usemysub/caddy-codex-proxy/translate"
)

// permanent is a refresh error the upstream says will never succeed.
type permanent struct{}

func (permanent) Error() string   { return "invalid_grant" }
func (permanent) Permanent() bool { return true }

// TestCountRefreshByOutcome: each attempt lands under its outcome, a
// permanent failure recognized through wrapping.
func TestCountRefreshByOutcome(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, "success"},
		{fmt.Errorf("refresh: %w", permanent{}), "permanent_failure"},
		{errors.New("connection reset"), "transient_failure"},
	} {
		c := TokenRefreshes.WithLabelValues(tc.want)
		before := testutil.ToFloat64(c)
		CountRefresh(tc.err)
		if got := testutil.ToFloat64(c) - before; got != 1 {
			t.Errorf("CountRefresh(%v): %s went up by %v, want 1", tc.err, tc.want, got)
		}
	}
}

// TestRequestModelLabelBounded: a model the catalog does not know is
// counted as "other", never under the client's string.
func TestRequestModelLabelBounded(t *testing.T) {
	o := NewObserver(translate.DefaultCatalog())
	other := Requests.WithLabelValues("chat_completions", "404", "other")
	before := testutil.ToFloat64(other)
	o.Request("chat_completions", 404, "made-up-model-4711")
	if got := testutil.ToFloat64(other) - before; got != 1 {
		t.Fatalf("other went up by %v, want 1", got)
	}
	if got := testutil.ToFloat64(Requests.WithLabelValues("chat_completions", "404", "made-up-model-4711")); got != 0 {
		t.Fatalf("the client's model string became a label (%v)", got)
	}
}

// Input and cached input are counted per model, the model bounded like
// Requests', so the cache hit rate per model is cached / input; a
// conversation moved by failover counts a cache reset.
func TestCacheHitRateByModel(t *testing.T) {
	o := NewObserver(translate.DefaultCatalog())
	in, cached := ModelTokens.WithLabelValues("gpt-5.5", "input"), ModelTokens.WithLabelValues("gpt-5.5", "cached")
	in0, cached0 := testutil.ToFloat64(in), testutil.ToFloat64(cached)
	o.Tokens("gpt-5.5", translate.Usage{InputTokens: 1000, CachedTokens: 800, OutputTokens: 5})
	o.Tokens("gpt-5.5", translate.Usage{InputTokens: 1000, OutputTokens: 5})
	if di, dc := testutil.ToFloat64(in)-in0, testutil.ToFloat64(cached)-cached0; di != 2000 || dc != 800 {
		t.Fatalf("input +%v cached +%v, want 2000 and 800", di, dc)
	}
	other := ModelTokens.WithLabelValues("other", "input")
	before := testutil.ToFloat64(other)
	o.Tokens("made-up-model-4711", translate.Usage{InputTokens: 7})
	if got := testutil.ToFloat64(other) - before; got != 7 {
		t.Fatalf("other input went up by %v, want 7", got)
	}
	resets, failovers := testutil.ToFloat64(CacheResets), testutil.ToFloat64(AccountFailovers)
	o.Failover(true)
	o.Failover(false)
	if dr, df := testutil.ToFloat64(CacheResets)-resets, testutil.ToFloat64(AccountFailovers)-failovers; dr != 1 || df != 2 {
		t.Fatalf("resets +%v failovers +%v, want 1 and 2", dr, df)
	}
}

// fakeSource is a vault with fixed counts.
type fakeSource struct {
	drops   uint64
	changes ChangeCounts
}

func (f *fakeSource) DroppedLogs() uint64       { return f.drops }
func (f *fakeSource) DroppedResponses() uint64  { return f.drops * 10 }
func (f *fakeSource) ChangeStats() ChangeCounts { return f.changes }

// TestCountsSurviveRetire: a closed vault's drops and change counts stay in
// the totals; its pending changes do not.
func TestCountsSurviveRetire(t *testing.T) {
	s := &VaultSet{live: map[Source]struct{}{}}
	a := &fakeSource{drops: 3, changes: ChangeCounts{Applied: 5, Resyncs: 1, Pending: 2}}
	b := &fakeSource{drops: 4, changes: ChangeCounts{Applied: 1, RereadsFailed: 2, Pending: 1}}
	s.Add(a)
	s.Add(b)
	s.Retire(a)
	a.drops, a.changes.Applied = 100, 100 // a closed vault is no longer read
	if got := s.droppedLogs(); got != 7 {
		t.Fatalf("dropped %v, want 7", got)
	}
	if got := s.droppedResponses(); got != 70 {
		t.Fatalf("dropped responses %v, want 70", got)
	}
	if got := s.changes(); got != (ChangeCounts{Applied: 6, RereadsFailed: 2, Resyncs: 1, Pending: 1}) {
		t.Fatalf("changes %+v", got)
	}
	if got := s.changeCounter(func(c ChangeCounts) uint64 { return c.RereadsFailed })(); got != 2 {
		t.Fatalf("counter %v", got)
	}
}
