package postgres

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/usemysub/caddy-codex-proxy/internal/pgtest"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// TestStoredResponsesAcrossInstances: a response one instance stores is
// continued, read and deleted on another, and survives a reopen (a
// cluster shares its database, and stored responses live only there).
func TestStoredResponsesAcrossInstances(t *testing.T) {
	dsn := pgtest.Start(t).NewDB(t)
	a := openInstance(t, dsn, nil)
	b := openInstance(t, dsn, nil)
	u, err := a.v.CreateUser("alice@example.com", "Alice")
	if err != nil {
		t.Fatal(err)
	}
	resp := json.RawMessage(`{"id":"resp_a","output":[{"id":"rs_a","type":"reasoning","encrypted_content":"gAAAA"}]}`)
	if err := a.v.PutResponse(u.ID, vault.StoredResponse{ID: "resp_a", Response: resp}, []string{"rs_a"}); err != nil {
		t.Fatal(err)
	}
	got, err := b.v.Response(u.ID, "resp_a")
	if err != nil || string(got.Response) != string(resp) {
		t.Fatalf("the other instance reads %+v, %v", got, err)
	}
	if got, err := b.v.ResponseByItem(u.ID, "rs_a"); err != nil || got.ID != "resp_a" {
		t.Fatalf("the other instance finds the item: %+v, %v", got, err)
	}
	c := openInstance(t, dsn, nil) // a new instance, as after a restart
	if _, err := c.v.Response(u.ID, "resp_a"); err != nil {
		t.Fatalf("a new instance reads it: %v", err)
	}
	if err := b.v.DeleteResponse(u.ID, "resp_a"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.v.Response(u.ID, "resp_a"); !errors.Is(err, vault.ErrNotFound) {
		t.Fatalf("deleted on one instance, still read on another: %v", err)
	}
}
