package ops

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/internal/pgtest"
	"github.com/usemysub/caddy-codex-proxy/vault"
	"github.com/usemysub/caddy-codex-proxy/vault/engine"
)

// TestAuditAcrossADatabaseRestart, on PostgreSQL: with the database down
// an operator's revocation is refused with a 503 and changes nothing;
// once it is back the same call revokes the key, recorded once, and a
// second instance on the database lists the entry.
func TestAuditAcrossADatabaseRestart(t *testing.T) {
	srv := pgtest.Start(t)
	dsn := srv.NewDB(t)
	ctx := WithActor(context.Background(), Actor{Via: ViaCLI, OSUser: "alice"})
	open := func() *vault.Vault {
		v, err := engine.Open(context.Background(), dsn, vault.Options{EncryptionKeys: []string{testEncKey}, Pepper: testPepper})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { v.Close() })
		return v
	}
	a, b := open(), open()
	s := Local(a)
	if _, err := s.UpsertUser(ctx, UserRequest{Email: "ada@example.com"}); err != nil {
		t.Fatal(err)
	}
	k, err := s.CreateKey(ctx, KeyRequest{Email: "ada@example.com", Label: "laptop"})
	if err != nil {
		t.Fatal(err)
	}

	srv.Stop()
	if _, err := s.RevokeKey(ctx, "ada@example.com", k.ID); StatusOf(err) != http.StatusServiceUnavailable {
		t.Fatalf("revoking with the database down: %v (status %d), want 503", err, StatusOf(err))
	}
	srv.Start()
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := s.RevokeKey(ctx, "ada@example.com", k.ID)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("revoking after the database came back: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, _, err := a.VerifyKey(k.Plaintext); err == nil {
		t.Fatal("the revoked key still works")
	}
	// b's connections were cut too: its first call may fail fast.
	var res AuditResult
	for {
		if res, err = Local(b).ListAudit(ctx, AuditRequest{Action: vault.AuditKeyRevoked}); err == nil {
			break
		}
		if !errors.Is(err, vault.ErrUnavailable) || time.Now().After(deadline) {
			t.Fatalf("listing on the other instance: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var ok int
	for _, e := range res.Entries {
		if e.Outcome == vault.OutcomeOK {
			ok++
		}
		if e.Actor.OSUser != "alice" || e.Target.KeyID != k.ID {
			t.Fatalf("entry %+v", e)
		}
	}
	if ok != 1 {
		t.Fatalf("%d ok revocations recorded, want 1: %+v", ok, res.Entries)
	}
}
