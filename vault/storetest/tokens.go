package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

func testTokens(t *testing.T, h *harness) {
	s := h.store()
	called := false
	err := s.UpdateTokens(ctx, "nobody", "a1", func(*vault.TokenRecord) (*vault.TokenRecord, error) {
		called = true
		return nil, nil
	})
	wantErr(t, "UpdateTokens(unknown user)", err, vault.ErrNotFound)
	if called {
		t.Fatal("UpdateTokens called fn for an unknown user")
	}
	mustUser(t, s, "u-a", "a@example.com")
	mustUser(t, s, "u-b", "b@example.com")
	_, err = s.GetTokens(ctx, "u-a", "a1")
	wantErr(t, "GetTokens(not linked)", err, vault.ErrNotFound)

	// First write: fn sees no record.
	v1 := tokens(1, "ciphertext-1")
	must(t, s.UpdateTokens(ctx, "u-a", "a1", func(cur *vault.TokenRecord) (*vault.TokenRecord, error) {
		if cur != nil {
			t.Errorf("fn got %+v for a user without tokens", *cur)
		}
		return &v1, nil
	}))
	got, err := s.GetTokens(ctx, "u-a", "a1")
	must(t, err)
	same(t, "GetTokens", got, v1)

	// fn sees the current record; nil writes nothing; an error writes
	// nothing and comes back.
	must(t, s.UpdateTokens(ctx, "u-a", "a1", func(cur *vault.TokenRecord) (*vault.TokenRecord, error) {
		if cur == nil || cur.Version != 1 || string(cur.Ciphertext) != "ciphertext-1" {
			t.Errorf("fn got %+v, want version 1", cur)
		}
		return nil, nil
	}))
	boom := errors.New("boom")
	err = s.UpdateTokens(ctx, "u-a", "a1", func(*vault.TokenRecord) (*vault.TokenRecord, error) { return nil, boom })
	wantErr(t, "UpdateTokens(fn fails)", err, boom)
	got, err = s.GetTokens(ctx, "u-a", "a1")
	must(t, err)
	same(t, "after a no-op and a failed update", got, v1)

	v2 := tokens(2, "ciphertext-2")
	v2.RelinkNeeded, v2.RelinkReason = true, "refresh_token_reused"
	must(t, s.UpdateTokens(ctx, "u-a", "a1", func(*vault.TokenRecord) (*vault.TokenRecord, error) { return &v2, nil }))
	b1 := tokens(7, "ciphertext-b")
	must(t, s.UpdateTokens(ctx, "u-b", "a1", func(*vault.TokenRecord) (*vault.TokenRecord, error) { return &b1, nil }))
	all, err := s.ListTokens(ctx)
	must(t, err)
	same(t, "ListTokens", all, map[vault.AccountRef]vault.TokenRecord{{UserID: "u-a", ID: "a1"}: v2, {UserID: "u-b", ID: "a1"}: b1})

	// A second account of the same user is a record of its own.
	a2 := tokens(1, "ciphertext-a2")
	a2.Label, a2.Position, a2.Linked = "work", 2, t0.Add(time.Hour)
	must(t, s.UpdateTokens(ctx, "u-a", "a2", func(cur *vault.TokenRecord) (*vault.TokenRecord, error) {
		if cur != nil {
			t.Errorf("fn got %+v for a new account", *cur)
		}
		return &a2, nil
	}))
	got, err = s.GetTokens(ctx, "u-a", "a1")
	must(t, err)
	same(t, "first account after adding a second", got, v2)
	mine, err := s.ListUserTokens(ctx, "u-a")
	must(t, err)
	same(t, "ListUserTokens", mine, map[string]vault.TokenRecord{"a1": v2, "a2": a2})
	if none, err := s.ListUserTokens(ctx, "nobody"); err != nil || len(none) != 0 {
		t.Fatalf("ListUserTokens(unknown user) = %v, %v", none, err)
	}

	must(t, s.DeleteTokens(ctx, "u-a", "a1"))
	must(t, s.DeleteTokens(ctx, "u-a", "a1")) // twice is fine
	must(t, s.DeleteTokens(ctx, "nobody", "a1"))
	_, err = s.GetTokens(ctx, "u-a", "a1")
	wantErr(t, "GetTokens(unlinked)", err, vault.ErrNotFound)
	if _, err := s.GetTokens(ctx, "u-b", "a1"); err != nil {
		t.Fatalf("other user's tokens: %v", err)
	}
	if _, err := s.GetTokens(ctx, "u-a", "a2"); err != nil {
		t.Fatalf("the user's other account: %v", err)
	}
}

// testTokensConcurrent: read-modify-writes from many goroutines never lose
// an update, which is what lets the broker compare-and-swap.
func testTokensConcurrent(t *testing.T, h *harness) {
	s := h.store()
	mustUser(t, s, "u-a", "a@example.com")
	const workers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				err := s.UpdateTokens(ctx, "u-a", "a1", func(cur *vault.TokenRecord) (*vault.TokenRecord, error) {
					next := tokens(1, "ct")
					if cur != nil {
						next.Version = cur.Version + 1
					}
					return &next, nil
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got, err := s.GetTokens(ctx, "u-a", "a1")
	must(t, err)
	if got.Version != workers*each {
		t.Fatalf("version %d after %d increments: updates were lost", got.Version, workers*each)
	}
}
