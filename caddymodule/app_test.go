package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// testConfig is one config's worth of handlers, loaded the way Caddy
// loads a config: provisioned in their own context, with the codex_proxy
// app that context creates.
type testConfig struct {
	t        testing.TB
	ctx      caddy.Context
	cancel   func()
	app      *App
	handlers []*Handler
	started  bool
	done     bool
}

// provisionConfig provisions hs as one config; the first Provision error is
// returned after the config is cleaned up, as Caddy does.
func provisionConfig(t testing.TB, hs ...*Handler) (*testConfig, error) {
	t.Helper()
	base, err := caddy.ProvisionContext(&caddy.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := caddy.NewContext(base)
	c := &testConfig{t: t, ctx: ctx, cancel: cancel, handlers: hs}
	for _, h := range hs {
		if err := h.Provision(ctx); err != nil {
			c.stop()
			return nil, err
		}
		if err := h.Validate(); err != nil {
			c.stop()
			return nil, err
		}
	}
	app, err := ctx.App("codex_proxy")
	if err != nil {
		t.Fatal(err)
	}
	c.app = app.(*App)
	t.Cleanup(c.stop)
	return c, nil
}

// start starts the config's codex_proxy app; on error the config is
// cleaned up, as Caddy does.
func (c *testConfig) start() error {
	if err := c.app.Start(); err != nil {
		c.stop()
		return err
	}
	c.started = true
	return nil
}

// stop stops and cleans up the config: Stop (if started), then Cleanup of
// the app and the handlers.
func (c *testConfig) stop() {
	if c.done {
		return
	}
	c.done = true
	if c.started {
		if err := c.app.Stop(); err != nil {
			c.t.Errorf("Stop: %v", err)
		}
	}
	c.cancel() // the app's Cleanup
	for _, h := range c.handlers {
		_ = h.Cleanup()
	}
}

// startHandler provisions h as a config of its own and starts it; the
// test's end stops it.
func startHandler(t testing.TB, h *Handler) *testConfig {
	t.Helper()
	c, err := provisionConfig(t, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.start(); err != nil {
		t.Fatal(err)
	}
	return c
}

// Two distinct test keys and peppers.
const (
	keyA = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	keyB = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
)

// TestProvisionOpensNothing: provisioning (what `caddy validate` and a
// reload do first) creates no file beside the vault; Start creates them.
func TestProvisionOpensNothing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		keys  []string
		pep   string
		files []string
	}{
		{"configured secrets", []string{keyA}, "pepper-0123456789abcdef", []string{"vault.db"}},
		{"generated secrets", nil, "", []string{"vault.db", vault.EncryptionKeyFile, vault.PepperFile}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state")
			h := &Handler{Vault: filepath.Join(dir, "vault.db"), EncryptionKeys: tc.keys, APIKeyPepper: tc.pep}
			c, err := provisionConfig(t, h)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				entries, _ := os.ReadDir(dir)
				t.Fatalf("provisioning touched the vault's directory: %v %v", err, entries)
			}
			if err := c.start(); err != nil {
				t.Fatal(err)
			}
			for _, f := range tc.files {
				if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
					t.Errorf("after Start: %v", err)
				}
			}
		})
	}
}

// TestConflictingVaultSettingsRefused: two handlers naming one vault must
// agree on its secrets and issuer; the refusal comes at provision time,
// before any file is opened.
func TestConflictingVaultSettingsRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Handler)
		want string
	}{
		{"pepper", func(h *Handler) { h.APIKeyPepper = "another-pepper-0123456789" }, "api_key_pepper"},
		{"keys", func(h *Handler) { h.EncryptionKeys = []string{keyB} }, "encryption_key"},
		{"generated vs set", func(h *Handler) { h.EncryptionKeys = nil }, "encryption_key"},
		{"issuer", func(h *Handler) { h.OAuthIssuer = "https://other.example" }, "oauth_issuer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "vault.db")
			a := &Handler{Vault: path, EncryptionKeys: []string{keyA}, APIKeyPepper: "pepper-0123456789abcdef"}
			b := &Handler{Vault: path, EncryptionKeys: []string{keyA}, APIKeyPepper: "pepper-0123456789abcdef"}
			tc.edit(b)
			_, err := provisionConfig(t, a, b)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("got %v, want a refusal naming %s and the vault", err, tc.want)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Fatalf("files created: %v", entries)
			}
		})
	}
	// Agreeing handlers share the vault, with the longest retention.
	path := filepath.Join(t.TempDir(), "vault.db")
	a := &Handler{Vault: path, EncryptionKeys: []string{keyA}, APIKeyPepper: "pepper-0123456789abcdef", LogRetention: caddy.Duration(time.Hour)}
	b := &Handler{Vault: path, EncryptionKeys: []string{keyA}, APIKeyPepper: "pepper-0123456789abcdef", LogRetention: caddy.Duration(2 * time.Hour),
		Limits: vault.Limits{MaxUserResponseBytes: 1 << 30}}
	c, err := provisionConfig(t, a, b)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.start(); err != nil {
		t.Fatal(err)
	}
	if a.vault == nil || a.vault != b.vault {
		t.Fatal("the handlers do not share one vault")
	}
	if got := openVault(path).Settings().LogRetention; got != 2*time.Hour {
		t.Fatalf("retention %v, want the longest", got)
	}
	if got := openVault(path).Settings().Limits; got.MaxUserResponseBytes != 1<<30 || got.ResponseRetention != vault.DefaultResponseRetention {
		t.Fatalf("limits %+v, want the largest", got)
	}
}

// TestReloadAppliesLimits: the responses block follows a reload like
// log_retention, on the vault kept open: a smaller per-response cap
// refuses what the running one took, and a failed reload restores it.
func TestReloadAppliesLimits(t *testing.T) {
	fake := codextest.New(t)
	path := filepath.Join(t.TempDir(), "vault.db")
	handler := func(l vault.Limits) *Handler {
		return &Handler{Vault: path, EncryptionKeys: []string{keyA}, APIKeyPepper: "limits-pepper-0123456789", Upstream: fake.URL, OAuthIssuer: fake.IssuerURL, Limits: l}
	}
	// A per-response cap over the per-user one is refused at provision,
	// before anything opens.
	if _, err := provisionConfig(t, handler(vault.Limits{MaxResponseBytes: 512 << 20})); err == nil || !strings.Contains(err.Error(), "max_size (512 MiB) is larger than max_user_size (256 MiB)") {
		t.Fatalf("provision with max_size over max_user_size: %v", err)
	}
	h1 := handler(vault.Limits{})
	startHandler(t, h1)
	user := linkUser(t, h1.vault, fake, "a@example.com")
	resp := vault.StoredResponse{ID: "resp_1", Response: json.RawMessage(`{"output":["` + strings.Repeat("x", 2048) + `"]}`)}
	if err := h1.vault.PutResponse(user, resp, nil); err != nil {
		t.Fatal(err)
	}

	h2 := handler(vault.Limits{MaxResponseBytes: 1024, ResponseRetention: time.Hour, AuditRetention: 48 * time.Hour})
	c2 := startHandler(t, h2)
	if h2.vault != h1.vault {
		t.Fatal("the reload reopened the vault")
	}
	if got := h2.vault.Settings().Limits; got != h2.Limits {
		t.Fatalf("limits after the reload %+v", got)
	}
	if err := h2.vault.PutResponse(user, resp, nil); !errors.Is(err, vault.ErrResponseTooLarge) {
		t.Fatalf("a response over the reloaded cap: %v", err)
	}
	if got := h2.vault.AuditRetention(); got != 48*time.Hour {
		t.Fatalf("audit retention after the reload: %v", got)
	}

	c2.stop() // the reload failed after our app started
	if err := h1.vault.PutResponse(user, resp, nil); err != nil {
		t.Fatalf("the running config's limits are not back: %v", err)
	}
}

// linkUser creates a user with tokens from the fake and returns its id.
func linkUser(t *testing.T, v *vault.Vault, fake *codextest.Server, email string) string {
	t.Helper()
	tok := fake.AddAccount("acc-"+email, email, "plus")
	u, err := v.CreateUser(email, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := v.PutTokens(u.ID, vault.TokenBundle{IDToken: tok.IDToken, AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken}); err != nil {
		t.Fatal(err)
	}
	return u.ID
}

// waitBundles waits until every bundle in v is sealed with key.
func waitBundles(t *testing.T, v *vault.Vault, key string, want int) {
	t.Helper()
	id, _ := vault.KeyID(key)
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := v.BundlesByKey()
		if err == nil && got[id] == want && len(got) == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("bundles by key: %v, %v; want %d under %s", got, err, want, id)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReloadRotatesKeys follows docs/operations.md's rotation recipe with reloads
// in one process: [A] → [B A] re-encrypts in the background → [B] → a
// fresh start with [B] still reads every account.
func TestReloadRotatesKeys(t *testing.T) {
	fake := codextest.New(t)
	path := filepath.Join(t.TempDir(), "vault.db")
	handler := func(keys ...string) *Handler {
		return &Handler{Vault: path, EncryptionKeys: keys, APIKeyPepper: "rotation-pepper-0123456789", Upstream: fake.URL, OAuthIssuer: fake.IssuerURL}
	}
	reload := func(old *testConfig, h *Handler) *testConfig {
		t.Helper()
		c, err := provisionConfig(t, h)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.start(); err != nil {
			t.Fatal(err)
		}
		old.stop()
		return c
	}
	h1 := handler(keyA)
	c1 := startHandler(t, h1)
	var users []string
	for _, e := range []string{"a@example.com", "b@example.com"} {
		users = append(users, linkUser(t, h1.vault, fake, e))
	}

	h2 := handler(keyB, keyA)
	c2 := reload(c1, h2)
	if h2.vault != h1.vault {
		t.Fatal("the reload reopened the vault")
	}
	waitBundles(t, h2.vault, keyB, len(users))

	h3 := handler(keyB)
	c3 := reload(c2, h3)
	for _, id := range users {
		if _, _, err := h3.vault.AccessToken(context.Background(), id, false); err != nil {
			t.Fatalf("after [B]: %v", err)
		}
	}
	c3.stop()

	// A restart with [B] alone reads every bundle from the file.
	h4 := handler(keyB)
	startHandler(t, h4)
	for _, id := range users {
		if _, _, err := h4.vault.AccessToken(context.Background(), id, true); err != nil && !errors.Is(err, vault.ErrRefreshUnavailable) {
			t.Fatalf("after restart: %v", err)
		}
		info, err := h4.vault.TokenInfo(id)
		if err != nil || info.RelinkNeeded {
			t.Fatalf("after restart: %+v %v", info, err)
		}
	}
}

// TestReloadRefusesDroppingKeyInUse: a reload that removes the key still
// sealing accounts fails, at provision when it can tell then, at Start
// otherwise, and the running config keeps its keys.
func TestReloadRefusesDroppingKeyInUse(t *testing.T) {
	fake := codextest.New(t)
	path := filepath.Join(t.TempDir(), "vault.db")
	handler := func(keys ...string) *Handler {
		return &Handler{Vault: path, EncryptionKeys: keys, APIKeyPepper: "rotation-pepper-0123456789", Upstream: fake.URL, OAuthIssuer: fake.IssuerURL}
	}
	h1 := handler(keyA)
	startHandler(t, h1)
	user := linkUser(t, h1.vault, fake, "a@example.com")

	// At provision: the vault is open here and key A seals a bundle.
	_, err := provisionConfig(t, handler(keyB))
	if !errors.Is(err, vault.ErrKeyStillInUse) || !strings.Contains(err.Error(), "#1") || strings.Contains(err.Error(), keyA) {
		t.Fatalf("provision: %v", err)
	}

	// At Start: the bundle appears after the new config was provisioned.
	if err := h1.vault.Unlink(user); err != nil {
		t.Fatal(err)
	}
	c2, err := provisionConfig(t, handler(keyB))
	if err != nil {
		t.Fatal(err)
	}
	user = linkUser(t, h1.vault, fake, "late@example.com")
	if err := c2.start(); !errors.Is(err, vault.ErrKeyStillInUse) {
		t.Fatalf("start: %v", err)
	}
	if _, _, err := h1.vault.AccessToken(context.Background(), user, false); err != nil {
		t.Fatalf("the running config lost the account: %v", err)
	}
	if got := openVault(path).Settings().EncryptionKeys; len(got) != 1 || got[0] != keyA {
		t.Fatal("the refused config's keys took effect")
	}
}

// TestFailedReloadRestoresSettings: when the new config stops before the
// old one (another app failed to start), the old config's settings apply
// again, keeping the new key as a decrypt key until bundles move back.
func TestFailedReloadRestoresSettings(t *testing.T) {
	fake := codextest.New(t)
	path := filepath.Join(t.TempDir(), "vault.db")
	h1 := &Handler{Vault: path, EncryptionKeys: []string{keyA}, APIKeyPepper: "first-pepper-0123456789", Upstream: fake.URL, OAuthIssuer: fake.IssuerURL}
	startHandler(t, h1)
	linkUser(t, h1.vault, fake, "a@example.com")
	oldKey, _, err := h1.vault.CreateKey(mustUserID(t, h1.vault, "a@example.com"), "old")
	if err != nil {
		t.Fatal(err)
	}

	h2 := &Handler{Vault: path, EncryptionKeys: []string{keyB, keyA}, APIKeyPepper: "second-pepper-0123456789", Upstream: fake.URL, OAuthIssuer: "https://issuer.example"}
	c2 := startHandler(t, h2)
	waitBundles(t, h2.vault, keyB, 1)
	if _, _, err := h2.vault.VerifyKey(oldKey); !errors.Is(err, vault.ErrKeyInvalid) {
		t.Fatalf("the new pepper did not take effect: %v", err)
	}
	if got := openVault(path).live.refresher.Load().oauth.Issuer; got != "https://issuer.example" {
		t.Fatalf("refresher issuer %q", got)
	}

	c2.stop() // the reload failed after our app started
	live := openVault(path).live
	if got := openVault(path).Settings().EncryptionKeys; len(got) != 2 || got[0] != keyA || got[1] != keyB {
		t.Fatalf("keys after the rollback: %d", len(got))
	}
	if _, _, err := h1.vault.VerifyKey(oldKey); err != nil {
		t.Fatalf("the old pepper is not back: %v", err)
	}
	if got := live.refresher.Load().oauth.Issuer; got != fake.IssuerURL {
		t.Fatalf("refresher issuer after rollback %q", got)
	}
	waitBundles(t, h1.vault, keyA, 1)
}

// mustUserID returns the id of the user with email.
func mustUserID(t *testing.T, v *vault.Vault, email string) string {
	t.Helper()
	u, err := v.UserByEmail(email)
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}

// TestHandlerWaitsForTheApp: a request that arrives before the app started
// (Caddy starts apps in random order) waits for it; one that waits too
// long gets a 503 OpenAI error, not a panic or an empty body.
func TestHandlerWaitsForTheApp(t *testing.T) {
	fake := codextest.New(t)
	h := &Handler{Vault: filepath.Join(t.TempDir(), "vault.db"), EncryptionKeys: []string{keyA},
		APIKeyPepper: "wait-pepper-0123456789", Upstream: fake.URL, OAuthIssuer: fake.IssuerURL}
	c, err := provisionConfig(t, h)
	if err != nil {
		t.Fatal(err)
	}
	serve := func() *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "/v1/models", nil)
		r.Header.Set("Authorization", "Bearer cpk_nope")
		if err := h.ServeHTTP(rec, r, nil); err != nil {
			t.Errorf("ServeHTTP: %v", err)
		}
		return rec
	}

	old := vaultReadyWait
	vaultReadyWait = 50 * time.Millisecond
	rec := serve()
	vaultReadyWait = old
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), `"code":"vault_unavailable"`) || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("before start: %d %s", rec.Code, rec.Body)
	}

	got := make(chan *httptest.ResponseRecorder)
	go func() { got <- serve() }()
	time.Sleep(50 * time.Millisecond)
	if err := c.start(); err != nil {
		t.Fatal(err)
	}
	if rec := <-got; rec.Code != http.StatusUnauthorized {
		t.Fatalf("a request waiting across Start: %d %s", rec.Code, rec.Body)
	}
}
