package codex

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
)

func TestModelsFromFake(t *testing.T) {
	srv, c, ts, _ := setup(t)
	models, err := c.Models(t.Context(), ts)
	if err != nil {
		t.Fatal(err)
	}
	if len(models) != len(codextest.DefaultModels()) {
		t.Fatalf("%d models", len(models))
	}
	byslug := map[string]RemoteModel{}
	for _, m := range models {
		byslug[m.Slug] = m
	}
	g := byslug["gpt-5.5"]
	if g.DisplayName != "GPT-5.5" || !slices.Equal(g.Efforts, []string{"low", "medium", "high", "xhigh"}) ||
		g.DefaultEffort != "medium" || !g.Verbosity || g.Hidden {
		t.Errorf("gpt-5.5 %+v", g)
	}
	// The catalog's newer fields: context windows, the Fast tier, the
	// ultra effort and the client version a model needs.
	a := byslug["gpt-6-astra"]
	if a.ContextWindow != 400000 || a.MaxContextWindow != 1000000 || !slices.Equal(a.ServiceTiers, []string{"priority"}) ||
		a.DefaultServiceTier != "" || !a.SupportsEffort("ultra") || a.MinClientVersion != "0.160.0" {
		t.Errorf("gpt-6-astra %+v", a)
	}
	if mini := byslug["gpt-5.4-mini"]; mini.ServiceTiers != nil || mini.ContextWindow != 272000 {
		t.Errorf("gpt-5.4-mini %+v", mini)
	}
	cx := byslug["gpt-5.1-codex"]
	if !cx.Hidden || cx.Verbosity || cx.SupportsEffort("xhigh") || !cx.SupportsEffort("low") {
		t.Errorf("gpt-5.1-codex %+v", cx)
	}
	r := srv.RequestsTo("/models")[0]
	if r.Query.Get("client_version") != DefaultClientVersion || r.Header.Get("Accept") != "application/json" ||
		r.Header.Get("ChatGPT-Account-ID") != "acc-1" || r.Header.Get("User-Agent") != c.UserAgent() {
		t.Errorf("request %+v", r)
	}
}

func TestModels401Refreshes(t *testing.T) {
	srv, c, ts, _ := setup(t)
	srv.ExpireAccess("acc-1")
	if _, err := c.Models(t.Context(), ts); err != nil {
		t.Fatal(err)
	}
	if ts.forced != 1 || len(srv.RequestsTo("/models")) != 2 {
		t.Fatalf("forced %d", ts.forced)
	}
}

func TestParseModels(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		slugs []string
		err   bool
	}{
		{"normal", `{"models":[{"slug":"a","supported_reasoning_levels":[{"effort":"low"}],"visibility":"list"}]}`, []string{"a"}, false},
		{"string levels and bad entry", `{"models":[{"slug":"a","supported_reasoning_levels":["low",{"effort":"high"},7]},{"slug":5},{"display_name":"no slug"},{"slug":"a"}]}`, []string{"a"}, false},
		{"empty", `{"models":[]}`, nil, true},
		{"not json", `<html>`, nil, true},
		{"no models key", `{}`, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := ParseModels([]byte(tc.body))
			if (err != nil) != tc.err {
				t.Fatalf("err %v", err)
			}
			var slugs []string
			for _, m := range ms {
				slugs = append(slugs, m.Slug)
			}
			if !slices.Equal(slugs, tc.slugs) {
				t.Fatalf("slugs %v", slugs)
			}
		})
	}
	ms, _ := ParseModels([]byte(`{"models":[{"slug":"a","supported_reasoning_levels":["low",{"effort":"high"}],"visibility":"hide"}]}`))
	if !slices.Equal(ms[0].Efforts, []string{"low", "high"}) || !ms[0].Hidden || ms[0].DisplayName != "a" {
		t.Fatalf("%+v", ms[0])
	}
}

func FuzzParseModels(f *testing.F) {
	f.Add(`{"models":[{"slug":"a","supported_reasoning_levels":[{"effort":"low"}],"default_reasoning_level":"low","support_verbosity":true,"visibility":"list"}]}`)
	f.Add(`{"models":[null,1,"x",{"slug":""}]}`)
	f.Fuzz(func(t *testing.T, body string) {
		ms, err := ParseModels([]byte(body))
		if err == nil && len(ms) == 0 {
			t.Fatal("no models without error")
		}
		for _, m := range ms {
			if m.Slug == "" || m.DisplayName == "" {
				t.Fatalf("%+v", m)
			}
		}
	})
}

func TestModelCache(t *testing.T) {
	fallback := []RemoteModel{{Slug: "static"}}
	var calls atomic.Int32
	var fail atomic.Bool
	fetch := func(ctx context.Context, ts TokenSource) ([]RemoteModel, error) {
		calls.Add(1)
		if fail.Load() {
			return nil, errors.New("down")
		}
		return []RemoteModel{{Slug: "live"}}, nil
	}
	m := NewModelCache(fetch, time.Minute, fallback)
	now := time.Unix(0, 0)
	m.now = func() time.Time { return now }

	got, err := m.Get(t.Context(), "acc", nil)
	if err != nil || got[0].Slug != "live" || calls.Load() != 1 {
		t.Fatalf("first: %v %v", got, err)
	}
	if got, _ = m.Get(t.Context(), "acc", nil); calls.Load() != 1 || got[0].Slug != "live" {
		t.Fatal("not cached")
	}
	// Other keys are separate.
	m.Get(t.Context(), "other", nil)
	if calls.Load() != 2 {
		t.Fatal("keys share entries")
	}
	// Expired + failing: stale catalog plus the error.
	now = now.Add(2 * time.Minute)
	fail.Store(true)
	got, err = m.Get(t.Context(), "acc", nil)
	if err == nil || got[0].Slug != "live" {
		t.Fatalf("stale on error: %v %v", got, err)
	}
	// The failure is cached briefly.
	m.Get(t.Context(), "acc", nil)
	if calls.Load() != 3 {
		t.Fatalf("failure not cached: %d calls", calls.Load())
	}
	// Unknown key while failing: fallback.
	got, err = m.Get(t.Context(), "new", nil)
	if err == nil || got[0].Slug != "static" {
		t.Fatalf("fallback: %v %v", got, err)
	}
	// Recovery after the error TTL.
	fail.Store(false)
	now = now.Add(time.Minute)
	if got, err = m.Get(t.Context(), "new", nil); err != nil || got[0].Slug != "live" {
		t.Fatalf("recovery: %v %v", got, err)
	}
}

func TestModelCacheSingleFlight(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int32
	fetch := func(ctx context.Context, ts TokenSource) ([]RemoteModel, error) {
		calls.Add(1)
		<-release
		return []RemoteModel{{Slug: "live"}}, nil
	}
	m := NewModelCache(fetch, 0, nil)
	var wg sync.WaitGroup
	results := make([]string, 8)
	for i := range results {
		wg.Go(func() {
			got, err := m.Get(context.Background(), "acc", nil)
			if err == nil && len(got) == 1 {
				results[i] = got[0].Slug
			}
		})
	}
	// A waiter whose context ends gets an error, not a hang.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	for calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	if _, err := m.Get(ctx, "acc", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled waiter: %v", err)
	}
	close(release)
	wg.Wait()
	if calls.Load() != 1 {
		t.Fatalf("%d fetches", calls.Load())
	}
	for i, r := range results {
		if r != "live" {
			t.Fatalf("result %d = %q", i, r)
		}
	}
}

func TestModelCacheWithClient(t *testing.T) {
	srv, c, ts, _ := setup(t)
	m := NewModelCache(c.Models, 0, nil)
	for range 3 {
		if ms, err := m.Get(t.Context(), "acc-1", ts); err != nil || len(ms) == 0 {
			t.Fatal(err)
		}
	}
	if n := len(srv.RequestsTo("/models")); n != 1 {
		t.Fatalf("%d fetches", n)
	}
}
