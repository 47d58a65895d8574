package anthropic

import (
	"fmt"
	"strings"
)

// Target is the Codex model and reasoning effort a Claude model name maps to.
// An empty Effort lets the catalog choose.
type Target struct {
	Model  string `json:"model"`
	Effort string `json:"effort,omitempty"`
}

// Rule maps the Claude model names matching Pattern to Target. A pattern is
// a family (opus, sonnet, haiku: any name containing it) or a glob in
// which * matches any run of characters ("claude-sonnet-4*").
type Rule struct {
	Pattern string `json:"pattern"`
	Target
}

// ModelMap maps Claude model names to Codex models: the first matching
// rule wins, the operator's before the defaults. The zero value (and nil)
// maps with the defaults only.
type ModelMap struct {
	Rules []Rule `json:"rules,omitempty"`
}

// DefaultRules are the mappings that work out of the box: opus to the
// strongest model at high effort, sonnet to the default model at medium,
// haiku to the mini model at low.
func DefaultRules() []Rule {
	return []Rule{
		{Pattern: "opus", Target: Target{Model: "gpt-5.5", Effort: "high"}},
		{Pattern: "sonnet", Target: Target{Model: "gpt-5.5", Effort: "medium"}},
		{Pattern: "haiku", Target: Target{Model: "gpt-5.4-mini", Effort: "low"}},
	}
}

// All is the rules in the order they are tried: the operator's, then the
// defaults.
func (m *ModelMap) All() []Rule {
	var rules []Rule
	if m != nil {
		rules = append(rules, m.Rules...)
	}
	return append(rules, DefaultRules()...)
}

// Resolve maps a client model name. ok is false for a name no rule
// matches (a Codex name, say), which is then used as it is.
func (m *ModelMap) Resolve(name string) (Target, bool) {
	lower := strings.ToLower(strings.TrimSpace(name))
	for _, r := range m.All() {
		if match(strings.ToLower(r.Pattern), lower) {
			return r.Target, true
		}
	}
	return Target{}, false
}

// match reports whether name matches pattern: a pattern without * matches
// a name that contains it, one with * is a glob over the whole name.
func match(pattern, name string) bool {
	if !strings.Contains(pattern, "*") {
		return strings.Contains(name, pattern)
	}
	parts := strings.Split(pattern, "*")
	if !strings.HasPrefix(name, parts[0]) {
		return false
	}
	name = name[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(name, p)
		if i < 0 {
			return false
		}
		name = name[i+len(p):]
	}
	return strings.HasSuffix(name, last)
}

// ParseRule reads one rule from its words: PATTERN MODEL [EFFORT], as the
// Caddyfile writes it.
func ParseRule(args []string) (Rule, error) {
	if len(args) < 2 || len(args) > 3 {
		return Rule{}, fmt.Errorf("a Claude model rule is PATTERN MODEL [EFFORT], got %d words", len(args))
	}
	r := Rule{Pattern: args[0], Target: Target{Model: args[1]}}
	if strings.Trim(r.Pattern, "*") == "" {
		r.Pattern = "*"
	}
	if len(args) == 3 {
		switch args[2] {
		case "none", "minimal", "low", "medium", "high", "xhigh", "max", "ultra":
			r.Effort = args[2]
		default:
			return Rule{}, fmt.Errorf("unknown reasoning effort %q for the Claude model rule %q", args[2], args[0])
		}
	}
	return r, nil
}
