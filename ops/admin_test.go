package ops

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// serve sends one request to h and returns the answer.
func serve(t *testing.T, h http.Handler, method, target, body string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, strings.NewReader(body)))
	return rec
}

// TestAdminRoutes checks the routing itself: statuses from ServeMux's
// method patterns, JSON errors, the created-key header.
func TestAdminRoutes(t *testing.T) {
	v, path := openVault(t)
	h := NewAdminHandler(oneVault{path, v}, nil)
	if _, err := v.CreateUser("ada@example.com", ""); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, method, target, body string
		status                     int
		allow, msg                 string
	}{
		{"vaults", "GET", "/codex_proxy/vaults", "", 200, "", ""},
		{"users", "GET", "/codex_proxy/users", "", 200, "", ""},
		{"user by escaped email", "GET", "/codex_proxy/users/" + url.PathEscape("ada@example.com"), "", 200, "", ""},
		{"created user", "POST", "/codex_proxy/users", `{"email":"bob@example.com"}`, 201, "", ""},
		{"existing user", "POST", "/codex_proxy/users", `{"email":"bob@example.com"}`, 200, "", ""},
		{"created key", "POST", "/codex_proxy/keys", `{"email":"ada@example.com"}`, 201, "", ""},
		{"unknown route", "GET", "/codex_proxy/nothing", "", 404, "", "no codex_proxy admin route GET /codex_proxy/nothing"},
		{"trailing slash", "GET", "/codex_proxy/users/", "", 200, "", ""},
		{"escaped slash, trailing slash", "GET", "/codex_proxy/users/a%2Fb/", "", 400, "", `"a/b" is not a valid email address`},
		{"too deep", "GET", "/codex_proxy/users/a/b/c", "", 404, "", "no codex_proxy admin route"},
		{"wrong method", "PUT", "/codex_proxy/users", "", 405, "GET, HEAD, POST", "method PUT not allowed; use GET or HEAD or POST"},
		{"wrong method on key", "GET", "/codex_proxy/keys/abc", "", 405, "DELETE", "not allowed"},
		{"get on disable", "GET", "/codex_proxy/users/a@b.c/disable", "", 405, "POST", "not allowed"},
		{"get on policy", "GET", "/codex_proxy/keys/abc/policy", "", 405, "POST", "not allowed"},
		{"get on revoke", "GET", "/codex_proxy/keys/abc/revoke", "", 405, "POST", "not allowed"},
		{"post on backup", "POST", "/codex_proxy/backup", "", 405, "GET, HEAD", "not allowed"},
		{"unknown field", "POST", "/codex_proxy/users", `{"email":"a@b.c","nmae":"x"}`, 400, "", "unknown field"},
		{"not json", "POST", "/codex_proxy/keys", `{`, 400, "", "reading the request body"},
		{"too big", "POST", "/codex_proxy/accounts", `{"email":"a@b.c","auth_json":"` + strings.Repeat("x", MaxAdminBody) + `"}`, 413, "", "larger than"},
		{"unknown vault", "GET", "/codex_proxy/users?vault=/nowhere/vault.db", "", 404, "", "no codex_proxy vault /nowhere/vault.db is open"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := serve(t, h, tc.method, tc.target, tc.body)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if got := rec.Header().Get("Allow"); got != tc.allow {
				t.Fatalf("Allow %q, want %q", got, tc.allow)
			}
			if rec.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("Content-Type %q", rec.Header().Get("Content-Type"))
			}
			if tc.msg != "" {
				var e struct{ Error string }
				if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || !strings.Contains(e.Error, tc.msg) {
					t.Fatalf("error %q (%v), want %q", rec.Body, err, tc.msg)
				}
			}
			if wantNoStore := tc.name == "created key"; (rec.Header().Get("Cache-Control") == "no-store") != wantNoStore {
				t.Fatalf("Cache-Control %q", rec.Header().Get("Cache-Control"))
			}
		})
	}
}

// TestAdminServeAdminReturnsErrors checks ServeAdmin leaves the error
// answer to its caller (Caddy's admin server) and writes nothing itself.
func TestAdminServeAdminReturnsErrors(t *testing.T) {
	h := NewAdminHandler(oneVault{}, nil)
	rec := httptest.NewRecorder()
	err := h.ServeAdmin(rec, httptest.NewRequest("GET", "/codex_proxy/users", nil))
	if StatusOf(err) != http.StatusNotFound || !strings.Contains(err.Error(), "no codex_proxy vault is open") || rec.Body.Len() != 0 {
		t.Fatalf("err %v, body %q", err, rec.Body)
	}
	rec = httptest.NewRecorder()
	err = h.ServeAdmin(rec, httptest.NewRequest("DELETE", "/codex_proxy/users", nil))
	if StatusOf(err) != http.StatusMethodNotAllowed || rec.Header().Get("Allow") == "" || rec.Body.Len() != 0 {
		t.Fatalf("405: err %v, headers %v, body %q", err, rec.Header(), rec.Body)
	}
}

// severalVaults is a Vaults with two open vaults.
type severalVaults map[string]*vault.Vault

func (s severalVaults) Paths() []string { return []string{"/a/vault.db", "/b/vault.db"} }
func (s severalVaults) Acquire(p string) (*vault.Vault, func(), error) {
	if v, ok := s[p]; ok {
		return v, func() {}, nil
	}
	return nil, nil, errors.New("not open")
}

func TestAcquireVault(t *testing.T) {
	a, _ := openVault(t)
	vs := severalVaults{"/a/vault.db": a}
	if _, _, err := AcquireVault(vs, ""); StatusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "/a/vault.db, /b/vault.db") {
		t.Fatalf("two vaults, none chosen: %v", err)
	}
	if v, _, err := AcquireVault(vs, "/a/vault.db"); err != nil || v != a {
		t.Fatalf("chosen: %v", err)
	}
	if _, _, err := AcquireVault(vs, "/c/vault.db"); StatusOf(err) != http.StatusNotFound || !strings.Contains(err.Error(), "(open: /a/vault.db, /b/vault.db)") {
		t.Fatalf("unknown: %v", err)
	}
	if _, _, err := AcquireVault(oneVault{}, ""); StatusOf(err) != http.StatusNotFound {
		t.Fatalf("none open: %v", err)
	}
}

// shortWriter fails every write after its first n bytes.
type shortWriter struct {
	http.ResponseWriter
	n int
}

func (w *shortWriter) Write(p []byte) (int, error) {
	if w.n <= 0 {
		return 0, errors.New("client gone")
	}
	if len(p) > w.n {
		p = p[:w.n]
	}
	n, err := w.ResponseWriter.Write(p)
	w.n -= n
	return n, err
}

// TestAdminBackup checks the backup route: the file with its headers, and
// a failure mid-stream aborts the answer instead of ending it cleanly.
func TestAdminBackup(t *testing.T) {
	v, path := openVault(t)
	h := NewAdminHandler(oneVault{path, v}, nil)
	rec := serve(t, h, "GET", "/codex_proxy/backup", "")
	if rec.Code != 200 || rec.Header().Get("Content-Disposition") != `attachment; filename="vault.db"` ||
		rec.Header().Get("Cache-Control") != "no-store" || rec.Body.Len() == 0 {
		t.Fatalf("backup: %d %v (%d bytes)", rec.Code, rec.Header(), rec.Body.Len())
	}
	defer func() {
		if r := recover(); r != http.ErrAbortHandler {
			t.Fatalf("a failed stream did not abort: %v", r)
		}
	}()
	h.ServeHTTP(&shortWriter{ResponseWriter: httptest.NewRecorder(), n: 100}, httptest.NewRequest("GET", "/codex_proxy/backup", bytes.NewReader(nil)))
}
