// Package keypolicy is what an API key may do and how much of it it has
// done: the per-key policy (expiry, model allowlist, request rate,
// concurrency, token budgets, a reasoning-effort ceiling) and the
// in-memory counters that enforce it. It knows nothing of Caddy, HTTP or
// storage: the vault keeps a Policy with each key and feeds a Tracker, the
// HTTP layer asks it before each upstream call.
package keypolicy

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"
)

// Policy is what one API key may do. The zero value allows everything,
// forever. It is stored with the key as JSON (one jsonb column in a server
// engine), so every field has a JSON name and a zero meaning "no limit".
type Policy struct {
	// Expires is when the key stops working; zero: never.
	Expires time.Time `json:"expires,omitzero"`
	// Models lists the models the key may use: catalog names (aliases
	// resolved when the policy is set) or glob patterns such as "gpt-5.4*"
	// (path.Match syntax), lower case; empty allows every model. A request's
	// model is matched after its alias and effort suffix are resolved.
	Models []string `json:"models,omitempty"`
	// RPM bounds the requests started in any 60-second span.
	RPM int `json:"rpm,omitempty"`
	// Concurrency bounds the requests in progress at once.
	Concurrency int `json:"concurrency,omitempty"`
	// TokensPerDay and TokensPerWeek bound the tokens (input, cached input
	// included, plus output) of requests started in the current UTC day and
	// ISO week (Monday 00:00 UTC).
	TokensPerDay  int64 `json:"tokens_per_day,omitempty"`
	TokensPerWeek int64 `json:"tokens_per_week,omitempty"`
	// MaxEffort is the highest reasoning effort sent upstream; requests
	// above it are clamped to it, not refused.
	MaxEffort string `json:"max_effort,omitempty"`
	// Account pins the key to one of its owner's linked ChatGPT accounts
	// (the account's id): requests of the key use that account only, with
	// no failover to the others. Empty: the owner's routing applies.
	Account string `json:"account,omitempty"`
	// DenyImages refuses image generation: the Images API and the
	// image_generation tool on /v1/responses and chat. False: allowed.
	DenyImages bool `json:"deny_images,omitempty"`
	// ServiceTier is the key's Fast-tier policy: TierDeny runs every
	// request on the account's default tier (the Fast tier costs more of
	// the subscription), TierForce sends every request on the Fast tier.
	// Empty: the client's service_tier (or the model's default) applies.
	ServiceTier string `json:"service_tier,omitempty"`
}

// Service-tier policies (Policy.ServiceTier); translate's TierDeny and
// TierForce name the same values.
const (
	TierDeny  = "deny"
	TierForce = "force"
)

// Upper bounds a policy may set; far above any sane use, they keep the
// counters' memory bounded (the rate window holds one time per request).
const (
	MaxRPM         = 100_000
	MaxConcurrency = 10_000
	MaxTokens      = 1_000_000_000_000_000
	MaxModels      = 64
	maxModelLen    = 100
)

// Efforts are the reasoning efforts a ceiling may name, low to high; the
// same order translate clamps with.
var Efforts = []string{"none", "minimal", "low", "medium", "high", "xhigh", "max", "ultra"}

// ErrInvalid is wrapped by every Validate and Parse error.
var ErrInvalid = errors.New("invalid key policy")

// IsZero reports whether p limits nothing.
func (p Policy) IsZero() bool {
	return p.Expires.IsZero() && len(p.Models) == 0 && p.RPM == 0 && p.Concurrency == 0 &&
		p.TokensPerDay == 0 && p.TokensPerWeek == 0 && p.MaxEffort == "" && p.Account == "" && !p.DenyImages &&
		p.ServiceTier == ""
}

// Clone returns a copy that shares no slice with p.
func (p Policy) Clone() Policy {
	p.Models = slices.Clone(p.Models)
	return p
}

// Validate reports the first field out of range, wrapping ErrInvalid.
// An expiry that has already passed at now is refused: it would create a
// dead key.
func (p Policy) Validate(now time.Time) error {
	switch {
	case !p.Expires.IsZero() && !p.Expires.After(now):
		return invalid("the expiry %s is in the past", p.Expires.UTC().Format(time.RFC3339))
	case p.RPM < 0 || p.RPM > MaxRPM:
		return invalid("requests per minute must be between 0 (no limit) and %d", MaxRPM)
	case p.Concurrency < 0 || p.Concurrency > MaxConcurrency:
		return invalid("concurrent requests must be between 0 (no limit) and %d", MaxConcurrency)
	case p.TokensPerDay < 0 || p.TokensPerDay > MaxTokens:
		return invalid("tokens per day must be between 0 (no limit) and %d", int64(MaxTokens))
	case p.TokensPerWeek < 0 || p.TokensPerWeek > MaxTokens:
		return invalid("tokens per week must be between 0 (no limit) and %d", int64(MaxTokens))
	case p.MaxEffort != "" && !slices.Contains(Efforts, p.MaxEffort):
		return invalid("max effort must be one of %s, not %q", strings.Join(Efforts, ", "), p.MaxEffort)
	case len(p.Models) > MaxModels:
		return invalid("at most %d model names or patterns", MaxModels)
	case p.ServiceTier != "" && p.ServiceTier != TierDeny && p.ServiceTier != TierForce:
		return invalid("the service tier policy must be deny, force or empty (allow), not %q", p.ServiceTier)
	case !validAccount(p.Account):
		return invalid("the account pin must be a linked account's id (letters, digits, '-', at most 64), not %q", p.Account)
	}
	for _, m := range p.Models {
		if err := validModel(m); err != nil {
			return err
		}
	}
	return nil
}

// validAccount checks an account pin's form (not that the account exists:
// the vault knows that).
func validAccount(a string) bool {
	if len(a) > 64 {
		return false
	}
	for _, r := range a {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// validModel checks one allowlist entry.
func validModel(m string) error {
	if m == "" || len(m) > maxModelLen {
		return invalid("model names must be 1 to %d characters", maxModelLen)
	}
	for _, r := range m {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("._-:*?[]^!", r)
		if !ok {
			return invalid("model %q: use lower-case letters, digits, . _ - : and the glob characters * ? [ ]", m)
		}
	}
	if _, err := path.Match(m, ""); err != nil {
		return invalid("model pattern %q is malformed", m)
	}
	return nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Expired reports whether the key has expired at now.
func (p Policy) Expired(now time.Time) bool {
	return !p.Expires.IsZero() && !now.Before(p.Expires)
}

// AllowsModel reports whether the policy lets the key use model, the
// resolved upstream slug (alias and effort suffix already applied).
func (p Policy) AllowsModel(model string) bool {
	if len(p.Models) == 0 {
		return true
	}
	model = strings.ToLower(strings.TrimSpace(model))
	for _, pat := range p.Models {
		if pat == model {
			return true
		}
		if ok, _ := path.Match(pat, model); ok {
			return true
		}
	}
	return false
}

// NormalizeModels lower-cases the allowlist, resolves plain names with
// resolve (alias → catalog name; nil keeps them), drops duplicates and
// sorts it. Glob patterns are kept as written.
func NormalizeModels(models []string, resolve func(string) string) []string {
	var out []string
	for _, m := range models {
		m = strings.ToLower(strings.TrimSpace(m))
		if m == "" {
			continue
		}
		if resolve != nil && !strings.ContainsAny(m, "*?[") {
			if r := strings.ToLower(resolve(m)); r != "" {
				m = r
			}
		}
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	slices.Sort(out)
	return out
}
