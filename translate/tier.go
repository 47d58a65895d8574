package translate

import (
	"bytes"
	"encoding/json"
	"strings"
)

// Service-tier policies of an API key (RequestOptions.Tier).
const (
	// TierAllow passes the client's tier (the zero value, "", means the same).
	TierAllow = "allow"
	// TierDeny never sends the Fast tier: the request runs on the default.
	TierDeny = "deny"
	// TierForce sends every request on the Fast tier.
	TierForce = "force"
)

// TierPriority is the only tier the backend accepts by name: "Fast", twice
// the speed at a higher usage cost. It refuses "fast" ("Unsupported
// service_tier: fast"), which clients also send.
const TierPriority = "priority"

// pickServiceTier returns the tier the client asked for (lower case, ""
// when none) and the one to send: "fast" and "priority" become
// "priority"; "auto" and "default" mean the account's default and send
// nothing; other tiers (flex, scale) are dropped because the backend knows
// none of them. A request naming no tier gets the model's default, then the
// key's policy applies. Never an error: a tier is a preference.
func pickServiceTier(raw json.RawMessage, upstream string, opts RequestOptions, drops *dropSet) (requested, sent string, _ *Error) {
	if r := bytes.TrimSpace(raw); len(r) > 0 && !isNullRaw(r) {
		var s string
		if r[0] != '"' || json.Unmarshal(r, &s) != nil {
			drops.add("service_tier")
		} else {
			requested = strings.ToLower(strings.TrimSpace(s))
		}
	}
	switch requested {
	case "fast", TierPriority:
		sent = TierPriority
	case "", "auto", "default":
		if requested == "" && opts.ModelTiers[upstream] == TierPriority {
			sent = TierPriority
		}
	default:
		drops.add("service_tier")
	}
	switch opts.Tier {
	case TierDeny:
		sent = ""
	case TierForce:
		sent = TierPriority
	}
	return requested, sent, nil
}
