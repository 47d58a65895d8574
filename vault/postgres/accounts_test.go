package postgres

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/usemysub/caddy-codex-proxy/internal/pgtest"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// TestUpgradeToAccounts: a database of schema 3 (one token bundle per
// user) upgrades in place: each user's bundle becomes their account 1,
// byte for byte, with its quota snapshot; a snapshot of a user without
// tokens is dropped.
func TestUpgradeToAccounts(t *testing.T) {
	dsn := pgtest.Start(t).NewDB(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, q := range []string{
		`CREATE TABLE codex_proxy_schema (version integer NOT NULL, compatible integer NOT NULL, updated timestamptz NOT NULL DEFAULT now())`,
		`INSERT INTO codex_proxy_schema (version, compatible) VALUES (3, 1)`,
		migrations[0].sql, migrations[1].sql, migrations[2].sql,
		`INSERT INTO codex_users (id, email) VALUES ('u-a', 'a@example.com'), ('u-b', 'b@example.com')`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if _, err := conn.Exec(ctx, `INSERT INTO codex_tokens (user_id, seal_key_id, nonce, ciphertext, account_id, plan_type, email, version, updated)
VALUES ('u-a', 'k1', 'nonce', 'sealed-a', 'acc-1', 'plus', 'a@chatgpt.example', 4, $1)`, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO codex_quotas (user_id, snapshot) VALUES ('u-a', '{"plan_type":"plus","seen":"2026-03-01T12:00:00Z"}'), ('u-b', '{"plan_type":"pro","seen":"2026-03-01T12:00:00Z"}')`); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)

	s, err := Open(ctx, dsn, Options{})
	if err != nil {
		t.Fatalf("Open (upgrade): %v", err)
	}
	defer s.Close()
	mine, err := s.ListUserTokens(ctx, "u-a")
	if err != nil || len(mine) != 1 {
		t.Fatalf("u-a's accounts after the upgrade: %v, %v", mine, err)
	}
	var id string
	var rec vault.TokenRecord
	for id, rec = range mine {
	}
	if len(id) != 12 || rec.Position != 1 || !rec.Linked.Equal(t0) || rec.Version != 4 ||
		!bytes.Equal(rec.Ciphertext, []byte("sealed-a")) || rec.AccountID != "acc-1" {
		t.Fatalf("account 1 after the upgrade: id %q, %+v", id, rec)
	}
	qs, err := s.ListQuotas(ctx)
	if err != nil || len(qs) != 1 || qs[vault.AccountRef{UserID: "u-a", ID: id}].PlanType != "plus" {
		t.Fatalf("quotas after the upgrade: %v, %v", qs, err)
	}
	// A second account of u-a is now possible.
	next := rec
	next.Position = 2
	if err := s.UpdateTokens(ctx, "u-a", "second", func(*vault.TokenRecord) (*vault.TokenRecord, error) { return &next, nil }); err != nil {
		t.Fatal(err)
	}
	if mine, _ := s.ListUserTokens(ctx, "u-a"); len(mine) != 2 {
		t.Fatalf("after adding a second account: %d", len(mine))
	}
}
