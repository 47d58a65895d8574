package cli

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usemysub/caddy-codex-proxy/ops"
	"github.com/usemysub/caddy-codex-proxy/vault"
	"github.com/usemysub/caddy-codex-proxy/vault/engine"
)

// TestSignupCommands sets, shows and clears the sign-up override on the
// file and through an admin API, with the same messages both ways, and
// the override is what a vault opened afterwards sees.
func TestSignupCommands(t *testing.T) {
	for _, mode := range []string{"file", "admin api"} {
		t.Run(mode, func(t *testing.T) {
			h := fakeHost{path: filepath.Join(t.TempDir(), "vault.db")}
			if mode == "admin api" {
				v, err := engine.Open(context.Background(), h.path, vault.Options{EncryptionKeys: []string{testEncKey}, Pepper: testPepper})
				if err != nil {
					t.Fatal(err)
				}
				defer v.Close()
				srv := httptest.NewServer(ops.NewAdminHandler(single{h.path, v}, nil))
				defer srv.Close()
				h.admin = strings.TrimPrefix(srv.URL, "http://")
				h.endpoint = ops.Endpoint{Network: "tcp", Address: h.admin}
				h.locked = true
			}
			if out, _, err := run(t, h, "signup", "show"); err != nil || !strings.HasPrefix(out, "no override: each site's Caddyfile signup applies") {
				t.Fatalf("show before: %v %q", err, out)
			}
			out, _, err := run(t, h, "signup", "set", "domains", "Example.COM", "@b.org", "example.com")
			if err != nil || !strings.HasPrefix(out, "signup domains b.org example.com\t(for every instance on the vault; set ") ||
				!strings.Contains(out, "by the operator (CLI or admin API)") {
				t.Fatalf("set: %v %q", err, out)
			}
			js, _, err := run(t, h, "signup", "show", "--json")
			var res ops.SignupResult
			if err != nil || json.Unmarshal([]byte(js), &res) != nil || res.Override == nil ||
				res.Override.Mode != vault.SignupDomains || strings.Join(res.Override.Domains, ",") != "b.org,example.com" || res.Override.Set.IsZero() {
				t.Fatalf("show --json: %v %s", err, js)
			}
			for _, tc := range []struct {
				args []string
				want string
			}{
				{[]string{"domains"}, "sign-up mode domains needs at least one domain"},
				{[]string{"sometimes"}, `unknown sign-up mode "sometimes" (open, closed or domains)`},
				{[]string{"open", "example.com"}, `sign-up domains need mode "domains"`},
				{[]string{"domains", "a@b.com"}, `"a@b.com" is not a domain`},
				{[]string{"domains", "localhost"}, `"localhost" is not a domain`},
			} {
				if _, _, err := run(t, h, append([]string{"signup", "set"}, tc.args...)...); err == nil || err.Error() != tc.want {
					t.Errorf("set %q: %v, want %q", tc.args, err, tc.want)
				}
			}
			if out, _, err := run(t, h, "signup", "show"); err != nil || !strings.HasPrefix(out, "signup domains b.org example.com") {
				t.Fatalf("a refused set changed the policy: %v %q", err, out)
			}
			if out, _, err := run(t, h, "signup", "clear"); err != nil || !strings.HasPrefix(out, "no override") {
				t.Fatalf("clear: %v %q", err, out)
			}
			if out, _, err := run(t, h, "signup", "show"); err != nil || !strings.HasPrefix(out, "no override") {
				t.Fatalf("show after clear: %v %q", err, out)
			}
			if _, _, err := run(t, h, "signup", "set"); err == nil {
				t.Fatal("set without a mode worked")
			}
		})
	}
}
