package dashboard

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestNewMatcherNeedsNoVault: the paths are known from the config alone,
// the config is checked as NewDashboard checks it, and the zero Matcher
// (a dashboard that is off) takes nothing from the site.
func TestNewMatcherNeedsNoVault(t *testing.T) {
	for _, tc := range []struct {
		prefix string
		want   map[string]bool
	}{
		{"", map[string]bool{"/": true, "/login": true, "/keys": true, "/static/app.css": true, "/v1/models": false, "/other/page": false}},
		{"/dash/", map[string]bool{"/dash": true, "/dash/keys": true, "/dash/nope": true, "/login": false, "/static/app.css": false}},
	} {
		m, err := NewMatcher(Config{Prefix: tc.prefix})
		if err != nil {
			t.Fatalf("prefix %q: %v", tc.prefix, err)
		}
		for path, want := range tc.want {
			if got := m.Match(httptest.NewRequest(http.MethodGet, path, nil)); got != want {
				t.Errorf("prefix %q: Match(%s) = %v, want %v", tc.prefix, path, got, want)
			}
		}
	}
	if _, err := NewMatcher(Config{Prefix: "/v1"}); err == nil {
		t.Error("prefix /v1 accepted")
	}
	if _, err := NewMatcher(Config{Signup: SignupPolicy{Mode: "sometimes"}}); err == nil {
		t.Error("unknown signup mode accepted")
	}
	for _, path := range []string{"/", "/login", "/static/app.css"} {
		if (Matcher{}).Match(httptest.NewRequest(http.MethodGet, path, nil)) {
			t.Errorf("zero Matcher matches %s", path)
		}
	}
}

// TestNewMailerChoice: one mailer, validated, or the log.
func TestNewMailerChoice(t *testing.T) {
	logged := ""
	log := func(msg string, kv ...any) { logged = msg }
	resend := &ResendMailer{APIKey: "re_x", From: "a@example.com"}
	smtp := &SMTPMailer{Addr: "mail.example.com:587", From: "a@example.com"}
	if _, err := NewMailer(resend, smtp, log); err == nil || !strings.Contains(err.Error(), "exclude each other") {
		t.Errorf("resend and smtp: %v", err)
	}
	if m, err := NewMailer(resend, nil, log); err != nil || m != Mailer(*resend) {
		t.Errorf("resend: %v %v", m, err)
	}
	if m, err := NewMailer(nil, smtp, log); err != nil || m.(SMTPMailer).Addr != smtp.Addr {
		t.Errorf("smtp: %v %v", m, err)
	}
	if _, err := NewMailer(&ResendMailer{From: "a@example.com"}, nil, log); err == nil {
		t.Error("resend without api_key accepted")
	}
	if _, err := NewMailer(nil, &SMTPMailer{Addr: "nohost", From: "a@example.com"}, log); err == nil {
		t.Error("smtp without a port accepted")
	}
	m, err := NewMailer(nil, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(t.Context(), Message{To: "b@example.com"}); err != nil || logged == "" {
		t.Errorf("log mailer: %v, logged %q", err, logged)
	}
}
