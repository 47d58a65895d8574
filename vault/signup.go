package vault

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// The sign-up policy: who may create an account by signing in. The config
// (the Caddyfile's `signup`) sets one per site; an operator may override
// it for every instance sharing the vault at once (SetSignupOverride,
// settings.go). The type lives here, beside the users it admits, so the
// dashboard, the operator use cases and the config all check it with the
// same code and the same messages.

// SignupMode says who may create an account by signing in.
type SignupMode string

// Sign-up modes.
const (
	// SignupClosed (the default) lets only existing users (created with
	// the CLI, the admin API or an admin's invitation) sign in.
	SignupClosed SignupMode = "closed"
	// SignupOpen lets anyone with an email address sign up.
	SignupOpen SignupMode = "open"
	// SignupDomains lets addresses in Domains sign up.
	SignupDomains SignupMode = "domains"
)

// ErrBadSignup is what SignupPolicy.Validate's errors match (errors.Is);
// their text is the reason alone.
var ErrBadSignup = errors.New("bad sign-up policy")

// signupError is one of Validate's errors.
type signupError string

func (e signupError) Error() string        { return string(e) }
func (e signupError) Is(target error) bool { return target == ErrBadSignup }

// SignupPolicy decides whether an unknown email may become a user. The
// zero value is closed.
type SignupPolicy struct {
	Mode SignupMode `json:"mode"`
	// Domains are, for SignupDomains, the domains whose addresses may sign
	// up: "example.com" (exact match, any case, a leading @ ignored).
	Domains []string `json:"domains,omitempty"`
}

// Allows reports whether a new account may be created for email (already
// normalised, see NormalizeEmail).
func (p SignupPolicy) Allows(email string) bool {
	switch p.Mode {
	case SignupOpen:
		return true
	case SignupDomains:
		at := strings.LastIndexByte(email, '@')
		if at < 0 {
			return false
		}
		domain := email[at+1:]
		for _, d := range p.Domains {
			if strings.EqualFold(cleanDomain(d), domain) {
				return true
			}
		}
	}
	return false
}

// Validate checks the policy; its errors match ErrBadSignup and are written
// for the operator who typed the policy, without a package prefix.
func (p SignupPolicy) Validate() error {
	bad := func(format string, args ...any) error {
		return signupError(fmt.Sprintf(format, args...))
	}
	switch p.Mode {
	case "", SignupClosed, SignupOpen:
		if len(p.Domains) > 0 {
			return bad("sign-up domains need mode %q", SignupDomains)
		}
	case SignupDomains:
		if len(p.Domains) == 0 {
			return bad("sign-up mode domains needs at least one domain")
		}
		if len(p.Domains) > maxSignupDomains {
			return bad("at most %d sign-up domains", maxSignupDomains)
		}
		for _, d := range p.Domains {
			c := cleanDomain(d)
			if c == "" || len(c) > 253 || strings.ContainsAny(c, "@/ \t\r\n,;\"'<>") || !strings.Contains(c, ".") {
				return bad("%q is not a domain", d)
			}
		}
	default:
		return bad("unknown sign-up mode %q (open, closed or domains)", p.Mode)
	}
	return nil
}

// maxSignupDomains bounds a policy's domains, so a stored override stays
// small.
const maxSignupDomains = 100

// Normalized is the policy as it is stored and shown: the mode "closed"
// for the zero value, domains lower-case without a leading @, sorted,
// without duplicates.
func (p SignupPolicy) Normalized() SignupPolicy {
	out := SignupPolicy{Mode: p.Mode}
	if out.Mode == "" {
		out.Mode = SignupClosed
	}
	for _, d := range p.Domains {
		out.Domains = append(out.Domains, strings.ToLower(cleanDomain(d)))
	}
	slices.Sort(out.Domains)
	out.Domains = slices.Compact(out.Domains)
	return out
}

// String is the policy as the Caddyfile writes it: "open", "closed" or
// "domains a.com b.org".
func (p SignupPolicy) String() string {
	p = p.Normalized()
	return strings.Join(append([]string{string(p.Mode)}, p.Domains...), " ")
}

// ParseSignupPolicy reads the Caddyfile's form, words as String writes
// them (a mode, then for domains the domains), and validates it.
func ParseSignupPolicy(words []string) (SignupPolicy, error) {
	if len(words) == 0 || strings.TrimSpace(words[0]) == "" {
		return SignupPolicy{}, signupError("a sign-up mode is needed (open, closed or domains)")
	}
	p := SignupPolicy{Mode: SignupMode(strings.ToLower(strings.TrimSpace(words[0]))), Domains: words[1:]}
	if len(p.Domains) == 0 {
		p.Domains = nil
	}
	if err := p.Validate(); err != nil {
		return SignupPolicy{}, err
	}
	return p.Normalized(), nil
}

// cleanDomain trims a domain as the policy compares it.
func cleanDomain(d string) string { return strings.TrimPrefix(strings.TrimSpace(d), "@") }
