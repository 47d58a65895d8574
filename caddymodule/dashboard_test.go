package caddymodule

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func TestDashboardCaddyfile(t *testing.T) {
	parse := func(body string) (*Handler, error) {
		var h Handler
		err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("codex_proxy {\n" + body + "\n}"))
		return &h, err
	}
	ok := []struct {
		body  string
		check func(*DashboardConfig) bool
	}{
		{"dashboard off", func(c *DashboardConfig) bool { return c.Disabled }},
		{"dashboard /admin", func(c *DashboardConfig) bool { return c.Prefix == "/admin" && !c.Disabled }},
		{"signup open", func(c *DashboardConfig) bool { return c.Signup == "open" }},
		{"signup closed", func(c *DashboardConfig) bool { return c.Signup == "closed" }},
		{"signup domains a.com b.org", func(c *DashboardConfig) bool {
			return c.Signup == "domains" && len(c.SignupDomains) == 2 && c.SignupDomains[1] == "b.org"
		}},
		{"resend {\napi_key {env.RESEND_API_KEY}\nfrom a@example.com\n}", func(c *DashboardConfig) bool {
			return c.Resend != nil && c.Resend.APIKey == "{env.RESEND_API_KEY}" && c.Resend.From == "a@example.com"
		}},
		{"mail log", func(c *DashboardConfig) bool { return c.SMTP == nil && !c.DevLinks }},
		{"mail log dev", func(c *DashboardConfig) bool { return c.DevLinks }},
		{"smtp mail.example.com:465 {\nfrom a@example.com\n}", func(c *DashboardConfig) bool {
			return c.SMTP.Address == "mail.example.com:465" && c.SMTP.From == "a@example.com" && c.SMTP.StartTLS == ""
		}},
		{"smtp 127.0.0.1:25 {\nusername u\npassword {env.P}\nfrom a@example.com\nstarttls off\n}", func(c *DashboardConfig) bool {
			return c.SMTP.Username == "u" && c.SMTP.Password == "{env.P}" && c.SMTP.StartTLS == "off"
		}},
	}
	for _, tc := range ok {
		h, err := parse(tc.body)
		if err != nil {
			t.Errorf("%q: %v", tc.body, err)
			continue
		}
		if h.Dashboard == nil || !tc.check(h.Dashboard) {
			t.Errorf("%q parsed to %+v", tc.body, h.Dashboard)
		}
	}
	if h, _ := parse("upstream http://x"); h.Dashboard != nil {
		t.Error("dashboard config without dashboard subdirectives")
	}
	bad := map[string]string{
		"dashboard":               "wrong argument count",
		"dashboard admin":         "path prefix",
		"dashboard /v1":           "collides",
		"dashboard /a /b":         "wrong argument count",
		"signup":                  "wrong argument count",
		"signup maybe":            "open, closed or domains",
		"signup domains":          "at least one domain",
		"signup open example.com": "takes no domains",
		"mail smtp":               "mail takes log",
		"mail log dev please":     "mail takes log",
		"smtp host:25":            "from",
		"smtp host:25 {\nfrom a@b.c\nstarttls yes\n}":                    "starttls",
		"smtp host:25 {\nfrom a@b.c\nhelo x\n}":                          "unrecognized smtp subdirective",
		"smtp host:25 {\nfrom a@b.c\nfrom d@e.f\n}":                      "more than once",
		"mail log\nsmtp host:25 {\nfrom a@b.c\n}":                        "exclude each other",
		"smtp host:25 {\nfrom a@b.c\n}\nmail log":                        "exclude each other",
		"signup open\nsignup closed":                                     "more than once",
		"resend {\nfrom a@b.c\n}":                                        "api_key and from",
		"resend {\napi_key k\nfrom a@b.c\nfoo x\n}":                      "unrecognized resend subdirective",
		"resend {\napi_key k\nfrom a@b.c\n}\nmail log":                   "exclude each other",
		"mail log\nresend {\napi_key k\nfrom a@b.c\n}":                   "exclude each other",
		"resend {\napi_key k\napi_key j\nfrom a@b.c\n}":                  "resend api_key given more than once",
		"smtp h:25 {\nfrom a@b.c\n}\nresend {\napi_key k\nfrom a@b.c\n}": "exclude each other",
	}
	for body, want := range bad {
		if _, err := parse(body); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err %v, want %q", body, err, want)
		}
	}
	// Through the adapter, errors name the file and line.
	_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte("ai.example.com {\ncodex_proxy {\nsignup sometimes\n}\n}\n"), map[string]any{"filename": "Caddyfile"})
	if err == nil || !strings.Contains(err.Error(), "Caddyfile:3") {
		t.Fatalf("adapter error %v", err)
	}
}

// provisionWith provisions a handler with a dashboard configuration and
// serves it with a next handler that answers 418.
func provisionWith(t *testing.T, dc *DashboardConfig, origin string) (*Handler, *httptest.Server) {
	t.Helper()
	h := &Handler{
		Vault:          filepath.Join(t.TempDir(), "vault.db"),
		EncryptionKeys: []string{"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
		APIKeyPepper:   "test-pepper-0123456789",
		Upstream:       "http://127.0.0.1:1/backend-api/codex",
		PublicOrigin:   origin,
		Dashboard:      dc,
	}
	startHandler(t, h)
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.WriteHeader(http.StatusTeapot)
		return nil
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h.ServeHTTP(w, r, next); err != nil {
			t.Errorf("ServeHTTP: %v", err)
		}
	}))
	t.Cleanup(srv.Close)
	return h, srv
}

func TestDashboardRouting(t *testing.T) {
	get := func(url string) (int, string) {
		t.Helper()
		r, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return r.StatusCode, string(b)
	}
	t.Run("default at /", func(t *testing.T) {
		_, srv := provisionWith(t, nil, "")
		for path, want := range map[string]int{"/": 200, "/login": 200, "/static/app.css": 200, "/keys": 200, "/dashboard": 418, "/robots.txt": 418, "/v1/models": 401} {
			if got, _ := get(srv.URL + path); got != want {
				t.Errorf("%s: %d, want %d", path, got, want)
			}
		}
		_, body := get(srv.URL + "/login")
		if !strings.Contains(body, `action="/login"`) {
			t.Fatalf("login page: %s", body)
		}
	})
	t.Run("prefix", func(t *testing.T) {
		_, srv := provisionWith(t, &DashboardConfig{Prefix: "/admin", Signup: "open"}, "https://ai.example.com")
		for path, want := range map[string]int{"/": 418, "/login": 418, "/admin/": 200, "/admin/login": 200, "/admin/static/app.js": 200} {
			if got, _ := get(srv.URL + path); got != want {
				t.Errorf("%s: %d, want %d", path, got, want)
			}
		}
	})
	t.Run("off", func(t *testing.T) {
		h, srv := provisionWith(t, &DashboardConfig{Disabled: true}, "")
		if h.dashboard != nil {
			t.Fatal("dashboard built while off")
		}
		for _, path := range []string{"/", "/login", "/static/app.css"} {
			if got, _ := get(srv.URL + path); got != 418 {
				t.Errorf("%s: %d", path, got)
			}
		}
	})
	t.Run("bad settings fail provisioning", func(t *testing.T) {
		for _, dc := range []*DashboardConfig{
			{Signup: "sometimes"},
			{Signup: "domains"},
			{Prefix: "/v1/x"},
			{SMTP: &SMTPConfig{Address: "nohostport", From: "a@example.com"}},
			{SMTP: &SMTPConfig{Address: "mail.example.com:587"}},
		} {
			h := &Handler{
				Vault:          filepath.Join(t.TempDir(), "vault.db"),
				EncryptionKeys: []string{"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
				APIKeyPepper:   "test-pepper-0123456789",
				Dashboard:      dc,
			}
			_, err := provisionConfig(t, h)
			if err == nil || !strings.Contains(err.Error(), "dashboard") {
				t.Errorf("%+v: %v", dc, err)
			}
		}
	})
}
