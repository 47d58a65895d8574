package caddymodule

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

func TestVaultConfigsFromJSON(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", "/xdg")
	t.Setenv("CODEX_TEST_VAULT_DIR", "/srv/codex")
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	route := func(handlers string) string {
		return `{"apps":{"http":{"servers":{"srv0":{"routes":[{"handle":[` + handlers + `]}]}}}}}`
	}
	for _, tc := range []struct {
		name    string
		cfg     string
		paths   []string
		keys    []string
		pepper  string
		keep    time.Duration
		limits  vault.Limits
		wantErr string
	}{
		{
			name:  "defaults",
			cfg:   route(`{"handler":"codex_proxy"}`),
			paths: []string{"/xdg/caddy/codex_proxy/vault.db"},
			keep:  time.Duration(DefaultLogRetention),
		},
		{
			name:   "placeholders and relative path",
			cfg:    route(`{"handler":"codex_proxy","vault":"data/v.db","encryption_keys":["{env.CODEX_TEST_VAULT_DIR}"," ",""],"api_key_pepper":" p ","log_retention":"48h"}`),
			paths:  []string{filepath.Join(cwd, "data/v.db")},
			keys:   []string{"/srv/codex"},
			pepper: "p",
			keep:   48 * time.Hour,
		},
		{
			name:  "nested in a subroute, next to other handlers",
			cfg:   route(`{"handler":"headers"},{"handler":"subroute","routes":[{"handle":[{"handler":"codex_proxy","vault":"{env.CODEX_TEST_VAULT_DIR}/v.db"}]}]}`),
			paths: []string{"/srv/codex/v.db"},
			keep:  time.Duration(DefaultLogRetention),
		},
		{
			name: "shared vault keeps the longest retention and the largest caps",
			cfg: route(`{"handler":"codex_proxy","vault":"/a.db","log_retention":3600000000000,"limits":{"response_retention":3600000000000,"max_response_size":1024}},` +
				`{"handler":"codex_proxy","vault":"/a.db","log_retention":"2h","limits":{"max_user_response_size":1073741824}},{"handler":"codex_proxy","vault":"/b.db"}`),
			paths: []string{"/a.db", "/b.db"},
			keep:  2 * time.Hour,
			limits: vault.Limits{ResponseRetention: vault.DefaultResponseRetention, MaxResponseBytes: vault.DefaultMaxResponseBytes, MaxUserResponseBytes: 1 << 30,
				AuditRetention: vault.DefaultAuditRetention},
		},
		{
			name:    "shared vault with different secrets",
			cfg:     route(`{"handler":"codex_proxy","vault":"/a.db","api_key_pepper":"one"},{"handler":"codex_proxy","vault":"/a.db","api_key_pepper":"two"}`),
			wantErr: "different encryption keys or peppers",
		},
		{
			name:    "vault path expands to nothing",
			cfg:     route(`{"handler":"codex_proxy","vault":"{env.CODEX_TEST_UNSET}"}`),
			wantErr: "expands to nothing",
		},
		{
			name: "no handler",
			cfg:  route(`{"handler":"static_response"}`),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vcs, err := vaultConfigsFromJSON([]byte(tc.cfg))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var paths []string
			for _, vc := range vcs {
				paths = append(paths, vc.Path)
			}
			if !slices.Equal(paths, tc.paths) {
				t.Fatalf("paths %q, want %q", paths, tc.paths)
			}
			if len(vcs) == 0 {
				return
			}
			if vc := vcs[0]; !slices.Equal(vc.EncryptionKeys, tc.keys) || vc.Pepper != tc.pepper || vc.LogRetention != tc.keep || vc.Limits != tc.limits {
				t.Fatalf("got keys %d, pepper set %v, retention %v, limits %+v", len(vc.EncryptionKeys), vc.Pepper != "", vc.LogRetention, vc.Limits)
			}
		})
	}
}

func TestAdminAddress(t *testing.T) {
	t.Setenv("CODEX_TEST_ADMIN_PORT", "2999")
	for _, tc := range []struct {
		cfg, want string
	}{
		{`{}`, caddy.DefaultAdminListen},
		{`{"admin":{}}`, caddy.DefaultAdminListen},
		{`{"admin":{"listen":"127.0.0.1:3000"}}`, "127.0.0.1:3000"},
		{`{"admin":{"listen":"localhost:{env.CODEX_TEST_ADMIN_PORT}"}}`, "localhost:2999"},
		{`{"admin":{"listen":"unix//run/caddy/admin.sock"}}`, "unix//run/caddy/admin.sock"},
		{`{"admin":{"disabled":true,"listen":"127.0.0.1:3000"}}`, ""},
	} {
		got, err := adminAddress([]byte(tc.cfg))
		if err != nil || got != tc.want {
			t.Errorf("%s: %q %v, want %q", tc.cfg, got, err, tc.want)
		}
	}
}

// TestAdminEndpoint checks how an admin address is dialled; ops'
// TestRemoteBaseAndOrigin checks the URLs and Origin sent to it.
func TestAdminEndpoint(t *testing.T) {
	for _, tc := range []struct {
		addr, network, address, err string
	}{
		{addr: "localhost:2019", network: "tcp", address: "localhost:2019"},
		{addr: "tcp/127.0.0.1:3000", network: "tcp", address: "127.0.0.1:3000"},
		{addr: "unix//run/caddy.sock|0220", network: "unix", address: "/run/caddy.sock"},
		{addr: "fd/3", err: "file descriptor"},
		{addr: "localhost:2019-2020", err: "port range"},
	} {
		ep, err := adminEndpoint(tc.addr)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want %q", tc.addr, err, tc.err)
			}
			continue
		}
		if err != nil || ep.Network != tc.network || ep.Address != tc.address {
			t.Errorf("%s: %+v %v", tc.addr, ep, err)
		}
	}
}
