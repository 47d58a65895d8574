package translate

import (
	"encoding/json"
	"slices"
	"testing"
)

func TestModelList(t *testing.T) {
	cat := NewCatalog([]Model{{ID: "gpt-a"}, {ID: "gpt-hidden", Hidden: true}, {ID: "gpt-b"}}, map[string]string{"alias": "gpt-a"})
	for _, tc := range []struct {
		name     string
		upstream []string
		want     []string
	}{
		{"upstream unavailable: the catalog", nil, []string{"gpt-a", "gpt-b"}},
		{"upstream first, catalog after, each once", []string{"gpt-new", "gpt-b"}, []string{"gpt-new", "gpt-b", "gpt-a"}},
		{"duplicates and empty slugs dropped", []string{"x", "", "x", "gpt-a"}, []string{"x", "gpt-a", "gpt-b"}},
		{"hidden catalog models listed only when the upstream lists them", []string{"gpt-hidden"}, []string{"gpt-hidden", "gpt-a", "gpt-b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ids []string
			for _, m := range cat.ModelList(tc.upstream) {
				ids = append(ids, m.ID)
			}
			if !slices.Equal(ids, tc.want) {
				t.Fatalf("got %v, want %v", ids, tc.want)
			}
		})
	}
	b, err := json.Marshal(cat.ModelList([]string{"gpt-5.5"})[0])
	if want := `{"id":"gpt-5.5","object":"model","created":1700000000,"owned_by":"openai"}`; err != nil || string(b) != want {
		t.Fatalf("%s (%v), want %s", b, err, want)
	}
}
