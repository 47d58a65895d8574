package vault

import (
	"errors"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/keypolicy"
)

func TestKeyPolicyTakesEffectAndPersists(t *testing.T) {
	v, path, clock := newTestVault(t, nil)
	alice, bob := mustUser(t, v, "alice@example.com"), mustUser(t, v, "bob@example.com")
	if _, _, err := v.CreateKeyWithPolicy(alice.ID, "bad", keypolicy.Policy{RPM: -1}); !errors.Is(err, keypolicy.ErrInvalid) {
		t.Fatalf("invalid policy: %v", err)
	}
	plain, k, err := v.CreateKeyWithPolicy(alice.ID, "ci", keypolicy.Policy{Models: []string{"gpt-5.4-mini"}})
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := v.VerifyKey(plain)
	if err != nil || len(got.Policy.Models) != 1 {
		t.Fatalf("VerifyKey = %+v, %v", got.Policy, err)
	}
	p := keypolicy.Policy{RPM: 2, TokensPerDay: 100, Expires: t0.Add(time.Hour)}
	if _, err := v.UpdateKeyPolicy(bob.ID, k.ID, p); !errors.Is(err, ErrNotFound) {
		t.Fatalf("bob updated alice's key: %v", err)
	}
	if _, err := v.UpdateKeyPolicy(alice.ID, k.ID, keypolicy.Policy{Expires: t0.Add(-time.Hour)}); !errors.Is(err, keypolicy.ErrInvalid) {
		t.Fatalf("past expiry accepted: %v", err)
	}
	if _, err := v.UpdateKeyPolicy(alice.ID, k.ID, p); err != nil {
		t.Fatal(err)
	}
	got, _, _ = v.VerifyKey(plain)
	if got.Policy.RPM != 2 || len(got.Policy.Models) != 0 || !got.Policy.Expires.Equal(p.Expires) {
		t.Fatalf("policy after update: %+v", got.Policy)
	}

	// Usage: two requests, 60 tokens each; the budget of 100 is crossed by
	// the second, which finished; the third is refused.
	for i := range 2 {
		release, refused := v.AdmitKey(got)
		if refused != nil {
			t.Fatalf("request %d refused: %v", i, refused)
		}
		v.LogRequest(LogRecord{KeyID: k.ID, UserID: alice.ID, RequestID: "r" + string(rune('0'+i)), Status: 200, InputTokens: 50, OutputTokens: 10})
		release()
	}
	if _, refused := v.AdmitKey(got); refused == nil || refused.Reason != keypolicy.ReasonDayBudget {
		t.Fatalf("third request: %v", refused)
	}
	// A refused request in the log does not count after a restart.
	v.LogRequest(LogRecord{KeyID: k.ID, UserID: alice.ID, RequestID: "r9", Status: 429, ErrorCode: keypolicy.CodeBudgetExhausted})

	v.Close()
	v = openAt(t, path, testOptions(clock))
	got, _, _ = v.VerifyKey(plain)
	if got.Policy.RPM != 2 || got.Policy.TokensPerDay != 100 {
		t.Fatalf("policy after reopen: %+v", got.Policy)
	}
	s := v.KeyStatus(got)
	if s.TokensToday.Used != 120 || s.TokensToday.Requests != 2 || s.RequestsPerMinute.Used != 2 || !s.OverBudget || !s.RateLimited {
		t.Fatalf("status rebuilt after reopen: %+v", s)
	}

	// Reset keeps the key and survives a restart.
	clock.Advance(time.Second)
	if err := v.ResetKeyUsage(alice.ID, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, refused := v.AdmitKey(got); refused != nil {
		t.Fatalf("refused after reset: %v", refused)
	}
	v.Close()
	v = openAt(t, path, testOptions(clock))
	got, _, _ = v.VerifyKey(plain)
	if s := v.KeyStatus(got); s.TokensToday.Used != 0 || s.OverBudget || !s.UsageResetAt.Equal(t0.Add(time.Second)) {
		t.Fatalf("status after reset and reopen: %+v", s)
	}
	if k2, err := v.GetKey(alice.ID, k.ID); err != nil || !k2.UsageReset.Equal(t0.Add(time.Second)) {
		t.Fatalf("GetKey = %+v, %v", k2, err)
	}
	if _, err := v.GetKey(bob.ID, k.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("bob read alice's key: %v", err)
	}

	// Revoked keys cannot be changed.
	if err := v.RevokeKey(alice.ID, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := v.UpdateKeyPolicy(alice.ID, k.ID, keypolicy.Policy{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoked key updated: %v", err)
	}
	if err := v.ResetKeyUsage(alice.ID, k.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoked key reset: %v", err)
	}
}

func TestKeyUsageRebuildPagesThroughTheLog(t *testing.T) {
	v, path, clock := newTestVault(t, nil)
	alice := mustUser(t, v, "alice@example.com")
	plain, k, _ := v.CreateKey(alice.ID, "")
	// More records than one rebuild page, many sharing a time, and some
	// from last week that must not count.
	const n = rebuildPage*2 + 17
	for i := range n {
		at := t0.Add(-time.Duration(i/7) * time.Second)
		v.LogRequest(LogRecord{Time: at, KeyID: k.ID, UserID: alice.ID, RequestID: "r" + itoa(i), Status: 200, InputTokens: 1})
	}
	v.LogRequest(LogRecord{Time: t0.AddDate(0, 0, -7), KeyID: k.ID, UserID: alice.ID, RequestID: "old", Status: 200, InputTokens: 1000})
	v.Close()
	v = openAt(t, path, testOptions(clock))
	got, _, _ := v.VerifyKey(plain)
	if s := v.KeyStatus(got); s.TokensThisWeek.Used != n || s.TokensThisWeek.Requests != n {
		t.Fatalf("rebuilt %d tokens in %d requests, want %d", s.TokensThisWeek.Used, s.TokensThisWeek.Requests, n)
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}
