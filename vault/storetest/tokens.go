package storetest

import (
	"errors"
	"sync"
	"testing"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

func testTokens(t *testing.T, h *harness) {
	s := h.store()
	called := false
	err := s.UpdateTokens(ctx, "nobody", func(*vault.TokenRecord) (*vault.TokenRecord, error) {
		called = true
		return nil, nil
	})
	wantErr(t, "UpdateTokens(unknown user)", err, vault.ErrNotFound)
	if called {
		t.Fatal("UpdateTokens called fn for an unknown user")
	}
	mustUser(t, s, "u-a", "a@example.com")
	mustUser(t, s, "u-b", "b@example.com")
	_, err = s.GetTokens(ctx, "u-a")
	wantErr(t, "GetTokens(not linked)", err, vault.ErrNotFound)

	// First write: fn sees no record.
	v1 := tokens(1, "ciphertext-1")
	must(t, s.UpdateTokens(ctx, "u-a", func(cur *vault.TokenRecord) (*vault.TokenRecord, error) {
		if cur != nil {
			t.Errorf("fn got %+v for a user without tokens", *cur)
		}
		return &v1, nil
	}))
	got, err := s.GetTokens(ctx, "u-a")
	must(t, err)
	same(t, "GetTokens", got, v1)

	// fn sees the current record; nil writes nothing; an error writes
	// nothing and comes back.
	must(t, s.UpdateTokens(ctx, "u-a", func(cur *vault.TokenRecord) (*vault.TokenRecord, error) {
		if cur == nil || cur.Version != 1 || string(cur.Ciphertext) != "ciphertext-1" {
			t.Errorf("fn got %+v, want version 1", cur)
		}
		return nil, nil
	}))
	boom := errors.New("boom")
	err = s.UpdateTokens(ctx, "u-a", func(*vault.TokenRecord) (*vault.TokenRecord, error) { return nil, boom })
	wantErr(t, "UpdateTokens(fn fails)", err, boom)
	got, err = s.GetTokens(ctx, "u-a")
	must(t, err)
	same(t, "after a no-op and a failed update", got, v1)

	v2 := tokens(2, "ciphertext-2")
	v2.RelinkNeeded, v2.RelinkReason = true, "refresh_token_reused"
	must(t, s.UpdateTokens(ctx, "u-a", func(*vault.TokenRecord) (*vault.TokenRecord, error) { return &v2, nil }))
	b1 := tokens(7, "ciphertext-b")
	must(t, s.UpdateTokens(ctx, "u-b", func(*vault.TokenRecord) (*vault.TokenRecord, error) { return &b1, nil }))
	all, err := s.ListTokens(ctx)
	must(t, err)
	same(t, "ListTokens", all, map[string]vault.TokenRecord{"u-a": v2, "u-b": b1})

	must(t, s.DeleteTokens(ctx, "u-a"))
	must(t, s.DeleteTokens(ctx, "u-a")) // twice is fine
	must(t, s.DeleteTokens(ctx, "nobody"))
	_, err = s.GetTokens(ctx, "u-a")
	wantErr(t, "GetTokens(unlinked)", err, vault.ErrNotFound)
	if _, err := s.GetTokens(ctx, "u-b"); err != nil {
		t.Fatalf("other user's tokens: %v", err)
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
				err := s.UpdateTokens(ctx, "u-a", func(cur *vault.TokenRecord) (*vault.TokenRecord, error) {
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
	got, err := s.GetTokens(ctx, "u-a")
	must(t, err)
	if got.Version != workers*each {
		t.Fatalf("version %d after %d increments: updates were lost", got.Version, workers*each)
	}
}
