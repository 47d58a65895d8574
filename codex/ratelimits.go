package codex

import (
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// RateLimits is the usage snapshot the backend sends in x-codex-* headers on
// every response, successful or not (docs/protocol.md#rate-limit-headers).
type RateLimits struct {
	// PlanType is x-codex-plan-type (plus, pro, team, …).
	PlanType string
	// ActiveLimit is x-codex-active-limit, the limit currently enforced.
	ActiveLimit string
	// Primary is the short window (observed 300 minutes); nil when absent.
	Primary *RateWindow
	// Secondary is the long window (observed 10080 minutes); nil when absent.
	Secondary *RateWindow
	// Credits is the credit balance; nil when absent.
	Credits *Credits
	// Families are the other rate-limit families the backend reports
	// (x-<family>-primary-used-percent …, such as a model's own limit),
	// by id; nil when it reports none but codex's.
	Families []RateFamily
}

// RateFamily is one rate-limit family beside codex's own windows.
type RateFamily struct {
	// ID is the family as the headers name it, lower case
	// ("codex-bengalfox" from x-codex-bengalfox-primary-used-percent).
	ID string
	// Name is x-<family>-limit-name, the limit's display name; "" when
	// absent.
	Name string
	// Primary and Secondary are its windows; nil when absent.
	Primary, Secondary *RateWindow
}

// maxFamilies bounds the families kept from one answer's headers.
const maxFamilies = 8

// RateWindow is one usage window.
type RateWindow struct {
	// UsedPercent is how much of the window is used, 0-100.
	UsedPercent float64
	// WindowMinutes is the window length.
	WindowMinutes int
	// ResetAt is when the window resets: from -reset-at, else computed from
	// -reset-after-seconds at parse time; zero when unknown.
	ResetAt time.Time
	// ResetAfter is -reset-after-seconds as sent; zero when absent.
	ResetAfter time.Duration
}

// Credits is the account's credit state.
type Credits struct {
	HasCredits bool
	Unlimited  bool
	// Balance is kept as sent (a decimal string).
	Balance string
}

const rlPrefix = "X-Codex-"

// ParseRateLimits reads the x-codex rate-limit headers. ok is false when
// none of them is present and valid. Malformed values are ignored.
func ParseRateLimits(h http.Header) (rl RateLimits, ok bool) {
	return parseRateLimits(h, time.Now())
}

func parseRateLimits(h http.Header, now time.Time) (RateLimits, bool) {
	var rl RateLimits
	rl.PlanType = headerToken(h.Get(rlPrefix + "Plan-Type"))
	rl.ActiveLimit = headerToken(h.Get(rlPrefix + "Active-Limit"))
	rl.Primary = parseWindow(h, "Primary", now)
	rl.Secondary = parseWindow(h, "Secondary", now)

	var cr Credits
	hasC, okHas := parseBool(h.Get(rlPrefix + "Credits-Has-Credits"))
	unl, okUnl := parseBool(h.Get(rlPrefix + "Credits-Unlimited"))
	bal := strings.TrimSpace(h.Get(rlPrefix + "Credits-Balance"))
	if _, err := strconv.ParseFloat(bal, 64); err != nil || len(bal) > 32 {
		bal = ""
	}
	if okHas || okUnl || bal != "" {
		cr.HasCredits, cr.Unlimited, cr.Balance = hasC, unl, bal
		rl.Credits = &cr
	}
	rl.Families = parseFamilies(h, now)
	ok := rl.Primary != nil || rl.Secondary != nil || rl.Credits != nil || rl.PlanType != "" || rl.ActiveLimit != "" || rl.Families != nil
	return rl, ok
}

// parseFamilies finds the families other than codex that report a window
// (x-<family>-primary-… or x-<family>-secondary-…), sorted by id, at most
// maxFamilies of them.
func parseFamilies(h http.Header, now time.Time) []RateFamily {
	ids := map[string]bool{}
	for k := range h {
		lk := strings.ToLower(k)
		if !strings.HasPrefix(lk, "x-") {
			continue
		}
		for _, side := range []string{"-primary-", "-secondary-"} {
			if i := strings.LastIndex(lk, side); i > 2 && strings.HasSuffix(lk, side+"used-percent") {
				if id := lk[2:i]; id != "codex" && validFamily(id) {
					ids[id] = true
				}
			}
		}
	}
	if len(ids) == 0 {
		return nil
	}
	sorted := make([]string, 0, len(ids))
	for id := range ids {
		sorted = append(sorted, id)
	}
	slices.Sort(sorted)
	var out []RateFamily
	for _, id := range sorted[:min(len(sorted), maxFamilies)] {
		p := "X-" + id + "-"
		f := RateFamily{ID: id, Name: headerToken(h.Get(p + "Limit-Name")),
			Primary: parseWindowAt(h, p+"Primary-", now), Secondary: parseWindowAt(h, p+"Secondary-", now)}
		if f.Primary != nil || f.Secondary != nil {
			out = append(out, f)
		}
	}
	return out
}

// validFamily accepts short lower-case ids of letters, digits, - and _.
func validFamily(id string) bool {
	if id == "" || len(id) > 48 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// parseWindow reads x-codex-<which>-used-percent, -window-minutes,
// -reset-at and -reset-after-seconds; nil when none is valid.
func parseWindow(h http.Header, which string, now time.Time) *RateWindow {
	return parseWindowAt(h, rlPrefix+which+"-", now)
}

// parseWindowAt is parseWindow for the headers starting with p.
func parseWindowAt(h http.Header, p string, now time.Time) *RateWindow {
	var w RateWindow
	found := false
	if f, ok := parseFloat(h.Get(p + "Used-Percent")); ok && f >= 0 && f <= 1e6 {
		w.UsedPercent, found = f, true
	}
	if f, ok := parseFloat(h.Get(p + "Window-Minutes")); ok && f >= 0 && f < 1e8 {
		w.WindowMinutes, found = int(f), true
	}
	if f, ok := parseFloat(h.Get(p + "Reset-After-Seconds")); ok && f >= 0 && f < 1e9 {
		w.ResetAfter, found = time.Duration(f*float64(time.Second)), true
		w.ResetAt = now.Add(w.ResetAfter).Truncate(time.Second).UTC()
	}
	if f, ok := parseFloat(h.Get(p + "Reset-At")); ok && f > 0 && f < 1e11 {
		w.ResetAt, found = time.Unix(int64(f), 0).UTC(), true
	}
	if !found {
		return nil
	}
	return &w
}

func parseFloat(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// parseBool accepts true/false/1/0 in any case; the backend sends True/False.
func parseBool(s string) (v, ok bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1":
		return true, true
	case "false", "0":
		return false, true
	}
	return false, false
}

// headerToken keeps short printable values only.
func headerToken(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 64 || !validHeaderValue(s) {
		return ""
	}
	return s
}

// PassHeaders copies every x-codex-* header from src to dst so downstream
// clients can see their usage (docs/protocol.md#rate-limit-headers). Existing dst values are replaced.
func PassHeaders(dst, src http.Header) {
	for k, vs := range src {
		if len(k) >= len(rlPrefix) && strings.EqualFold(k[:len(rlPrefix)], rlPrefix) {
			dst[http.CanonicalHeaderKey(k)] = slices.Clone(vs)
		}
	}
}
