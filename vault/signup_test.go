package vault

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestSignupPolicy(t *testing.T) {
	for _, tc := range []struct {
		words   string
		err     string // "" for a valid policy
		str     string
		allowed []string
		refused []string
	}{
		{words: "closed", str: "closed", refused: []string{"a@example.com"}},
		{words: "OPEN", str: "open", allowed: []string{"a@example.com", "x@y.z"}},
		{words: "domains Example.com @b.org example.com", str: "domains b.org example.com",
			allowed: []string{"a@example.com", "z@b.org"}, refused: []string{"a@sub.example.com", "a@example.com.evil.com", "a@borg", "noat"}},
		{words: "", err: "a sign-up mode is needed (open, closed or domains)"},
		{words: "sometimes", err: `unknown sign-up mode "sometimes" (open, closed or domains)`},
		{words: "domains", err: "sign-up mode domains needs at least one domain"},
		{words: "open a.com", err: `sign-up domains need mode "domains"`},
		{words: "domains a@b.com", err: `"a@b.com" is not a domain`},
		{words: "domains localhost", err: `"localhost" is not a domain`},
		{words: "domains a.com/x", err: `"a.com/x" is not a domain`},
		{words: "domains " + strings.Repeat("a.com ", maxSignupDomains+1), err: "at most 100 sign-up domains"},
	} {
		t.Run(tc.words, func(t *testing.T) {
			p, err := ParseSignupPolicy(strings.Fields(tc.words))
			if tc.err != "" {
				if err == nil || err.Error() != tc.err || !errors.Is(err, ErrBadSignup) {
					t.Fatalf("err %v, want %q matching ErrBadSignup", err, tc.err)
				}
				return
			}
			if err != nil || p.String() != tc.str {
				t.Fatalf("%v %q, want %q", err, p.String(), tc.str)
			}
			for _, e := range tc.allowed {
				if !p.Allows(e) {
					t.Errorf("%s refused", e)
				}
			}
			for _, e := range tc.refused {
				if p.Allows(e) {
					t.Errorf("%s allowed", e)
				}
			}
		})
	}
	if (SignupPolicy{}).Allows("a@example.com") || (SignupPolicy{}).String() != "closed" {
		t.Fatal("the zero value is not closed")
	}
}

// FuzzParseSignupPolicy: any words either fail with ErrBadSignup or give
// a policy that its own String parses back to.
func FuzzParseSignupPolicy(f *testing.F) {
	for _, s := range []string{"open", "closed", "domains a.com @B.org", "domains", "x y z", "domains a@b", "domains \u00e9.com"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseSignupPolicy(strings.Fields(s))
		if err != nil {
			if !errors.Is(err, ErrBadSignup) {
				t.Fatalf("%q: %v does not match ErrBadSignup", s, err)
			}
			return
		}
		again, err := ParseSignupPolicy(strings.Fields(p.String()))
		if err != nil || again.String() != p.String() {
			t.Fatalf("%q → %q → %q, %v", s, p.String(), again.String(), err)
		}
	})
}

// countingStore counts GetSetting calls and fails them on demand.
type countingStore struct {
	TestStore
	reads atomic.Int64
	fail  atomic.Bool
}

func (s *countingStore) GetSetting(ctx context.Context, name string) ([]byte, error) {
	s.reads.Add(1)
	if s.fail.Load() {
		return nil, ErrUnavailable
	}
	return s.TestStore.(SettingStore).GetSetting(ctx, name)
}
func (s *countingStore) PutSetting(ctx context.Context, name string, v []byte) error {
	return s.TestStore.(SettingStore).PutSetting(ctx, name, v)
}
func (s *countingStore) DeleteSetting(ctx context.Context, name string) error {
	return s.TestStore.(SettingStore).DeleteSetting(ctx, name)
}
func (s *countingStore) ExportSettings(ctx context.Context) (map[string][]byte, error) {
	return s.TestStore.(SettingStore).ExportSettings(ctx)
}

// The override is read at most once per SettingsTTL, its own writes apply
// at once, another writer's after the TTL, and a failed read keeps the
// last value (with the error) rather than dropping it.
func TestSignupOverrideCache(t *testing.T) {
	ctx := context.Background()
	bs, err := OpenTestStore(filepath.Join(t.TempDir(), "vault.db"), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	cs := &countingStore{TestStore: bs}
	opts := testOptions(newClock())
	opts.SettingsTTL = 200 * time.Millisecond
	v, err := New(cs, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()

	for range 3 {
		if _, ok, err := v.SignupOverride(ctx); ok || err != nil {
			t.Fatalf("none set: %v %v", ok, err)
		}
	}
	if n := cs.reads.Load(); n != 1 {
		t.Fatalf("%d store reads within the TTL, want 1", n)
	}
	if _, err := v.SetSignupOverride(ctx, SignupOverride{SignupPolicy: SignupPolicy{Mode: "domains"}}); !errors.Is(err, ErrBadSignup) {
		t.Fatalf("a bad policy: %v", err)
	}
	set, err := v.SetSignupOverride(ctx, SignupOverride{SignupPolicy: SignupPolicy{Mode: SignupDomains, Domains: []string{"B.org", "a.com"}}, By: "lead@example.com"})
	if err != nil || set.String() != "domains a.com b.org" || !set.Set.Equal(t0) {
		t.Fatalf("set: %v %+v", err, set)
	}
	if o, ok, err := v.SignupOverride(ctx); !ok || err != nil || o.String() != "domains a.com b.org" || o.By != "lead@example.com" {
		t.Fatalf("after set: %+v %v %v", o, ok, err)
	}
	if n := cs.reads.Load(); n != 1 {
		t.Fatalf("its own write was read back from the store (%d reads)", n)
	}

	// Another instance opens it and writes to the store.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(cs.PutSetting(ctx, settingSignup, []byte(`{"mode":"open","set":"2026-03-10T12:00:00Z","by":"other"}`)))
	if o, _, _ := v.SignupOverride(ctx); o.Mode != SignupDomains {
		t.Fatalf("the cache was not used: %+v", o)
	}
	time.Sleep(250 * time.Millisecond)
	if o, ok, err := v.SignupOverride(ctx); !ok || err != nil || o.Mode != SignupOpen || o.By != "other" {
		t.Fatalf("another writer's change after the TTL: %+v %v %v", o, ok, err)
	}

	cs.fail.Store(true)
	time.Sleep(250 * time.Millisecond)
	if o, ok, err := v.SignupOverride(ctx); !ok || !errors.Is(err, ErrUnavailable) || o.Mode != SignupOpen {
		t.Fatalf("a failed read: %+v %v %v, want the last value and the error", o, ok, err)
	}
	cs.fail.Store(false)
	must(v.ClearSignupOverride(ctx))
	if _, ok, err := v.SignupOverride(ctx); ok || err != nil {
		t.Fatalf("after clear: %v %v", ok, err)
	}
}
