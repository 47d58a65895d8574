package translate

import (
	"reflect"
	"sync"
	"testing"
)

func TestResolve(t *testing.T) {
	cat := DefaultCatalog()
	tests := []struct {
		in       string
		upstream string
		effort   string
		known    bool
	}{
		{"gpt-5.5", "gpt-5.5", "", true},
		{"GPT-5.5", "gpt-5.5", "", true},
		{"openai/gpt-5.5", "gpt-5.5", "", true},
		{"gpt-5.5-none", "gpt-5.5", "none", true},
		{"gpt-5.5-minimal", "gpt-5.5", "minimal", true},
		{"gpt-5.5-low", "gpt-5.5", "low", true},
		{"gpt-5.5-medium", "gpt-5.5", "medium", true},
		{"gpt-5.5-high", "gpt-5.5", "high", true},
		{"gpt-5.5-xhigh", "gpt-5.5", "xhigh", true},
		{"gpt-5.5-extra", "gpt-5.5", "xhigh", true},
		{"gpt-5.5-extra-high", "gpt-5.5", "xhigh", true},
		{"gpt-5.5-ultra", "gpt-5.5", "ultra", true},
		{"GPT-5.5-Ultra", "gpt-5.5", "ultra", true},
		{"gpt-6-astra-ultra", "gpt-6-astra", "ultra", false},
		{"gpt-5.1-codex-max", "gpt-5.1-codex-max", "", false},
		{"openai/gpt-5.4-mini-high", "gpt-5.4-mini", "high", true},
		{"gpt-5.4-mini", "gpt-5.4-mini", "", true},
		{"gpt-5.3-codex-spark", "gpt-5.3-codex-spark", "", true},
		{"gpt-5.3-codex-spark-low", "gpt-5.3-codex-spark", "low", true},
		{"gpt-5.3-codex-none", "gpt-5.3-codex", "none", true},
		{"gpt-5.5-codex", "gpt-5.5", "", true},
		{"gpt-5.5-codex-high", "gpt-5.5", "high", true},
		{"gpt-9", "gpt-9", "", false},
		{"some-new-model-xhigh", "some-new-model", "xhigh", false},
		{"-high", "-high", "", false}, // nothing left once the suffix is gone
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r := cat.Resolve(tt.in)
			if r.ClientModel != tt.in || r.Upstream != tt.upstream || r.Effort != tt.effort || r.Known != tt.known {
				t.Fatalf("Resolve(%q) = %+v; want upstream %q effort %q known %v", tt.in, r, tt.upstream, tt.effort, tt.known)
			}
			if r.Model.ID != tt.upstream {
				t.Fatalf("Model.ID = %q, want %q", r.Model.ID, tt.upstream)
			}
		})
	}
}

func TestResolveFullNameBeatsSuffix(t *testing.T) {
	cat := DefaultCatalog().With([]Model{{ID: "odd-model-high"}}, nil)
	if r := cat.Resolve("odd-model-high"); r.Upstream != "odd-model-high" || r.Effort != "" || !r.Known {
		t.Fatalf("got %+v", r)
	}
}

func TestClampEffort(t *testing.T) {
	cat := DefaultCatalog()
	general, _ := cat.Lookup("gpt-5.5")
	codex, _ := cat.Lookup("gpt-5.3-codex")
	sparse := Model{ID: "sparse", Efforts: []string{"low", "high"}}
	tests := []struct {
		m      Model
		in     string
		want   string
		reason string
	}{
		{general, "none", "none", "supported"},
		{general, "minimal", "low", "minimal → low"},
		{general, "xhigh", "xhigh", "supported"},
		{general, "max", "xhigh", "above max → max"},
		{codex, "none", "low", "below min → min"},
		{codex, "minimal", "low", "below min → min"},
		{codex, "medium", "medium", "supported"},
		{codex, "ultra", "xhigh", "above max → max"},
		{sparse, "medium", "high", "gap → next higher"},
		{sparse, "minimal", "low", "below min"},
		{sparse, "xhigh", "high", "above max"},
		{Model{ID: "unknown"}, "minimal", "minimal", "no levels: unchanged"},
		{general, "", "", "empty stays empty"},
		{general, "bogus", "bogus", "unrecognised: unchanged"},
	}
	for _, tt := range tests {
		if got := cat.ClampEffort(tt.m, tt.in); got != tt.want {
			t.Errorf("%s: ClampEffort(%s, %q) = %q, want %q", tt.reason, tt.m.ID, tt.in, got, tt.want)
		}
	}
}

func TestDefaultModels(t *testing.T) {
	var ids []string
	for _, m := range DefaultCatalog().Models() {
		ids = append(ids, m.ID)
		codex := m.ID == "gpt-5.3-codex" || m.ID == "gpt-5.3-codex-spark"
		if m.Verbosity == codex {
			t.Errorf("%s: Verbosity = %v", m.ID, m.Verbosity)
		}
		want := []string{"none", "low", "medium", "high", "xhigh"}
		if codex {
			want = want[1:]
		}
		if !reflect.DeepEqual(m.Efforts, want) {
			t.Errorf("%s: Efforts = %v, want %v", m.ID, m.Efforts, want)
		}
	}
	want := []string{"gpt-5.5", "gpt-5.4", "gpt-5.4-mini", "gpt-5.3-codex", "gpt-5.3-codex-spark"}
	if !reflect.DeepEqual(ids, want) {
		t.Fatalf("Models() = %v, want %v", ids, want)
	}
	if DefaultAliases()["gpt-5.5-codex"] != "gpt-5.5" {
		t.Fatal("missing alias gpt-5.5-codex")
	}
}

func TestCatalogWith(t *testing.T) {
	base := DefaultCatalog()
	n := base.With([]Model{
		{ID: "gpt-5.5", Efforts: []string{"low"}},      // override in place
		{ID: "gpt-5.6-sol", Efforts: []string{"high"}}, // new, appended
		{ID: "secret", Hidden: true},
	}, map[string]string{"sol": "gpt-5.6-sol"})

	if m, _ := base.Lookup("gpt-5.5"); len(m.Efforts) != 5 {
		t.Fatalf("With modified the receiver: %v", m.Efforts)
	}
	var ids []string
	for _, m := range n.Models() {
		ids = append(ids, m.ID)
	}
	want := []string{"gpt-5.5", "gpt-5.4", "gpt-5.4-mini", "gpt-5.3-codex", "gpt-5.3-codex-spark", "gpt-5.6-sol"}
	if !reflect.DeepEqual(ids, want) {
		t.Fatalf("Models() = %v, want %v", ids, want)
	}
	if m, _ := n.Lookup("gpt-5.5"); !reflect.DeepEqual(m.Efforts, []string{"low"}) {
		t.Fatalf("override lost: %v", m.Efforts)
	}
	if r := n.Resolve("secret"); !r.Known {
		t.Fatal("hidden models must still resolve")
	}
	if r := n.Resolve("sol-high"); r.Upstream != "gpt-5.6-sol" || r.Effort != "high" || !r.Known {
		t.Fatalf("alias with suffix: %+v", r)
	}
	if r := n.Resolve("gpt-5.5-codex"); r.Upstream != "gpt-5.5" {
		t.Fatalf("default alias lost: %+v", r)
	}

	// Returned slices are copies.
	ms := n.Models()
	ms[0].Efforts[0] = "mutated"
	if m, _ := n.Lookup("gpt-5.5"); m.Efforts[0] != "low" {
		t.Fatal("Models() exposes internal slices")
	}
}

func TestCatalogConcurrentReads(t *testing.T) {
	cat := DefaultCatalog()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				cat.Resolve("gpt-5.5-high")
				cat.Models()
				cat.With([]Model{{ID: "x"}}, nil)
			}
		})
	}
	wg.Wait()
}
