package keypolicy

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/translate"
)

// now is a Wednesday; its ISO week began Monday 2026-03-09.
var now = time.Date(2026, 3, 11, 15, 4, 5, 0, time.UTC)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    Policy
		bad  string // substring of the error, "" for valid
	}{
		{"zero", Policy{}, ""},
		{"everything", Policy{Expires: now.Add(time.Hour), Models: []string{"gpt-5.4*", "gpt-5.5"}, RPM: 60, Concurrency: 4, TokensPerDay: 2e6, TokensPerWeek: 1e7, MaxEffort: "high"}, ""},
		{"expired", Policy{Expires: now}, "in the past"},
		{"rpm negative", Policy{RPM: -1}, "requests per minute"},
		{"rpm huge", Policy{RPM: MaxRPM + 1}, "requests per minute"},
		{"concurrency huge", Policy{Concurrency: MaxConcurrency + 1}, "concurrent"},
		{"day negative", Policy{TokensPerDay: -5}, "per day"},
		{"week huge", Policy{TokensPerWeek: MaxTokens + 1}, "per week"},
		{"effort", Policy{MaxEffort: "turbo"}, "max effort"},
		{"model upper case", Policy{Models: []string{"GPT-5"}}, "lower-case"},
		{"model space", Policy{Models: []string{"gpt 5"}}, "lower-case"},
		{"bad glob", Policy{Models: []string{"gpt-[5"}}, "malformed"},
		{"empty model", Policy{Models: []string{""}}, "1 to"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Validate(now)
			if tc.bad == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.bad) {
				t.Fatalf("Validate = %v, want ErrInvalid mentioning %q", err, tc.bad)
			}
		})
	}
}

func TestSet(t *testing.T) {
	resolve := func(s string) string {
		if s == "gpt-5.5-codex" {
			return "gpt-5.5"
		}
		return s
	}
	base := Policy{RPM: 60, Models: []string{"gpt-5.5"}, Expires: now.Add(time.Hour), MaxEffort: "high"}
	for _, tc := range []struct {
		field, value string
		want         Policy
		bad          bool
	}{
		{FieldExpires, "30d", Policy{RPM: 60, Models: []string{"gpt-5.5"}, Expires: now.Add(30 * 24 * time.Hour), MaxEffort: "high"}, false},
		{FieldExpires, "2w", Policy{RPM: 60, Models: []string{"gpt-5.5"}, Expires: now.Add(14 * 24 * time.Hour), MaxEffort: "high"}, false},
		{FieldExpires, "3s", Policy{RPM: 60, Models: []string{"gpt-5.5"}, Expires: now.Add(3 * time.Second), MaxEffort: "high"}, false},
		{FieldExpires, "2027-01-31", Policy{RPM: 60, Models: []string{"gpt-5.5"}, Expires: time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC), MaxEffort: "high"}, false},
		{FieldExpires, "2027-01-31T10:00:00+02:00", Policy{RPM: 60, Models: []string{"gpt-5.5"}, Expires: time.Date(2027, 1, 31, 8, 0, 0, 0, time.UTC), MaxEffort: "high"}, false},
		{FieldExpires, "never", Policy{RPM: 60, Models: []string{"gpt-5.5"}, MaxEffort: "high"}, false},
		{FieldExpires, "soon", Policy{}, true},
		{FieldExpires, "-3d", Policy{}, true},
		{FieldModels, "GPT-5.4-mini, gpt-5.5-codex,gpt-5.4*,gpt-5.5", Policy{RPM: 60, Models: []string{"gpt-5.4*", "gpt-5.4-mini", "gpt-5.5"}, Expires: now.Add(time.Hour), MaxEffort: "high"}, false},
		{FieldModels, "", Policy{RPM: 60, Expires: now.Add(time.Hour), MaxEffort: "high"}, false},
		{FieldRPM, "0", Policy{Models: []string{"gpt-5.5"}, Expires: now.Add(time.Hour), MaxEffort: "high"}, false},
		{FieldRPM, "10", Policy{RPM: 10, Models: []string{"gpt-5.5"}, Expires: now.Add(time.Hour), MaxEffort: "high"}, false},
		{FieldRPM, "ten", Policy{}, true},
		{FieldRPM, "1000000", Policy{}, true},
		{FieldConcurrency, "4", Policy{RPM: 60, Concurrency: 4, Models: []string{"gpt-5.5"}, Expires: now.Add(time.Hour), MaxEffort: "high"}, false},
		{FieldTokensPerDay, "2_000_000", Policy{RPM: 60, TokensPerDay: 2e6, Models: []string{"gpt-5.5"}, Expires: now.Add(time.Hour), MaxEffort: "high"}, false},
		{FieldTokensPerWeek, "-1", Policy{}, true},
		{FieldMaxEffort, "Extra-High", Policy{RPM: 60, Models: []string{"gpt-5.5"}, Expires: now.Add(time.Hour), MaxEffort: "xhigh"}, false},
		{FieldMaxEffort, "", Policy{RPM: 60, Models: []string{"gpt-5.5"}, Expires: now.Add(time.Hour)}, false},
		{"colour", "red", Policy{}, true},
	} {
		t.Run(tc.field+"="+tc.value, func(t *testing.T) {
			got, err := Set(base, tc.field, tc.value, now, resolve)
			if tc.bad {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("Set = %v, want ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !got.Expires.Equal(tc.want.Expires) || !slices.Equal(got.Models, tc.want.Models) || got.RPM != tc.want.RPM ||
				got.Concurrency != tc.want.Concurrency || got.TokensPerDay != tc.want.TokensPerDay ||
				got.TokensPerWeek != tc.want.TokensPerWeek || got.MaxEffort != tc.want.MaxEffort {
				t.Fatalf("Set = %+v, want %+v", got, tc.want)
			}
			if err := got.Validate(now); err != nil {
				t.Fatalf("result does not validate: %v", err)
			}
		})
	}
	if base.Models[0] != "gpt-5.5" || len(base.Models) != 1 {
		t.Fatal("Set changed the policy it was given")
	}
}

func TestAllowsModel(t *testing.T) {
	p := Policy{Models: []string{"gpt-5.4*", "gpt-5.3-codex"}}
	for model, want := range map[string]bool{
		"gpt-5.4":             true,
		"gpt-5.4-mini":        true,
		"GPT-5.4-Mini":        true,
		"gpt-5.3-codex":       true,
		"gpt-5.3-codex-spark": false,
		"gpt-5.5":             false,
		"":                    false,
	} {
		if got := p.AllowsModel(model); got != want {
			t.Errorf("AllowsModel(%q) = %t, want %t", model, got, want)
		}
	}
	if !(Policy{}).AllowsModel("anything") {
		t.Error("an empty allowlist refused a model")
	}
	r := CheckModel(p, "gpt-5.5", "gpt-5.5-high")
	if r == nil || r.Status != http.StatusForbidden || r.Code != CodeModelNotAllowed || !strings.Contains(r.Message, "gpt-5.5-high") {
		t.Fatalf("CheckModel = %+v", r)
	}
}

func TestCheckExpiry(t *testing.T) {
	exp := now.Add(time.Minute)
	p := Policy{Expires: exp}
	if r := CheckExpiry(p, now); r != nil {
		t.Fatalf("before expiry: %v", r)
	}
	r := CheckExpiry(p, exp)
	if r == nil || r.Status != http.StatusUnauthorized || r.Code != CodeExpired || !strings.Contains(r.Message, "2026-03-11T15:05:05Z") {
		t.Fatalf("at expiry: %+v", r)
	}
	if CheckExpiry(Policy{}, now.AddDate(100, 0, 0)) != nil {
		t.Fatal("a key without expiry expired")
	}
}

func TestWindows(t *testing.T) {
	for _, tc := range []struct {
		t         time.Time
		day, week string
	}{
		{now, "2026-03-11", "2026-03-09"},
		{time.Date(2026, 3, 9, 0, 0, 0, 0, time.UTC), "2026-03-09", "2026-03-09"},
		{time.Date(2026, 3, 15, 23, 59, 59, 0, time.UTC), "2026-03-15", "2026-03-09"},
		{time.Date(2026, 3, 16, 0, 0, 0, 0, time.UTC), "2026-03-16", "2026-03-16"},
		{time.Date(2026, 3, 16, 1, 0, 0, 0, time.FixedZone("CET", 3600*2)), "2026-03-15", "2026-03-09"},
	} {
		if d, w := DayStart(tc.t).Format(time.DateOnly), WeekStart(tc.t).Format(time.DateOnly); d != tc.day || w != tc.week {
			t.Errorf("%v: day %s week %s, want %s %s", tc.t, d, w, tc.day, tc.week)
		}
	}
}

// The ceiling's levels are the ones translate clamps with.
func TestEffortsMatchTranslate(t *testing.T) {
	if !slices.Equal(Efforts, translate.Efforts()) {
		t.Fatalf("keypolicy.Efforts %v, translate.Efforts %v", Efforts, translate.Efforts())
	}
}
