package dashboard

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Defaults for the zero values of OIDCConfig.
const (
	DefaultOIDCLabel = "Sign in with SSO"
)

// DefaultOIDCScopes are the scopes asked for when OIDCConfig.Scopes is
// empty: the ID token then names the user's email and whether it is
// verified.
var DefaultOIDCScopes = []string{"openid", "email", "profile"}

// OIDCConfig configures single sign-on with OpenID Connect (the
// authorization code flow with PKCE). Issuer and ClientID are required;
// the zero value of every other field is documented with it. Nothing here
// contacts the provider: its discovery document is fetched at the first
// sign-in, and fetched again at the next one while it fails.
type OIDCConfig struct {
	// Issuer is the provider's issuer URL (https://accounts.example.com,
	// or http on a loopback address for development); its
	// /.well-known/openid-configuration must name the same issuer.
	Issuer string `json:"issuer"`
	// ClientID is this site's client registration at the provider; ID
	// tokens must name it as their audience.
	ClientID string `json:"client_id"`
	// ClientSecret authenticates the client at the token endpoint; empty
	// for a public client (PKCE alone). Give it as a placeholder such as
	// {env.OIDC_CLIENT_SECRET}; the glue resolves it.
	ClientSecret string `json:"client_secret,omitempty"`
	// Domains, when set, are the only email domains that may sign in by
	// SSO ("example.com", exact, any case); others get a refusal page.
	// Empty: any verified address (the sign-up policy still decides who
	// may create an account).
	Domains []string `json:"domains,omitempty"`
	// Scopes asked for; DefaultOIDCScopes when empty. openid is added
	// when missing.
	Scopes []string `json:"scopes,omitempty"`
	// AdminClaim names the ID token claim that makes a user an admin, and
	// AdminValue the value it must be ("codex-admins") or, for an array
	// claim such as groups, contain. With AdminValue empty the claim must
	// be the boolean true. Empty AdminClaim: nobody is admin by claim.
	AdminClaim string `json:"admin_claim,omitempty"`
	AdminValue string `json:"admin_value,omitempty"`
	// EmailLinksOff removes sign-in by email link: the sign-in page shows
	// only the SSO button and the magic-link endpoints answer 404. Off
	// (the zero value) keeps both ways in.
	EmailLinksOff bool `json:"email_links_off,omitempty"`
	// Label is the button's text (default DefaultOIDCLabel).
	Label string `json:"label,omitempty"`
}

// Validate checks the configuration without contacting the provider.
func (c *OIDCConfig) Validate() error {
	if c.Issuer == "" {
		return errors.New("dashboard: oidc needs an issuer URL")
	}
	u, err := url.Parse(c.Issuer)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("dashboard: oidc issuer %q is not an absolute URL without query", c.Issuer)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && loopbackHost(u.Host):
	default:
		return fmt.Errorf("dashboard: oidc issuer %q must use https (http only on a loopback address)", c.Issuer)
	}
	if c.ClientID == "" {
		return errors.New("dashboard: oidc needs a client_id")
	}
	for _, d := range c.Domains {
		d = strings.TrimPrefix(strings.TrimSpace(d), "@")
		if d == "" || strings.ContainsAny(d, "@/ \t") || !strings.Contains(d, ".") {
			return fmt.Errorf("dashboard: oidc domain %q is not a domain", d)
		}
	}
	for _, s := range c.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\"") {
			return fmt.Errorf("dashboard: oidc scope %q is not a scope", s)
		}
	}
	if c.AdminValue != "" && c.AdminClaim == "" {
		return errors.New("dashboard: oidc admin_value needs admin_claim")
	}
	if len(c.Label) > 100 {
		return errors.New("dashboard: oidc label is longer than 100 characters")
	}
	return nil
}

// scopes is Scopes or the default, with openid first.
func (c *OIDCConfig) scopes() []string {
	s := c.Scopes
	if len(s) == 0 {
		s = DefaultOIDCScopes
	}
	if !slices.Contains(s, "openid") {
		s = append([]string{"openid"}, s...)
	}
	return s
}

// label is Label or the default.
func (c *OIDCConfig) label() string {
	if c.Label == "" {
		return DefaultOIDCLabel
	}
	return c.Label
}

// domainAllowed reports whether email (normalised) may sign in by SSO.
func (c *OIDCConfig) domainAllowed(email string) bool {
	if len(c.Domains) == 0 {
		return true
	}
	return SignupPolicy{Mode: SignupDomains, Domains: c.Domains}.Allows(email)
}

// SetOption sets one Caddyfile subdirective of the oidc block from its
// arguments, so the Caddy glue is a loop:
//
//	client_id     <id>
//	client_secret <secret or {env.NAME}>
//	domains       <domain>...
//	scopes        <scope>...
//	admin_claim   <claim> [<value>]
//	email_links   on|off
//	label         <text>
func (c *OIDCConfig) SetOption(name string, args []string) error {
	one := func(dst *string) error {
		if len(args) != 1 {
			return fmt.Errorf("oidc %s takes one value", name)
		}
		*dst = args[0]
		return nil
	}
	switch name {
	case "client_id":
		return one(&c.ClientID)
	case "client_secret":
		return one(&c.ClientSecret)
	case "label":
		return one(&c.Label)
	case "domains":
		if len(args) == 0 {
			return errors.New("oidc domains needs at least one domain")
		}
		c.Domains = append(c.Domains, args...)
	case "scopes":
		if len(args) == 0 {
			return errors.New("oidc scopes needs at least one scope")
		}
		c.Scopes = append(c.Scopes, args...)
	case "admin_claim":
		if len(args) < 1 || len(args) > 2 {
			return errors.New("oidc admin_claim takes a claim and, optionally, the value it must be or contain")
		}
		c.AdminClaim = args[0]
		if len(args) == 2 {
			c.AdminValue = args[1]
		}
	case "email_links":
		if len(args) != 1 || (args[0] != "on" && args[0] != "off") {
			return errors.New("oidc email_links takes on or off")
		}
		c.EmailLinksOff = args[0] == "off"
	default:
		return fmt.Errorf("unrecognized oidc subdirective %q", name)
	}
	return nil
}

// Resolve returns a copy of c whose placeholder-bearing fields (the
// issuer, the client id and the client secret) went through replace; nil
// for a nil c. A client secret that was given but replaces to nothing (an
// unset environment variable) is an error, not a public client.
func (c *OIDCConfig) Resolve(replace func(string) string) (*OIDCConfig, error) {
	if c == nil {
		return nil, nil
	}
	o := *c
	o.Issuer, o.ClientID, o.ClientSecret = replace(c.Issuer), replace(c.ClientID), replace(c.ClientSecret)
	o.Domains, o.Scopes = slices.Clone(c.Domains), slices.Clone(c.Scopes)
	if c.ClientSecret != "" && o.ClientSecret == "" {
		return nil, fmt.Errorf("dashboard: oidc client_secret %q is empty once its placeholders are replaced", c.ClientSecret)
	}
	return &o, nil
}
