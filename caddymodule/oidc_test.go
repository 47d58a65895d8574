package caddymodule

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/usemysub/caddy-codex-proxy/dashboard"
)

// TestProvisionOIDCContactsNoProvider: provisioning and starting a
// config with single sign-on (what caddy validate and a reload do) never
// reach the OpenID provider, and the client secret comes from the
// environment; an unset one is refused at provision time.
func TestProvisionOIDCContactsNoProvider(t *testing.T) {
	var hits atomic.Int32
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		http.Error(w, "no", http.StatusServiceUnavailable)
	}))
	defer idp.Close()
	handler := func() *Handler {
		return &Handler{Vault: filepath.Join(t.TempDir(), "vault.db"), EncryptionKeys: []string{keyA}, APIKeyPepper: "pepper-0123456789abcdef",
			Dashboard: &DashboardConfig{OIDC: &dashboard.OIDCConfig{Issuer: idp.URL, ClientID: "c", ClientSecret: "{env.TEST_OIDC_SECRET}"}}}
	}

	t.Setenv("TEST_OIDC_SECRET", "from-the-environment")
	h := handler()
	startHandler(t, h)
	if got := h.dashCfg.OIDC.ClientSecret; got != "from-the-environment" {
		t.Fatalf("client secret %q, want the environment's", got)
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the provider was contacted %d times before any sign-in", n)
	}

	t.Setenv("TEST_OIDC_SECRET", "")
	_, err := provisionConfig(t, handler())
	if err == nil || !strings.Contains(err.Error(), "client_secret") || strings.Contains(err.Error(), "from-the-environment") {
		t.Fatalf("unset secret: %v", err)
	}
}
