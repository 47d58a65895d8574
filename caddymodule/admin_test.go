package caddymodule

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/usemysub/caddy-codex-proxy/claims"
	"github.com/usemysub/caddy-codex-proxy/ops"
	"github.com/usemysub/caddy-codex-proxy/vault"
	"github.com/usemysub/caddy-codex-proxy/vault/engine"
)

// Secrets for vaults the tests open with explicit keys.
const (
	testEncKey = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	testPepper = "pepper-for-tests-only-0123456789"
)

// testRefreshToken is in every fixture auth.json; no output may show it.
const testRefreshToken = "rt-never-print-me"

// authJSON is a Codex CLI auth.json in the official shape.
func authJSON(t *testing.T, email, plan string) []byte {
	t.Helper()
	jwt := claims.Encode(claims.Claims{AccountID: "acc-" + plan, PlanType: plan, Email: email, Expiry: time.Now().Add(time.Hour)})
	b, err := json.Marshal(map[string]any{
		"OPENAI_API_KEY": nil,
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

// openTestVault opens a vault file with the given secrets.
func openTestVault(t *testing.T, path, key, pepper string) *vault.Vault {
	t.Helper()
	v, err := engine.Open(context.Background(), path, vault.Options{EncryptionKeys: []string{key}, Pepper: pepper, OpenTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// poolVault opens a vault at path and registers it in pool as the app
// would; the test's cleanup releases it.
func poolVault(t *testing.T, pool *caddy.UsagePool, path string) *vault.Vault {
	t.Helper()
	val, _, err := pool.LoadOrNew(path, func() (caddy.Destructor, error) {
		return &pooledVault{Vault: openTestVault(t, path, testEncKey, testPepper)}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = pool.Delete(path) })
	return val.(*pooledVault).Vault
}

// serveAdmin mounts the router's routes the way Caddy's admin server does,
// including its error rendering.
func serveAdmin(r caddy.AdminRouter) http.Handler {
	mux := http.NewServeMux()
	for _, route := range r.Routes() {
		mux.Handle(route.Pattern, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			err := route.Handler.ServeHTTP(w, req)
			if err == nil {
				return
			}
			var ae caddy.APIError
			if !errors.As(err, &ae) {
				ae = caddy.APIError{HTTPStatus: http.StatusInternalServerError, Err: err}
			}
			if ae.Message == "" && ae.Err != nil {
				ae.Message = ae.Err.Error()
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(ae.HTTPStatus)
			_ = json.NewEncoder(w).Encode(ae)
		}))
	}
	return mux
}

// call sends one request to h and decodes the JSON answer into out.
func call(t *testing.T, h http.Handler, method, target string, body any, out any) *httptest.ResponseRecorder {
	t.Helper()
	var rd *bytes.Reader
	switch b := body.(type) {
	case nil:
		rd = bytes.NewReader(nil)
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, rd))
	if out != nil {
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			t.Fatalf("%s %s: answer %q: %v", method, target, rec.Body, err)
		}
	}
	return rec
}

// errorOf returns the {"error"} message of an answer.
func errorOf(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
		t.Fatalf("error answer %q: %v", rec.Body, err)
	}
	return e.Error
}

func TestAdminUsersAndKeys(t *testing.T) {
	pool := caddy.NewUsagePool()
	v := poolVault(t, pool, filepath.Join(t.TempDir(), "vault.db"))
	h := serveAdmin(adminAPI{pool: pool})

	// Create with a login, then update: same user, login re-imported.
	var created ops.UserResult
	rec := call(t, h, "POST", "/codex_proxy/users", ops.UserRequest{Email: "Ada@Example.com", Name: "Ada", AuthJSON: authJSON(t, "ada@example.com", "plus")}, &created)
	if rec.Code != http.StatusCreated || !created.Created || !created.TokensImported {
		t.Fatalf("create: %d %+v", rec.Code, created)
	}
	if created.User.Email != "ada@example.com" || created.User.Name != "Ada" || created.User.ChatGPT == nil || created.User.ChatGPT.PlanType != "plus" {
		t.Fatalf("create: user %+v", created.User)
	}
	if strings.Contains(rec.Body.String(), testRefreshToken) {
		t.Fatal("answer shows the refresh token")
	}
	var again ops.UserResult
	rec = call(t, h, "POST", "/codex_proxy/users", ops.UserRequest{Email: "ada@example.com", Name: "Ada L.", AuthJSON: authJSON(t, "other@example.com", "pro")}, &again)
	if rec.Code != http.StatusOK || again.Created || again.User.ID != created.User.ID || again.User.ChatGPT.PlanType != "pro" {
		t.Fatalf("update: %d %+v", rec.Code, again)
	}
	if len(again.Warnings) != 2 { // name unchanged; login of someone else
		t.Fatalf("update warnings: %q", again.Warnings)
	}

	var k ops.CreatedKey
	rec = call(t, h, "POST", "/codex_proxy/keys", ops.KeyRequest{Email: "ada@example.com", Label: "laptop"}, &k)
	if rec.Code != http.StatusCreated || rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("create key: %d %v", rec.Code, rec.Header())
	}
	if _, u, err := v.VerifyKey(k.Plaintext); err != nil || u.ID != created.User.ID || k.Label != "laptop" {
		t.Fatalf("new key does not verify: %v %+v", err, k.Key)
	}

	var users ops.UsersResult
	call(t, h, "GET", "/codex_proxy/users", nil, &users)
	if len(users.Users) != 1 || users.Users[0].ActiveKeys != 1 {
		t.Fatalf("users: %+v", users)
	}
	var one ops.UserInfo
	call(t, h, "GET", "/codex_proxy/users/"+url.PathEscape("ada@example.com"), nil, &one)
	if one.ID != created.User.ID {
		t.Fatalf("user: %+v", one)
	}

	var keys ops.KeysResult
	call(t, h, "GET", "/codex_proxy/keys?email=ada@example.com", nil, &keys)
	if len(keys.Keys) != 1 || keys.Keys[0].ID != k.ID || keys.Keys[0].Disabled {
		t.Fatalf("keys: %+v", keys)
	}
	if strings.Contains(mustJSON(t, keys), k.Plaintext) {
		t.Fatal("key list shows the key")
	}

	// Both revoke forms work, and revoking twice is fine.
	var rev ops.RevokeResult
	rec = call(t, h, "DELETE", "/codex_proxy/keys/"+k.ID+"?email=ada@example.com", nil, &rev)
	if rec.Code != http.StatusOK || !rev.Revoked.Disabled {
		t.Fatalf("revoke: %d %+v", rec.Code, rev)
	}
	if _, _, err := v.VerifyKey(k.Plaintext); !errors.Is(err, vault.ErrKeyInvalid) {
		t.Fatalf("revoked key verifies: %v", err)
	}
	if rec := call(t, h, "POST", "/codex_proxy/keys/"+k.ID+"/revoke?email=ada@example.com", nil, nil); rec.Code != http.StatusOK {
		t.Fatalf("second revoke: %d %s", rec.Code, rec.Body)
	}
}

func TestAdminDisableEnable(t *testing.T) {
	pool := caddy.NewUsagePool()
	v := poolVault(t, pool, filepath.Join(t.TempDir(), "vault.db"))
	h := serveAdmin(adminAPI{pool: pool})
	u, err := v.CreateUser("bob@example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	var plain []string
	for range 2 {
		p, _, err := v.CreateKey(u.ID, "")
		if err != nil {
			t.Fatal(err)
		}
		plain = append(plain, p)
	}

	var res ops.UserStateResult
	rec := call(t, h, "POST", "/codex_proxy/users/bob@example.com/disable", nil, &res)
	if rec.Code != http.StatusOK || !res.User.Disabled {
		t.Fatalf("disable: %d %+v", rec.Code, res)
	}
	for _, p := range plain {
		if _, _, err := v.VerifyKey(p); !errors.Is(err, vault.ErrUserDisabled) {
			t.Fatalf("key of a disabled user: %v", err)
		}
	}
	res = ops.UserStateResult{}
	call(t, h, "POST", "/codex_proxy/users/bob@example.com/enable", nil, &res)
	if res.User.ID != u.ID || res.User.Disabled {
		t.Fatalf("enable: %+v", res)
	}
	for _, p := range plain {
		if _, _, err := v.VerifyKey(p); err != nil {
			t.Fatalf("key after enable: %v", err)
		}
	}
}

func TestAdminErrors(t *testing.T) {
	pool := caddy.NewUsagePool()
	v := poolVault(t, pool, filepath.Join(t.TempDir(), "vault.db"))
	h := serveAdmin(adminAPI{pool: pool})
	apiKeyOnly := `{"email":"eve@example.com","auth_json":{"OPENAI_API_KEY":"sk-x","tokens":null}}`

	for _, tc := range []struct {
		name, method, target string
		body                 any
		status               int
		msg                  string
	}{
		{"bad email", "POST", "/codex_proxy/users", ops.UserRequest{Email: "nope"}, 400, "not a valid email"},
		{"api-key auth.json", "POST", "/codex_proxy/users", apiKeyOnly, 400, "OpenAI API key"},
		{"unknown field", "POST", "/codex_proxy/users", `{"email":"a@b.c","nmae":"x"}`, 400, "unknown field"},
		{"not json", "POST", "/codex_proxy/keys", `{`, 400, "request body"},
		{"key for unknown user", "POST", "/codex_proxy/keys", ops.KeyRequest{Email: "ghost@example.com"}, 404, "no user with email ghost@example.com"},
		{"keys of unknown user", "GET", "/codex_proxy/keys?email=ghost@example.com", nil, 404, "no user"},
		{"revoke unknown key", "DELETE", "/codex_proxy/keys/nope?email=eve@example.com", nil, 404, "no user"},
		{"disable unknown user", "POST", "/codex_proxy/users/ghost@example.com/disable", nil, 404, "no user"},
		{"unknown route", "GET", "/codex_proxy/nothing", nil, 404, "no codex_proxy admin route"},
		{"wrong method", "PUT", "/codex_proxy/users", nil, 405, "not allowed"},
		{"wrong method on key", "GET", "/codex_proxy/keys/abc", nil, 405, "not allowed"},
		{"get on disable", "GET", "/codex_proxy/users/a@b.c/disable", nil, 405, "not allowed"},
		{"unknown vault", "GET", "/codex_proxy/users?vault=/nowhere/vault.db", nil, 404, "no codex_proxy vault /nowhere/vault.db is open"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := call(t, h, tc.method, tc.target, tc.body, nil)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if msg := errorOf(t, rec); !strings.Contains(msg, tc.msg) {
				t.Fatalf("error %q does not contain %q", msg, tc.msg)
			}
			if tc.status == 405 && rec.Header().Get("Allow") == "" {
				t.Fatal("405 without Allow")
			}
		})
	}
	if users, _ := v.ListUsers(); len(users) != 0 {
		t.Fatalf("failed requests left users behind: %+v", users)
	}
}

func TestAdminVaultSelection(t *testing.T) {
	dir := t.TempDir()
	pool := caddy.NewUsagePool()
	h := serveAdmin(adminAPI{pool: pool})
	a, b := filepath.Join(dir, "a", "vault.db"), filepath.Join(dir, "b", "vault.db")

	rec := call(t, h, "GET", "/codex_proxy/users", nil, nil)
	if rec.Code != http.StatusNotFound {
		t.Fatalf("no vault: %d %s", rec.Code, rec.Body)
	}

	mkdirAll(t, filepath.Dir(a), filepath.Dir(b))
	va := poolVault(t, pool, a)
	if _, err := va.CreateUser("in-a@example.com", ""); err != nil {
		t.Fatal(err)
	}
	var users ops.UsersResult
	if rec := call(t, h, "GET", "/codex_proxy/users", nil, &users); rec.Code != 200 || len(users.Users) != 1 {
		t.Fatalf("one vault, no parameter: %d %s", rec.Code, rec.Body)
	}

	poolVault(t, pool, b)
	rec = call(t, h, "GET", "/codex_proxy/users", nil, nil)
	if rec.Code != http.StatusBadRequest || !strings.Contains(errorOf(t, rec), a) {
		t.Fatalf("two vaults, no parameter: %d %s", rec.Code, rec.Body)
	}
	for path, n := range map[string]int{a: 1, b: 0} {
		users = ops.UsersResult{}
		call(t, h, "GET", "/codex_proxy/users?vault="+url.QueryEscape(path), nil, &users)
		if len(users.Users) != n {
			t.Fatalf("vault %s: %+v", path, users)
		}
	}
	var vs ops.VaultsResult
	call(t, h, "GET", "/codex_proxy/vaults", nil, &vs)
	if !slices.Equal(vs.Vaults, []string{a, b}) {
		t.Fatalf("vaults: %q", vs.Vaults)
	}
}

// TestAdminUsesHandlerPool checks the registered module (no pool of its
// own) finds the vault the codex_proxy app opened for a config, and no
// longer once that config is gone.
func TestAdminUsesHandlerPool(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault.db")
	hd := &Handler{Vault: path, EncryptionKeys: []string{testEncKey}, APIKeyPepper: testPepper}
	cfg := startHandler(t, hd)
	v := hd.vault
	info, err := caddy.GetModule("admin.api.codex_proxy")
	if err != nil {
		t.Fatal(err)
	}
	h := serveAdmin(info.New().(caddy.AdminRouter))
	var k ops.CreatedKey
	if _, err := v.CreateUser("cy@example.com", ""); err != nil {
		t.Fatal(err)
	}
	rec := call(t, h, "POST", "/codex_proxy/keys?vault="+url.QueryEscape(path), ops.KeyRequest{Email: "cy@example.com"}, &k)
	if rec.Code != http.StatusCreated {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if _, _, err := v.VerifyKey(k.Plaintext); err != nil {
		t.Fatal(err)
	}
	cfg.stop()
	rec = call(t, h, "GET", "/codex_proxy/users", nil, nil)
	if rec.Code != http.StatusNotFound {
		t.Fatalf("after the config stopped: %d %s", rec.Code, rec.Body)
	}
}

// TestAcquireOutlivesCleanup checks a request keeps its vault open across
// a config unload, and the vault closes when the request ends.
func TestAcquireOutlivesCleanup(t *testing.T) {
	pool := caddy.NewUsagePool()
	path := filepath.Join(t.TempDir(), "vault.db")
	if _, _, err := pool.LoadOrNew(path, func() (caddy.Destructor, error) {
		return &pooledVault{Vault: openTestVault(t, path, testEncKey, testPepper)}, nil
	}); err != nil {
		t.Fatal(err)
	}
	a := adminAPI{pool: pool}
	v, release, err := ops.AcquireVault(a, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Delete(path); err != nil { // the handler's Cleanup
		t.Fatal(err)
	}
	if _, err := v.CreateUser("still@example.com", ""); err != nil {
		t.Fatalf("vault closed under a request: %v", err)
	}
	release()
	if _, err := v.CreateUser("after@example.com", ""); !errors.Is(err, vault.ErrClosed) {
		t.Fatalf("vault still open after the last release: %v", err)
	}
	if _, _, err := ops.AcquireVault(a, ""); err == nil {
		t.Fatal("acquired a vault no config holds")
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mkdirAll(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
}
