package keypolicy

import (
	"strconv"
	"strings"
	"time"
)

// Fields are the names a policy change is given with: CLI flags (with
// "--"), form fields and admin API keys alike.
const (
	FieldExpires       = "expires"
	FieldModels        = "models"
	FieldRPM           = "rpm"
	FieldConcurrency   = "concurrency"
	FieldTokensPerDay  = "tokens-per-day"
	FieldTokensPerWeek = "tokens-per-week"
	FieldMaxEffort     = "max-effort"
	FieldAccount       = "account"
	FieldImages        = "images"
	FieldServiceTier   = "service-tier"
)

// FieldNames lists every field, in the order they are documented.
var FieldNames = []string{FieldExpires, FieldModels, FieldRPM, FieldConcurrency, FieldTokensPerDay, FieldTokensPerWeek, FieldMaxEffort, FieldAccount, FieldImages, FieldServiceTier}

// Set changes one field of p from its text form and returns the result.
// Clearing a limit: "" or "0" for the numbers, "never" (or "") for the
// expiry, "" for the models and the effort ceiling. Expiry takes a
// duration from now ("3s", "12h", "30d", "2w"), a date ("2027-01-31": the
// key works through that UTC day) or an RFC 3339 time. models is a comma-
// separated list; resolve maps a plain name to its catalog name (nil keeps
// it). The result is not validated: call Validate.
func Set(p Policy, field, value string, now time.Time, resolve func(string) string) (Policy, error) {
	p = p.Clone()
	value = strings.TrimSpace(value)
	var err error
	switch field {
	case FieldExpires:
		p.Expires, err = ParseExpires(value, now)
	case FieldModels:
		p.Models = NormalizeModels(strings.Split(value, ","), resolve)
	case FieldRPM:
		p.RPM, err = parseCount(field, value, MaxRPM)
	case FieldConcurrency:
		p.Concurrency, err = parseCount(field, value, MaxConcurrency)
	case FieldTokensPerDay:
		p.TokensPerDay, err = parseTokens(field, value)
	case FieldTokensPerWeek:
		p.TokensPerWeek, err = parseTokens(field, value)
	case FieldMaxEffort:
		p.MaxEffort = strings.ToLower(value)
		if p.MaxEffort == "extra-high" || p.MaxEffort == "extra" {
			p.MaxEffort = "xhigh"
		}
	case FieldAccount:
		p.Account = strings.ToLower(value)
	case FieldImages:
		switch strings.ToLower(value) {
		case "", "allow", "yes", "true", "on":
			p.DenyImages = false
		case "deny", "no", "false", "off":
			p.DenyImages = true
		default:
			err = invalid("images must be allow or deny, not %q", value)
		}
	case FieldServiceTier:
		switch v := strings.ToLower(value); v {
		case "", "allow":
			p.ServiceTier = ""
		case TierDeny, TierForce:
			p.ServiceTier = v
		default:
			err = invalid("service-tier must be allow, deny or force, not %q", value)
		}
	default:
		return p, invalid("unknown policy field %q", field)
	}
	return p, err
}

// ParseExpires reads an expiry; "", "never" and "none" mean none.
func ParseExpires(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "", "never", "none", "0":
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t.AddDate(0, 0, 1).UTC(), nil // through the end of that day
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	d, err := parseDuration(s)
	if err != nil || d <= 0 {
		return time.Time{}, invalid("expiry %q: use a duration (3s, 12h, 30d, 2w), a date (2027-01-31), an RFC 3339 time, or never", s)
	}
	return now.Add(d).UTC().Truncate(time.Second), nil
}

// parseDuration is time.ParseDuration plus whole days (d) and weeks (w).
func parseDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		return time.Duration(days) * 24 * time.Hour, err
	}
	if n, ok := strings.CutSuffix(s, "w"); ok {
		weeks, err := strconv.Atoi(n)
		return time.Duration(weeks) * 7 * 24 * time.Hour, err
	}
	return time.ParseDuration(s)
}

func parseCount(field, s string, limit int) (int, error) {
	n, err := parseTokens(field, s)
	if err != nil {
		return 0, err
	}
	if n > int64(limit) {
		return 0, invalid("%s must be at most %d", field, limit)
	}
	return int(n), nil
}

// parseTokens reads a non-negative count; "" is 0. Underscores and
// thousands separators (2_000_000, 2,000,000) are accepted.
func parseTokens(field, s string) (int64, error) {
	s = strings.NewReplacer("_", "", ",", "").Replace(s)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > MaxTokens {
		return 0, invalid("%s must be a whole number from 0 (no limit) to %d, not %q", field, int64(MaxTokens), s)
	}
	return n, nil
}

// Text returns the text form of one field, as Set reads it ("" when the
// field sets no limit); forms show it.
func (p Policy) Text(field string) string {
	switch field {
	case FieldExpires:
		if p.Expires.IsZero() {
			return ""
		}
		return p.Expires.UTC().Format(time.RFC3339)
	case FieldModels:
		return strings.Join(p.Models, ",")
	case FieldRPM:
		return countText(int64(p.RPM))
	case FieldConcurrency:
		return countText(int64(p.Concurrency))
	case FieldTokensPerDay:
		return countText(p.TokensPerDay)
	case FieldTokensPerWeek:
		return countText(p.TokensPerWeek)
	case FieldMaxEffort:
		return p.MaxEffort
	case FieldAccount:
		return p.Account
	case FieldImages:
		if p.DenyImages {
			return "deny"
		}
	case FieldServiceTier:
		return p.ServiceTier
	}
	return ""
}

func countText(n int64) string {
	if n == 0 {
		return ""
	}
	return strconv.FormatInt(n, 10)
}
