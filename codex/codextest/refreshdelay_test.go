package codextest

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/claims"
)

// TestDelayedRefreshAbandoned: a delayed refresh grant whose client gives
// up is never processed, so its refresh token still works once; a delay
// that runs out is processed; reuse is counted.
func TestDelayedRefreshAbandoned(t *testing.T) {
	s := New(t)
	tok := s.AddAccount("acc-1", "a@example.com", "plus")
	body := `{"client_id":"` + DefaultClientID + `","grant_type":"refresh_token","refresh_token":"` + tok.RefreshToken + `"}`
	s.DelayRefreshes(2, time.Hour)

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.IssuerURL+"/oauth/token", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for len(s.RequestsTo("/oauth/token")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the grant never arrived")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("abandoned grant: %v, want context.Canceled", err)
	}

	// The second delayed grant, given up on by nobody, waits and works:
	// the first never used the token up.
	s.mu.Lock()
	s.refreshDelays[0] = 100 * time.Millisecond
	s.mu.Unlock()
	start := time.Now()
	st, m := jsonPost(t, s, "/oauth/token", map[string]string{"client_id": DefaultClientID, "grant_type": "refresh_token", "refresh_token": tok.RefreshToken})
	if st != 200 {
		t.Fatalf("refresh after the abandoned one: %d %v", st, m)
	}
	if took := time.Since(start); took < 100*time.Millisecond {
		t.Fatalf("the delayed grant answered after %s", took)
	}
	if n := s.RefreshCount(); n != 1 {
		t.Fatalf("RefreshCount %d, want 1 (the abandoned grant is not processed)", n)
	}
	if n := s.RefreshReuses(); n != 0 {
		t.Fatalf("RefreshReuses %d before any reuse", n)
	}
	// No delay left: reuse answers at once and is counted.
	st, m = jsonPost(t, s, "/oauth/token", map[string]string{"client_id": DefaultClientID, "grant_type": "refresh_token", "refresh_token": tok.RefreshToken})
	if st != 400 || errCode(m) != "refresh_token_reused" || s.RefreshReuses() != 1 {
		t.Fatalf("reuse: %d %v, RefreshReuses %d", st, m, s.RefreshReuses())
	}
}

// TestAddAccountTTL: a login whose access token has expired carries a
// past exp claim; refreshed tokens get the server's lifetime.
func TestAddAccountTTL(t *testing.T) {
	s := New(t)
	tok := s.AddAccountTTL("acc-1", "a@example.com", "plus", -time.Minute)
	c, err := claims.Parse(tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Expiry.Before(time.Now()) {
		t.Fatalf("access token expires at %s, want the past", c.Expiry)
	}
	if r := post(t, s, tok, "acc-1", validBody("x")); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("expired access token: %d, want 401", r.StatusCode)
	}
	st, m := jsonPost(t, s, "/oauth/token", map[string]string{"client_id": DefaultClientID, "grant_type": "refresh_token", "refresh_token": tok.RefreshToken})
	if st != 200 || m["expires_in"] != 3600.0 {
		t.Fatalf("refresh: %d %v", st, m)
	}
}
