package bolt_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/keypolicy"
	"github.com/usemysub/caddy-codex-proxy/vault"
	"github.com/usemysub/caddy-codex-proxy/vault/bolt"
)

// TestWeekBudgetSurvivesRestartPastRetention: on bbolt, a key's week
// budget counts the whole week after a restart even when the request log
// kept less of it (log_retention under 7 days): the per-key daily usage
// outlives the log (issue 19).
func TestWeekBudgetSurvivesRestartPastRetention(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault.db")
	opts := vault.Options{EncryptionKeys: []string{"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}, Pepper: "pepper-0123456789"}
	open := func() *vault.Vault {
		t.Helper()
		s, err := bolt.Open(path, bolt.Options{})
		if err != nil {
			t.Fatal(err)
		}
		v, err := vault.New(s, opts)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	v := open()
	u, err := v.CreateUser("ada@example.com", "Ada")
	if err != nil {
		t.Fatal(err)
	}
	_, k, err := v.CreateKey(u.ID, "ci")
	if err != nil {
		t.Fatal(err)
	}
	p := keypolicy.Policy{TokensPerWeek: 1000}
	if k, err = v.UpdateKeyPolicy(u.ID, k.ID, p); err != nil {
		t.Fatal(err)
	}
	v.LogRequest(vault.LogRecord{Time: time.Now().Add(-time.Minute), UserID: u.ID, KeyID: k.ID, RequestID: "r1",
		Route: "chat_completions", Status: 200, InputTokens: 900, OutputTokens: 200})
	if err := v.Close(); err != nil { // flushes the log
		t.Fatal(err)
	}
	// The retention purge takes every record of the log.
	s, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.PurgeLogs(context.Background(), time.Now().Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("purge: %d %v", n, err)
	}
	s.Close()

	v = open()
	defer v.Close()
	if st := v.KeyStatus(k); st.TokensThisWeek.Used != 1100 || !st.OverBudget {
		t.Fatalf("after a restart: %+v", st.TokensThisWeek)
	}
	if _, refused := v.AdmitKey(k); refused == nil || refused.Reason != keypolicy.ReasonWeekBudget {
		t.Fatalf("admitted past the week's budget: %v", refused)
	}
}
