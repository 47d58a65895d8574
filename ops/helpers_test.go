package ops

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/claims"
	"github.com/usemysub/caddy-codex-proxy/vault"
	"github.com/usemysub/caddy-codex-proxy/vault/engine"
)

// Secrets of the test vaults.
const (
	testEncKey = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	testPepper = "pepper-for-tests-only-0123456789"
)

// testRefreshToken is in every fixture auth.json; no answer may show it.
const testRefreshToken = "rt-never-print-me"

// authJSON is a Codex CLI auth.json in the official shape.
func authJSON(t *testing.T, email, plan string) []byte {
	t.Helper()
	jwt := claims.Encode(claims.Claims{AccountID: "acc-" + plan, PlanType: plan, Email: email, Expiry: time.Now().Add(time.Hour)})
	b, err := json.Marshal(map[string]any{
		"tokens": map[string]any{
			"id_token":      jwt,
			"access_token":  jwt,
			"refresh_token": testRefreshToken,
			"account_id":    "acc-" + plan,
		},
		"last_refresh": time.Now().UTC().Format(time.RFC3339Nano),
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// openVault opens a fresh bbolt vault in a temporary directory.
func openVault(t *testing.T) (*vault.Vault, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vault.db")
	v, err := engine.Open(context.Background(), path, vault.Options{EncryptionKeys: []string{testEncKey}, Pepper: testPepper, OpenTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v, path
}

// oneVault is a Vaults with one open vault, as a Caddy with one site.
type oneVault struct {
	path string
	v    *vault.Vault
}

func (o oneVault) Paths() []string {
	if o.v == nil {
		return []string{}
	}
	return []string{o.path}
}

func (o oneVault) Acquire(string) (*vault.Vault, func(), error) { return o.v, func() {}, nil }

// adminServer serves the admin API over vs on a loopback port.
func adminServer(t *testing.T, vs Vaults) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(NewAdminHandler(vs, nil))
	t.Cleanup(srv.Close)
	return srv
}

// remoteTo returns the Remote of the vault at path behind srv.
func remoteTo(t *testing.T, srv *httptest.Server, path string) *RemoteService {
	t.Helper()
	r := Remote(Endpoint{Network: "tcp", Address: strings.TrimPrefix(srv.URL, "http://")}, path)
	t.Cleanup(func() { r.Close() })
	return r
}

// impls returns both Services over the same fresh vault: the use cases
// must behave alike whichever one a caller holds.
func impls(t *testing.T) map[string]func(t *testing.T) (Service, *vault.Vault) {
	return map[string]func(t *testing.T) (Service, *vault.Vault){
		"local": func(t *testing.T) (Service, *vault.Vault) {
			v, _ := openVault(t)
			return Local(v), v
		},
		"remote": func(t *testing.T) (Service, *vault.Vault) {
			v, path := openVault(t)
			return remoteTo(t, adminServer(t, oneVault{path, v}), path), v
		},
	}
}
