package caddymodule

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/usemysub/caddy-codex-proxy/keypolicy"
	"github.com/usemysub/caddy-codex-proxy/translate"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// Key policies through the admin API and the CLI. A policy change is a
// map of keypolicy field names ("rpm", "tokens-per-day", …) to their text
// form, exactly as the CLI flags take them; only the fields given change.

// keyView is a key as the operator sees it: its record (policy included)
// and its current usage against the policy.
type keyView struct {
	vault.Key
	Usage *keypolicy.Status `json:"usage,omitempty"` // absent for revoked keys
}

// keyUpdateRequest is the body of POST /codex_proxy/keys/{id}/policy.
type keyUpdateRequest struct {
	Email  string            `json:"email"`
	Policy map[string]string `json:"policy"`
}

// keyUpdateResult answers a policy update or a usage reset.
type keyUpdateResult struct {
	Key keyView `json:"key"`
}

// resolveModel maps an allowlist name to its catalog name (aliases).
func resolveModel(name string) string {
	if r := translate.DefaultCatalog().Resolve(name); r.Known {
		return r.Upstream
	}
	return name
}

// applyPolicy applies the given field changes to p and validates the
// result; a bad value is a 400.
func applyPolicy(p keypolicy.Policy, changes map[string]string) (keypolicy.Policy, error) {
	now := time.Now()
	fields := make([]string, 0, len(changes))
	for f := range changes {
		fields = append(fields, f)
	}
	slices.Sort(fields)
	for _, f := range fields {
		var err error
		if p, err = keypolicy.Set(p, f, changes[f], now, resolveModel); err != nil {
			return p, apiErr(http.StatusBadRequest, err)
		}
	}
	if err := p.Validate(now); err != nil {
		return p, apiErr(http.StatusBadRequest, err)
	}
	return p, nil
}

// viewKeys adds current usage to active keys.
func viewKeys(v *vault.Vault, keys []vault.Key) []keyView {
	out := make([]keyView, len(keys))
	for i, k := range keys {
		out[i].Key = k
		if !k.Disabled {
			s := v.KeyStatus(k)
			out[i].Usage = &s
		}
	}
	return out
}

// updateKeyPolicy changes the policy of one of the user's keys.
func updateKeyPolicy(v *vault.Vault, id string, req keyUpdateRequest) (keyUpdateResult, error) {
	u, err := userByEmail(v, req.Email)
	if err != nil {
		return keyUpdateResult{}, err
	}
	k, err := v.GetKey(u.ID, id)
	if err == nil && k.Disabled {
		err = vault.ErrNotFound
	}
	if errors.Is(err, vault.ErrNotFound) {
		return keyUpdateResult{}, apiErr(http.StatusNotFound, fmt.Errorf("%s has no active key with id %s", u.Email, id))
	} else if err != nil {
		return keyUpdateResult{}, vaultErr(err)
	}
	p, err := applyPolicy(k.Policy, req.Policy)
	if err != nil {
		return keyUpdateResult{}, err
	}
	if p.Account != "" && p.Account != k.Policy.Account {
		if err := checkAccount(v, u.ID, p.Account); err != nil {
			return keyUpdateResult{}, err
		}
	}
	if k, err = v.UpdateKeyPolicy(u.ID, id, p); err != nil {
		if errors.Is(err, keypolicy.ErrInvalid) {
			return keyUpdateResult{}, apiErr(http.StatusBadRequest, err)
		}
		return keyUpdateResult{}, vaultErr(err)
	}
	return keyUpdateResult{Key: viewKeys(v, []vault.Key{k})[0]}, nil
}

// resetKeyUsage resets the counters of one of the user's keys.
func resetKeyUsage(v *vault.Vault, email, id string) (keyUpdateResult, error) {
	u, err := userByEmail(v, email)
	if err != nil {
		return keyUpdateResult{}, err
	}
	if err := v.ResetKeyUsage(u.ID, id); err != nil {
		if errors.Is(err, vault.ErrNotFound) {
			return keyUpdateResult{}, apiErr(http.StatusNotFound, fmt.Errorf("%s has no active key with id %s", u.Email, id))
		}
		return keyUpdateResult{}, vaultErr(err)
	}
	k, err := v.GetKey(u.ID, id)
	if err != nil {
		return keyUpdateResult{}, vaultErr(err)
	}
	return keyUpdateResult{Key: viewKeys(v, []vault.Key{k})[0]}, nil
}

// policyFlagHelp documents each policy flag.
var policyFlagHelp = map[string]string{
	keypolicy.FieldExpires:       "Expiry: a duration from now (3s, 12h, 30d, 2w), a date (2027-01-31, valid through that UTC day), an RFC 3339 time, or never",
	keypolicy.FieldModels:        "Comma-separated models or glob patterns the key may use (gpt-5.5,gpt-5.4*); '' allows all",
	keypolicy.FieldRPM:           "Requests per minute; 0 for no limit",
	keypolicy.FieldConcurrency:   "Requests in progress at once; 0 for no limit",
	keypolicy.FieldTokensPerDay:  "Input+output tokens per UTC day; 0 for no limit",
	keypolicy.FieldTokensPerWeek: "Input+output tokens per ISO week (from Monday, UTC); 0 for no limit",
	keypolicy.FieldMaxEffort:     "Highest reasoning effort (none, minimal, low, medium, high, xhigh); higher requests are lowered to it; '' for none",
	keypolicy.FieldAccount:       "Pin the key to one of the user's linked ChatGPT accounts (its id, see accounts list): no failover to the others; '' to unpin",
}

// addPolicyFlags adds the policy flags to a keys subcommand.
func addPolicyFlags(cmd *cobra.Command) {
	for _, f := range keypolicy.FieldNames {
		cmd.Flags().String(f, "", policyFlagHelp[f])
	}
}

// policyChanges collects the policy flags given on the command line.
func policyChanges(fs *pflag.FlagSet) map[string]string {
	out := map[string]string{}
	for _, f := range keypolicy.FieldNames {
		if fs.Changed(f) {
			v, _ := fs.GetString(f)
			out[f] = v
		}
	}
	return out
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
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, "; ")
}

// keyState is the status column of keys list.
func keyState(k keyView) string {
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
