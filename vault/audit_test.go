package vault

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// TestAuditEntries: the vault fills in the id, time and outcome, keeps
// ids in order when the clock stands still, cuts long fields, and purges
// what is older than the retention, hourly and after a change of it.
func TestAuditEntries(t *testing.T) {
	ctx := context.Background()
	v, _, clock := newTestVault(t, nil)
	if !v.KeepsAudit() {
		t.Fatal("the bbolt engine keeps no audit log")
	}
	if _, err := v.Audit(ctx, AuditEntry{}); err == nil {
		t.Fatal("an entry without an action was written")
	}
	long := strings.Repeat("é", maxAuditField) // two bytes each
	var ids []string
	for i := range 3 { // the fake clock does not move: ids must still order
		e, err := v.Audit(ctx, AuditEntry{Action: AuditSignIn, Detail: "link", Reason: long, Target: AuditTarget{UserID: "u1"}})
		if err != nil {
			t.Fatal(err)
		}
		if e.Outcome != OutcomeOK || !e.Time.Equal(clock.Now()) || e.ID == "" || i > 0 && e.ID <= ids[i-1] {
			t.Fatalf("entry %d: %+v (ids so far %q)", i, e, ids)
		}
		if len(e.Reason) > maxAuditField+len("…") || !utf8.ValidString(e.Reason) {
			t.Fatalf("a long reason kept %d bytes, valid UTF-8 %v", len(e.Reason), utf8.ValidString(e.Reason))
		}
		ids = append(ids, e.ID)
	}
	got, err := v.AuditLog(ctx, AuditQuery{})
	if err != nil || len(got) != 3 || got[0].ID != ids[2] || got[2].ID != ids[0] {
		t.Fatalf("AuditLog: %v %+v", err, got)
	}

	// A year on (the default), the three go; a newer one stays.
	clock.Advance(DefaultAuditRetention - time.Hour)
	if _, err := v.Audit(ctx, AuditEntry{Action: AuditKeyRevoked}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Hour)
	v.purge()
	if got, _ := v.AuditLog(ctx, AuditQuery{}); len(got) != 1 || got[0].Action != AuditKeyRevoked {
		t.Fatalf("after a year: %+v", got)
	}
	// A reload with a shorter retention applies at the next purge.
	if err := v.Reconfigure(Settings{EncryptionKeys: v.opts.EncryptionKeys, Pepper: v.opts.Pepper, Limits: Limits{AuditRetention: time.Minute}}); err != nil {
		t.Fatal(err)
	}
	if v.AuditRetention() != time.Minute {
		t.Fatalf("retention after Reconfigure: %v", v.AuditRetention())
	}
	v.purge()
	if got, _ := v.AuditLog(ctx, AuditQuery{}); len(got) != 0 {
		t.Fatalf("after the retention was cut to a minute: %+v", got)
	}
}

// TestParseAuditTime: RFC 3339, durations and days back from now, and a
// message that says what is wanted.
func TestParseAuditTime(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"":                          {},
		"24h":                       now.Add(-24 * time.Hour),
		"90m":                       now.Add(-90 * time.Minute),
		"7d":                        now.Add(-7 * 24 * time.Hour),
		"2026-12-01T00:00:00Z":      time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		"2026-12-01T01:00:00+01:00": time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
	} {
		if got, err := ParseAuditTime(in, now); err != nil || !got.Equal(want) {
			t.Errorf("ParseAuditTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"yesterday", "-1h", "7days", "2026-12-01"} {
		if _, err := ParseAuditTime(in, now); err == nil || !strings.Contains(err.Error(), "RFC 3339") {
			t.Errorf("ParseAuditTime(%q): %v", in, err)
		}
	}
}

// FuzzParseAuditTime: any input gives a time or an error, never a panic,
// and a duration never reaches past now.
func FuzzParseAuditTime(f *testing.F) {
	for _, s := range []string{"", "24h", "7d", "-1h", "2026-12-01T00:00:00Z", "9999999999d", "1e9h", "d", " 3d "} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseAuditTime(s, now)
		if err != nil {
			if !got.IsZero() {
				t.Fatalf("ParseAuditTime(%q) = %v with an error", s, got)
			}
			return
		}
		if _, rfc := time.Parse(time.RFC3339, strings.TrimSpace(s)); rfc != nil && got.After(now) {
			t.Fatalf("ParseAuditTime(%q) = %v, after now", s, got)
		}
	})
}
