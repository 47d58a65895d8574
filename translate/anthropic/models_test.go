package anthropic

import "testing"

func TestModelMapResolve(t *testing.T) {
	m := &ModelMap{Rules: []Rule{
		{Pattern: "claude-3-*", Target: Target{Model: "gpt-5.4-mini"}},
		{Pattern: "opus", Target: Target{Model: "gpt-5.3-codex", Effort: "xhigh"}},
		{Pattern: "*-sonnet-*-2025*", Target: Target{Model: "gpt-5.4", Effort: "low"}},
	}}
	for _, tc := range []struct {
		name string
		want Target
		ok   bool
	}{
		{"claude-opus-5-5", Target{"gpt-5.3-codex", "xhigh"}, true},
		{"Claude-Opus-4-1", Target{"gpt-5.3-codex", "xhigh"}, true},
		{"claude-3-opus-20240229", Target{"gpt-5.4-mini", ""}, true}, // the first rule wins
		{"claude-sonnet-4-5-20250929", Target{"gpt-5.4", "low"}, true},
		{"claude-sonnet-4-5", Target{"gpt-5.5", "medium"}, true}, // the default
		{"claude-haiku-4-5", Target{"gpt-5.4-mini", "low"}, true},
		{"gpt-5.5", Target{}, false},
	} {
		got, ok := m.Resolve(tc.name)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: %+v %v, want %+v %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
	var none *ModelMap
	if got, _ := none.Resolve("claude-opus-5-5"); got.Model != "gpt-5.5" || got.Effort != "high" {
		t.Errorf("nil map: opus → %+v", got)
	}
}

func TestParseRule(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want Rule
		err  bool
	}{
		{[]string{"opus", "gpt-5.5", "high"}, Rule{"opus", Target{"gpt-5.5", "high"}}, false},
		{[]string{"claude-*", "gpt-5.4"}, Rule{"claude-*", Target{"gpt-5.4", ""}}, false},
		{[]string{"**", "gpt-5.4"}, Rule{"*", Target{"gpt-5.4", ""}}, false},
		{[]string{"opus", "gpt-5.5", "loud"}, Rule{}, true},
		{[]string{"opus"}, Rule{}, true},
		{[]string{"a", "b", "high", "x"}, Rule{}, true},
	} {
		got, err := ParseRule(tc.args)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("%v: %+v %v", tc.args, got, err)
		}
	}
}
