package ops

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRemoteBaseAndOrigin(t *testing.T) {
	for _, tc := range []struct {
		ep           Endpoint
		base, origin string
	}{
		{Endpoint{"tcp", "localhost:2019"}, "http://localhost:2019", "http://localhost:2019"},
		{Endpoint{"tcp", "127.0.0.1:3000"}, "http://127.0.0.1:3000", "http://127.0.0.1:3000"},
		{Endpoint{"unix", "/run/caddy.sock"}, "http://127.0.0.1", ""},
	} {
		r := Remote(tc.ep, "/v.db")
		if r.base != tc.base || r.origin != tc.origin {
			t.Errorf("%+v: base %q origin %q", tc.ep, r.base, r.origin)
		}
	}
}

// TestRemoteHolds checks the probe that decides between the admin API and
// opening the file.
func TestRemoteHolds(t *testing.T) {
	ctx := context.Background()
	v, path := openVault(t)
	srv := adminServer(t, oneVault{path, v})
	if err := remoteTo(t, srv, path).Holds(ctx); err != nil {
		t.Fatalf("the vault is open there: %v", err)
	}
	if err := remoteTo(t, srv, "/other/vault.db").Holds(ctx); err == nil || !strings.Contains(err.Error(), "does not have this vault open (it has: "+path+")") {
		t.Fatalf("another vault: %v", err)
	}
	bare := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(bare.Close)
	if err := remoteTo(t, bare, path).Holds(ctx); err == nil || !strings.Contains(err.Error(), "no codex_proxy admin module") {
		t.Fatalf("no module: %v", err)
	}
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	if err := remoteTo(t, closed, path).Holds(ctx); err == nil {
		t.Fatal("a closed port holds the vault")
	}
}

// TestRemoteSendsVaultAndOrigin checks every call names its vault and
// carries the Origin Caddy's admin endpoint checks.
func TestRemoteSendsVaultAndOrigin(t *testing.T) {
	v, path := openVault(t)
	h := NewAdminHandler(oneVault{path, v}, nil)
	var seen []*http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	r := remoteTo(t, srv, path)
	if _, err := r.ListUsers(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ListKeys(context.Background(), "ghost@example.com"); StatusOf(err) != http.StatusNotFound || err.Error() != "no user with email ghost@example.com" {
		t.Fatalf("error answer: %v", err)
	}
	for _, req := range seen {
		if req.URL.Query().Get("vault") != path || req.Header.Get("Origin") != srv.URL {
			t.Fatalf("%s %s: vault %q origin %q", req.Method, req.URL, req.URL.Query().Get("vault"), req.Header.Get("Origin"))
		}
	}
}

// TestRemoteErrorWithoutJSON keeps the status of an answer that is not
// the admin API's JSON.
func TestRemoteErrorWithoutJSON(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad gateway", http.StatusBadGateway)
	}))
	t.Cleanup(srv.Close)
	_, err := remoteTo(t, srv, "/v.db").ListUsers(context.Background())
	if StatusOf(err) != http.StatusBadGateway || !strings.Contains(err.Error(), "HTTP 502") {
		t.Fatalf("%v", err)
	}
	if _, err := remoteTo(t, srv, "/v.db").Backup(context.Background(), new(strings.Builder)); StatusOf(err) != http.StatusBadGateway {
		t.Fatalf("backup: %v", err)
	}
}
