package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/usemysub/caddy-codex-proxy/keypolicy"
	"github.com/usemysub/caddy-codex-proxy/ops"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// printJSON writes v indented on standard output.
func (c *CLI) printJSON(v any) error {
	enc := json.NewEncoder(c.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// chatGPTStatus describes a linked login in a few words.
func chatGPTStatus(ti *vault.TokenInfo) string {
	if ti == nil {
		return "not linked"
	}
	var parts []string
	for _, s := range []string{ti.PlanType, ti.Email} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	if len(parts) == 0 {
		parts = append(parts, "linked")
	}
	s := strings.Join(parts, " ")
	if ti.RelinkNeeded {
		s += " (relink needed)"
	}
	return s
}

// when formats a timestamp for tables.
func when(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Local().Format("2006-01-02 15:04")
}

// orDash keeps empty table cells visible.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// policySummary is a one-line description of a policy for tables.
func policySummary(p keypolicy.Policy) string {
	var parts []string
	if !p.Expires.IsZero() {
		parts = append(parts, "expires "+p.Expires.UTC().Format(time.RFC3339))
	}
	if len(p.Models) > 0 {
		parts = append(parts, "models "+strings.Join(p.Models, ","))
	}
	if p.RPM > 0 {
		parts = append(parts, fmt.Sprintf("%d rpm", p.RPM))
	}
	if p.Concurrency > 0 {
		parts = append(parts, fmt.Sprintf("%d at once", p.Concurrency))
	}
	if p.TokensPerDay > 0 {
		parts = append(parts, fmt.Sprintf("%d tokens/day", p.TokensPerDay))
	}
	if p.TokensPerWeek > 0 {
		parts = append(parts, fmt.Sprintf("%d tokens/week", p.TokensPerWeek))
	}
	if p.MaxEffort != "" {
		parts = append(parts, "effort ≤ "+p.MaxEffort)
	}
	if p.Account != "" {
		parts = append(parts, "account "+p.Account)
	}
	if p.DenyImages {
		parts = append(parts, "no images")
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, "; ")
}

// keyState is the status column of keys list.
func keyState(k ops.KeyView) string {
	switch {
	case k.Disabled:
		return "revoked"
	case k.Usage == nil:
		return "active"
	case k.Usage.Expired:
		return "expired"
	case k.Usage.OverBudget:
		return "over budget"
	case k.Usage.RateLimited:
		return "rate-limited"
	}
	return "active"
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
