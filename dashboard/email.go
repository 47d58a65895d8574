package dashboard

import (
	"net/mail"
	"strings"
)

// maxEmailLen is the longest address a mail path can carry (RFC 5321).
const (
	maxEmailLen = 254
	maxLocalLen = 64
)

// Problems checkEmail reports, in plain words for the sign-in page.
const (
	emailEmpty     = "Enter your email address."
	emailTooLong   = "That address is too long. Email addresses have at most 254 characters."
	emailBareOnly  = "Enter just the address, like name@example.com, without a name, quotes or brackets."
	emailOneAt     = "An email address has exactly one @, like name@example.com."
	emailLocal     = "The part before the @ may use letters, digits and . _ % + - ' only, and cannot start or end with a dot or have two dots in a row."
	emailDomain    = "The part after the @ must be a domain name like example.com."
	emailLocalhost = "Addresses at localhost are accepted only in development mode. Use an address with a domain like example.com."
)

// checkEmail applies the sign-in address policy and returns the address in
// lower case, or a message saying what is wrong. The policy is narrower than
// RFC 5322 on purpose: the address goes into mail headers, logs and the
// vault, so it must be the bare address net/mail parses back unchanged (no
// display name, quotes, comments or angle brackets), with one @, a local
// part of common characters and a DNS domain with a dot (localhost only
// when allowLocalhost, for development).
func checkEmail(raw string, allowLocalhost bool) (string, string) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", emailEmpty
	}
	if len(s) > maxEmailLen {
		return "", emailTooLong
	}
	if strings.Count(s, "@") != 1 {
		if strings.ContainsAny(s, "<>\"()") {
			return "", emailBareOnly
		}
		return "", emailOneAt
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return "", emailBareOnly
	}
	at := strings.IndexByte(s, '@')
	local, domain := s[:at], strings.ToLower(s[at+1:])
	if !validLocal(local) {
		return "", emailLocal
	}
	if domain == "localhost" {
		if !allowLocalhost {
			return "", emailLocalhost
		}
	} else if !validDomain(domain) {
		return "", emailDomain
	}
	return strings.ToLower(local) + "@" + domain, ""
}

// validLocal: 1–64 of [A-Za-z0-9._%+'-], no dot at either end, no "..".
func validLocal(s string) bool {
	if s == "" || len(s) > maxLocalLen || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("._%+-'", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validDomain: two or more DNS labels of [a-z0-9-] (1–63, no hyphen at
// either end) and a top-level label that is not all digits.
func validDomain(s string) bool {
	labels := strings.Split(s, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	tld := labels[len(labels)-1]
	return strings.Trim(tld, "0123456789") != ""
}
