package dashboard

import (
	"context"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/codex"
	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
	"github.com/usemysub/caddy-codex-proxy/vault"
	"github.com/usemysub/caddy-codex-proxy/vault/engine"
)

const (
	testEncKey = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	testPepper = "dashboard-test-pepper-0123456789"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// mailbox is a Mailer that keeps messages.
type mailbox struct{ ch chan Message }

func newMailbox() *mailbox { return &mailbox{ch: make(chan Message, 100)} }

func (m *mailbox) Send(_ context.Context, msg Message) error {
	m.ch <- msg
	return nil
}

func (m *mailbox) wait(t *testing.T) Message {
	t.Helper()
	select {
	case msg := <-m.ch:
		return msg
	case <-time.After(10 * time.Second):
		t.Fatal("no mail arrived")
		return Message{}
	}
}

// none fails if a message arrives within a short while.
func (m *mailbox) none(t *testing.T) {
	t.Helper()
	select {
	case msg := <-m.ch:
		t.Fatalf("unexpected mail to %s", msg.To)
	case <-time.After(300 * time.Millisecond):
	}
}

// refresher adapts codex.OAuth to the vault.
type refresher struct{ o *codex.OAuth }

func (r refresher) Refresh(ctx context.Context, rt string) (vault.RefreshedTokens, error) {
	t, err := r.o.Refresh(ctx, rt)
	if err != nil {
		return vault.RefreshedTokens{}, err
	}
	return vault.RefreshedTokens{IDToken: t.IDToken, AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, ExpiresIn: t.ExpiresIn}, nil
}

// env is a dashboard over a fresh vault and a fake OAuth issuer.
type env struct {
	t     *testing.T
	v     *vault.Vault
	fake  *codextest.Server
	oauth *codex.OAuth
	d     *Dashboard
	srv   *httptest.Server
	mail  *mailbox
	clock *clock
	logs  *logBuffer
}

// logBuffer records the dashboard's log messages and their levels.
type logBuffer struct {
	mu     sync.Mutex
	msgs   []string
	levels []slog.Level
}

func (l *logBuffer) Enabled(context.Context, slog.Level) bool { return true }
func (l *logBuffer) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logBuffer) WithGroup(string) slog.Handler            { return l }
func (l *logBuffer) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, r.Message)
	l.levels = append(l.levels, r.Level)
	return nil
}

// levelOf is the level of the first message containing snippet; ok is
// false when there is none.
func (l *logBuffer) levelOf(snippet string) (level slog.Level, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, m := range l.msgs {
		if strings.Contains(m, snippet) {
			return l.levels[i], true
		}
	}
	return 0, false
}

type envOption func(*Config)

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	e := &env{t: t, mail: newMailbox(), clock: &clock{t: time.Now()}, logs: &logBuffer{}}
	e.fake = codextest.New(t)
	e.oauth = &codex.OAuth{Issuer: e.fake.IssuerURL}
	v, err := engine.Open(context.Background(), filepath.Join(t.TempDir(), "vault.db"), vault.Options{
		EncryptionKeys:   []string{testEncKey},
		Pepper:           testPepper,
		Now:              e.clock.Now,
		Refresher:        refresher{e.oauth},
		LogFlushInterval: 10 * time.Millisecond,
		Sleep:            func(context.Context, time.Duration) error { return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	e.v = v
	cfg := Config{
		Vault:  v,
		OAuth:  e.oauth,
		Mailer: e.mail,
		Signup: SignupPolicy{Mode: SignupOpen},
		Logger: slog.New(e.logs),
		Now:    e.clock.Now,
		ClientIP: func(r *http.Request) string {
			if ip := r.Header.Get("X-Test-IP"); ip != "" {
				return ip
			}
			return remoteHost(r)
		},
	}
	for _, o := range opts {
		o(&cfg)
	}
	d, err := NewDashboard(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.d = d
	e.srv = httptest.NewServer(d)
	t.Cleanup(func() {
		e.srv.Close()
		_ = d.Close(context.Background())
		_ = v.Close()
	})
	return e
}

// browser is a cookie-keeping client that does not follow redirects.
type browser struct {
	e    *env
	c    *http.Client
	last string // body of the last page
	ip   string
	flow string // the paste flow startLink started
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, c: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

type resp struct {
	status   int
	body     string
	location string
	header   http.Header
}

func (b *browser) do(req *http.Request) resp {
	b.e.t.Helper()
	if b.ip != "" {
		req.Header.Set("X-Test-IP", b.ip)
	}
	r, err := b.c.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer r.Body.Close()
	body, _ := io.ReadAll(r.Body)
	b.last = string(body)
	return resp{status: r.StatusCode, body: string(body), location: r.Header.Get("Location"), header: r.Header}
}

func (b *browser) get(path string) resp {
	b.e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.url(path), nil)
	return b.do(req)
}

func (b *browser) url(path string) string {
	if strings.HasPrefix(path, "http") {
		return path
	}
	return b.e.srv.URL + path
}

// post sends a form, adding the CSRF token of the last page unless the
// form has one.
func (b *browser) post(path string, form url.Values) resp {
	b.e.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", csrfOf(b.last))
	}
	req, _ := http.NewRequest(http.MethodPost, b.url(path), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(page string) string {
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

var linkRE = regexp.MustCompile(`https?://[^\s"<>]+/login/confirm\?token=[A-Za-z0-9_\-%=&.]+`)

// linkIn finds the magic link in a mail body.
func linkIn(t *testing.T, body string) string {
	t.Helper()
	m := linkRE.FindString(body)
	if m == "" {
		t.Fatalf("no sign-in link in %q", body)
	}
	return html.UnescapeString(m)
}

// signIn runs the whole magic-link flow for email and returns the browser.
func (e *env) signIn(email string) *browser {
	e.t.Helper()
	b := e.browser()
	b.get("/login")
	if r := b.login(url.Values{"email": {email}}); r.status != http.StatusOK {
		e.t.Fatalf("login: %d %s", r.status, r.body)
	}
	link := linkIn(e.t, e.mail.wait(e.t).Text)
	// With a public origin the link names it; open it on the test server.
	if u, err := url.Parse(link); err == nil {
		link = u.RequestURI()
	}
	if r := b.get(link); r.status != http.StatusOK {
		e.t.Fatalf("confirm page: %d", r.status)
	}
	r := b.post("/login/confirm", url.Values{"token": {tokenOf(e.t, link)}})
	if r.status != http.StatusSeeOther {
		e.t.Fatalf("confirm: %d %s", r.status, r.body)
	}
	return b
}

func tokenOf(t *testing.T, link string) string {
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("token")
}

// user returns the vault user for email.
func (e *env) user(email string) vault.User {
	e.t.Helper()
	u, err := e.v.UserByEmail(email)
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

func mustContain(t *testing.T, body string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(body, p) {
			t.Fatalf("page does not contain %q:\n%s", p, body)
		}
	}
}

func mustNotContain(t *testing.T, body string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if strings.Contains(body, p) {
			t.Fatalf("page contains %q:\n%s", p, body)
		}
	}
}

func newJar() (http.CookieJar, error) { return cookiejar.New(nil) }

// login asks for a magic link as the form does and follows the
// post/redirect/get to the "check your email" page.
func (b *browser) login(form url.Values) resp {
	b.e.t.Helper()
	r := b.post("/login", form)
	if r.status == http.StatusSeeOther && strings.Contains(r.location, "/login?sent=") {
		return b.get(r.location)
	}
	return r
}

// follow GETs the target of a 303, as a browser would; other answers are
// returned as they are.
func (b *browser) follow(r resp) resp {
	b.e.t.Helper()
	if r.status == http.StatusSeeOther && r.location != "" {
		return b.get(r.location)
	}
	return r
}

var formTokenRE = regexp.MustCompile(`name="form_token" value="([^"]+)"`)

func formTokenOf(page string) string {
	m := formTokenRE.FindStringSubmatch(page)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// postForm posts to path with the one-time form token of the last page.
func (b *browser) postForm(path string, form url.Values) resp {
	b.e.t.Helper()
	if _, ok := form["form_token"]; !ok {
		form.Set("form_token", formTokenOf(b.last))
	}
	return b.post(path, form)
}
