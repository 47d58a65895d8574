package codex

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestParseRateLimits(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	h := http.Header{}
	h.Set("X-Codex-Plan-Type", "plus")
	h.Set("X-Codex-Active-Limit", "premium")
	h.Set("X-Codex-Primary-Used-Percent", "12.5")
	h.Set("X-Codex-Primary-Window-Minutes", "300")
	h.Set("X-Codex-Primary-Reset-At", "1700003600")
	h.Set("X-Codex-Primary-Reset-After-Seconds", "3599")
	h.Set("X-Codex-Secondary-Used-Percent", "80")
	h.Set("X-Codex-Secondary-Window-Minutes", "10080")
	h.Set("X-Codex-Secondary-Reset-After-Seconds", "60")
	h.Set("X-Codex-Credits-Has-Credits", "True")
	h.Set("X-Codex-Credits-Unlimited", "0")
	h.Set("X-Codex-Credits-Balance", "12.50")
	rl, ok := parseRateLimits(h, now)
	if !ok || rl.PlanType != "plus" || rl.ActiveLimit != "premium" {
		t.Fatalf("%+v", rl)
	}
	p := rl.Primary
	if p == nil || p.UsedPercent != 12.5 || p.WindowMinutes != 300 || !p.ResetAt.Equal(time.Unix(1700003600, 0)) || p.ResetAfter != 3599*time.Second {
		t.Fatalf("primary %+v", p)
	}
	s := rl.Secondary
	if s == nil || s.UsedPercent != 80 || s.WindowMinutes != 10080 || !s.ResetAt.Equal(now.Add(time.Minute)) {
		t.Fatalf("secondary %+v", s)
	}
	if c := rl.Credits; c == nil || !c.HasCredits || c.Unlimited || c.Balance != "12.50" {
		t.Fatalf("credits %+v", c)
	}
}

func TestParseRateLimitsPartialAndInvalid(t *testing.T) {
	tests := []struct {
		name    string
		kv      []string
		ok      bool
		primary bool
		credits bool
	}{
		{"none", nil, false, false, false},
		{"unrelated", []string{"X-Other", "1"}, false, false, false},
		{"garbage", []string{"X-Codex-Primary-Used-Percent", "abc", "X-Codex-Credits-Has-Credits", "maybe", "X-Codex-Credits-Balance", "lots"}, false, false, false},
		{"nan", []string{"X-Codex-Primary-Used-Percent", "NaN", "X-Codex-Primary-Reset-At", "-5"}, false, false, false},
		{"credits only", []string{"X-Codex-Credits-Unlimited", "TRUE"}, true, false, true},
		{"window only", []string{"X-Codex-Primary-Window-Minutes", "300"}, true, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for i := 0; i < len(tc.kv); i += 2 {
				h.Set(tc.kv[i], tc.kv[i+1])
			}
			rl, ok := ParseRateLimits(h)
			if ok != tc.ok || (rl.Primary != nil) != tc.primary || (rl.Credits != nil) != tc.credits {
				t.Fatalf("ok %v %+v", ok, rl)
			}
		})
	}
}

func TestPassHeaders(t *testing.T) {
	src := http.Header{}
	src.Set("X-Codex-Primary-Used-Percent", "5")
	src["x-codex-turn-state"] = []string{"abc"}
	src.Set("Authorization", "Bearer secret")
	src.Set("Set-Cookie", "__cf_bm=1")
	src.Set("X-Codex", "short")
	dst := http.Header{}
	dst.Set("X-Codex-Primary-Used-Percent", "old")
	PassHeaders(dst, src)
	if dst.Get("X-Codex-Primary-Used-Percent") != "5" || dst.Get("X-Codex-Turn-State") != "abc" {
		t.Fatalf("dst %v", dst)
	}
	if dst.Get("Authorization") != "" || dst.Get("Set-Cookie") != "" || dst.Get("X-Codex") != "" {
		t.Fatalf("copied too much: %v", dst)
	}
	src.Set("X-Codex-Primary-Used-Percent", "6")
	if dst.Get("X-Codex-Primary-Used-Percent") != "5" {
		t.Fatal("values shared with src")
	}
}

func FuzzParseRateLimits(f *testing.F) {
	f.Add("12.5", "300", "1777936568", "13873", "True", "0", "1.5")
	f.Add("NaN", "-1", "1e300", "Inf", "maybe", "", "x")
	f.Add("", "", "", "", "", "", "")
	f.Fuzz(func(t *testing.T, used, window, resetAt, resetAfter, has, unl, bal string) {
		h := http.Header{}
		h["X-Codex-Primary-Used-Percent"] = []string{used}
		h["X-Codex-Primary-Window-Minutes"] = []string{window}
		h["X-Codex-Primary-Reset-At"] = []string{resetAt}
		h["X-Codex-Primary-Reset-After-Seconds"] = []string{resetAfter}
		h["X-Codex-Secondary-Used-Percent"] = []string{resetAfter}
		h["X-Codex-Credits-Has-Credits"] = []string{has}
		h["X-Codex-Credits-Unlimited"] = []string{unl}
		h["X-Codex-Credits-Balance"] = []string{bal}
		h["X-Codex-Plan-Type"] = []string{bal}
		rl, ok := ParseRateLimits(h)
		if !ok && (rl.Primary != nil || rl.Secondary != nil || rl.Credits != nil) {
			t.Fatal("parts without ok")
		}
		for _, w := range []*RateWindow{rl.Primary, rl.Secondary} {
			if w != nil && (w.UsedPercent < 0 || w.WindowMinutes < 0 || w.ResetAfter < 0) {
				t.Fatalf("window %+v", w)
			}
		}
		if !validHeaderValue(rl.PlanType) {
			t.Fatalf("plan %q", rl.PlanType)
		}
	})
}

// Rate-limit families beside codex's own (x-<family>-primary-…) are kept
// by id with their display name; codex's windows stay where they were, and
// malformed or unbounded family names are ignored.
func TestParseRateLimitFamilies(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	h := http.Header{}
	h.Set("X-Codex-Primary-Used-Percent", "10")
	h.Set("X-Codex-Bengalfox-Primary-Used-Percent", "55.5")
	h.Set("X-Codex-Bengalfox-Primary-Window-Minutes", "300")
	h.Set("X-Codex-Bengalfox-Secondary-Used-Percent", "20")
	h.Set("X-Codex-Bengalfox-Secondary-Reset-At", "1700086400")
	h.Set("X-Codex-Bengalfox-Limit-Name", "GPT-6-Astra")
	h.Set("X-Premium-Secondary-Used-Percent", "99")
	h.Set("X-Bad!Family-Primary-Used-Percent", "5")
	h.Set("X-"+strings.Repeat("a", 60)+"-Primary-Used-Percent", "5")
	h.Set("X-Gone-Primary-Used-Percent", "abc") // no valid window: dropped
	rl, ok := parseRateLimits(h, now)
	if !ok || rl.Primary == nil || rl.Primary.UsedPercent != 10 {
		t.Fatalf("codex windows %+v", rl)
	}
	if len(rl.Families) != 2 {
		t.Fatalf("families %+v", rl.Families)
	}
	bf, pr := rl.Families[0], rl.Families[1]
	if bf.ID != "codex-bengalfox" || bf.Name != "GPT-6-Astra" || bf.Primary == nil || bf.Primary.UsedPercent != 55.5 || bf.Primary.WindowMinutes != 300 ||
		bf.Secondary == nil || !bf.Secondary.ResetAt.Equal(time.Unix(1700086400, 0)) {
		t.Fatalf("bengalfox %+v", bf)
	}
	if pr.ID != "premium" || pr.Primary != nil || pr.Secondary == nil || pr.Secondary.UsedPercent != 99 {
		t.Fatalf("premium %+v", pr)
	}
	// A family alone is a snapshot.
	if rl, ok := parseRateLimits(http.Header{"X-Premium-Primary-Used-Percent": {"3"}}, now); !ok || len(rl.Families) != 1 {
		t.Fatalf("family only: %v %+v", ok, rl)
	}
	// At most maxFamilies.
	many := http.Header{}
	for i := range 20 {
		many.Set(fmt.Sprintf("X-F%02d-Primary-Used-Percent", i), "1")
	}
	if rl, _ := parseRateLimits(many, now); len(rl.Families) != maxFamilies || rl.Families[0].ID != "f00" {
		t.Fatalf("%d families kept", len(rl.Families))
	}
}

// FuzzRateLimitFamilies feeds arbitrary header names and values: families
// stay bounded in number and id, their names are printable, and their
// windows in range.
func FuzzRateLimitFamilies(f *testing.F) {
	f.Add("X-Codex-Bengalfox-Primary-Used-Percent", "55", "X-Codex-Bengalfox-Limit-Name", "GPT-6-Astra")
	f.Add("x--primary-used-percent", "1", "x-a-secondary-used-percent", "NaN")
	f.Add("X-\x00-Primary-Used-Percent", "1e400", "X-Codex-Primary-Used-Percent", "3")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		h := http.Header{}
		h[k1] = []string{v1}
		h[k2] = []string{v2}
		h[http.CanonicalHeaderKey(k1)] = []string{v1}
		rl, _ := ParseRateLimits(h)
		if len(rl.Families) > maxFamilies {
			t.Fatalf("%d families", len(rl.Families))
		}
		for _, fam := range rl.Families {
			if !validFamily(fam.ID) || fam.ID == "codex" || !validHeaderValue(fam.Name) || fam.Primary == nil && fam.Secondary == nil {
				t.Fatalf("family %+v", fam)
			}
			for _, w := range []*RateWindow{fam.Primary, fam.Secondary} {
				if w != nil && (w.UsedPercent < 0 || w.WindowMinutes < 0 || w.ResetAfter < 0) {
					t.Fatalf("window %+v", w)
				}
			}
		}
	})
}
