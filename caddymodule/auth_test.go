package caddymodule

import (
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

var updateErrors = flag.Bool("update-errors", false, "rewrite testdata/errors golden files")

// attempt calls GET /v1/models with key from the client address ip.
func attempt(t *testing.T, url, ip, key string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url+"/v1/models", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("X-Test-Client-Ip", ip)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

// failUntilBlocked spends ip's failed attempts, each answered 401.
func failUntilBlocked(t *testing.T, url, ip string) {
	t.Helper()
	for i := range authFailLimit {
		if resp, body := attempt(t, url, ip, "cpk_wrong"); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failed attempt %d from %s: %d %s", i+1, ip, resp.StatusCode, body)
		}
	}
}

// TestBadKeyFloodNeverBlocksValidKey: a broken script hammering with a bad
// key from a shared address gets 401, then 429, while a user behind the
// same address keeps being served.
func TestBadKeyFloodNeverBlocksValidKey(t *testing.T) {
	env := newProxyEnv(t)
	for i := range 3 * authFailLimit {
		want := http.StatusUnauthorized
		if i >= authFailLimit {
			want = http.StatusTooManyRequests
		}
		if resp, body := attempt(t, env.srv.URL, env.ip, "cpk_wrong"); resp.StatusCode != want {
			t.Fatalf("bad key %d: %d, want %d: %s", i+1, resp.StatusCode, want, body)
		}
		if i%5 == 4 {
			if resp, body := attempt(t, env.srv.URL, env.ip, env.key); resp.StatusCode != http.StatusOK {
				t.Fatalf("valid key after %d bad ones: %d %s", i+1, resp.StatusCode, body)
			}
		}
	}
}

// TestBlockedAddress: what a blocked address gets, and which addresses
// count as the same one.
func TestBlockedAddress(t *testing.T) {
	env := newProxyEnv(t)
	failUntilBlocked(t, env.srv.URL, env.ip)

	resp, body := attempt(t, env.srv.URL, env.ip, "cpk_wrong")
	secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if resp.StatusCode != http.StatusTooManyRequests || err != nil || secs < 1 || secs > int(authFailWindow.Seconds()) {
		t.Fatalf("blocked bad key: %d Retry-After=%q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("content type %q", ct)
	}
	golden(t, "too_many_failed_attempts.json", body)

	// A valid key from the blocked address is served.
	if resp, body := attempt(t, env.srv.URL, env.ip, env.key); resp.StatusCode != http.StatusOK {
		t.Fatalf("valid key from a blocked address: %d %s", resp.StatusCode, body)
	}

	// The same address written as IPv4-mapped IPv6 is the same client;
	// another address is not blocked.
	tests := []struct {
		ip   string
		want int
	}{
		{"::ffff:" + env.ip, http.StatusTooManyRequests},
		{nextTestIP(), http.StatusUnauthorized},
	}
	for _, tt := range tests {
		if resp, _ := attempt(t, env.srv.URL, tt.ip, "cpk_wrong"); resp.StatusCode != tt.want {
			t.Errorf("bad key from %s: %d, want %d", tt.ip, resp.StatusCode, tt.want)
		}
	}

	// IPv6 clients count per /64.
	failUntilBlocked(t, env.srv.URL, "2001:db8:77:1::1")
	for _, tt := range []struct {
		ip   string
		want int
	}{
		{"2001:db8:77:1:ffff:ffff:ffff:fffe", http.StatusTooManyRequests},
		{"2001:db8:77:2::1", http.StatusUnauthorized},
	} {
		if resp, _ := attempt(t, env.srv.URL, tt.ip, "cpk_wrong"); resp.StatusCode != tt.want {
			t.Errorf("bad key from %s: %d, want %d", tt.ip, resp.StatusCode, tt.want)
		}
	}
}

// TestFailedAttemptsSurviveReload: a reload provisions the new handler
// before cleaning up the old one; the count carries over, so a reload does
// not unblock a guesser.
func TestFailedAttemptsSurviveReload(t *testing.T) {
	env := newProxyEnv(t)
	failUntilBlocked(t, env.srv.URL, env.ip)

	old := env.h
	h := &Handler{
		Vault: old.Vault, EncryptionKeys: old.EncryptionKeys, APIKeyPepper: old.APIKeyPepper,
		Upstream: old.Upstream, OAuthIssuer: old.OAuthIssuer,
	}
	startHandler(t, h) // the new config starts before the old one stops
	if err := old.Cleanup(); err != nil {
		t.Fatal(err)
	}
	srv := serveHandler(t, h, env.ip)
	if resp, body := attempt(t, srv.URL, env.ip, "cpk_wrong"); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("after the reload, bad key: %d %s", resp.StatusCode, body)
	}
	if resp, body := attempt(t, srv.URL, env.ip, env.key); resp.StatusCode != http.StatusOK {
		t.Fatalf("after the reload, valid key: %d %s", resp.StatusCode, body)
	}
}

// golden compares got with testdata/errors/name.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "errors", name)
	if *updateErrors {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("body differs from %s:\n got %s\nwant %s", path, got, want)
	}
}
