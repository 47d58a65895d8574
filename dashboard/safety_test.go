package dashboard

import (
	"crypto/tls"
	"encoding/csv"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

func TestEmailPolicy(t *testing.T) {
	for _, c := range []struct {
		in        string
		localhost bool
		want      string // normalised, or "" when refused
		problem   string
	}{
		{"ada@example.com", false, "ada@example.com", ""},
		{"  Ada.Lovelace+ai@Mail.Example.co.uk ", false, "ada.lovelace+ai@mail.example.co.uk", ""},
		{"o'brien@example.ie", false, "o'brien@example.ie", ""},
		{"", false, "", emailEmpty},
		{"ada", false, "", emailOneAt},
		{"ada@@example.com", false, "", emailOneAt},
		{"a@b@example.com", false, "", emailOneAt},
		{"Ada <ada@example.com>", false, "", emailBareOnly},
		{"<ada@example.com>", false, "", emailBareOnly},
		{`"ada"@example.com`, false, "", emailBareOnly},
		{`"a@b"@example.com`, false, "", emailBareOnly},
		{"ada(comment)@example.com", false, "", emailBareOnly},
		{"ada@example.com (Ada)", false, "", emailBareOnly},
		{"ada @example.com", false, "", emailBareOnly},
		{"ada@example", false, "", emailDomain},
		{"ada@example.", false, "", emailBareOnly},
		{"ada@-example.com", false, "", emailDomain},
		{"ada@exa_mple.com", false, "", emailDomain},
		{"ada@1.2.3.4", false, "", emailDomain},
		{"ada@[1.2.3.4]", false, "", emailDomain},
		{".ada@example.com", false, "", emailBareOnly},
		{"a..da@example.com", false, "", emailBareOnly},
		{"ada!#@example.com", false, "", emailLocal},
		{"=cmd@example.com", false, "", emailLocal},
		{"ädä@example.com", false, "", emailLocal},
		{strings.Repeat("a", 65) + "@example.com", false, "", emailLocal},
		{"a@" + strings.Repeat("b", 250) + ".com", false, "", emailTooLong},
		{"ada@localhost", false, "", emailLocalhost},
		{"ada@localhost", true, "ada@localhost", ""},
		{"ada@example.com\r\nBcc: x@example.com", false, "", emailOneAt},
	} {
		got, problem := checkEmail(c.in, c.localhost)
		if got != c.want || (c.problem != "" && problem != c.problem) || (c.want == "" && problem == "") {
			t.Errorf("checkEmail(%q, %v) = %q, %q; want %q, %q", c.in, c.localhost, got, problem, c.want, c.problem)
		}
	}
}

func TestLoginRefusesBadEmailClearly(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.get("/login")
	r := b.post("/login", url.Values{"email": {"Ada <ada@example.com>"}})
	if r.status != http.StatusBadRequest {
		t.Fatalf("display name: %d", r.status)
	}
	mustContain(t, r.body, "without a name, quotes or brackets", `aria-invalid="true"`)
	e.mail.none(t)
}

func TestCSVCells(t *testing.T) {
	for in, want := range map[string]string{
		"gpt-5.5": "gpt-5.5", "=HYPERLINK(\"http://x\")": "'=HYPERLINK(\"http://x\")", "+1": "'+1", "-2+3": "'-2+3",
		"@SUM(A1)": "'@SUM(A1)", "\tx": "'\tx", "\r=x": "'\r=x", "": "", "a=b": "a=b",
	} {
		if got := csvSafe(in); got != want {
			t.Errorf("csvSafe(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRequestsCSVExport(t *testing.T) {
	e := newEnv(t)
	b := e.signIn("ada@example.com")
	u := e.user("ada@example.com")
	_, k, err := e.v.CreateKey(u.ID, `=cmd|' /C calc'!A0, "quoted"`)
	if err != nil {
		t.Fatal(err)
	}
	now := e.clock.Now()
	e.v.LogRequest(vault.LogRecord{Time: now.Add(-time.Minute), UserID: u.ID, KeyID: k.ID, RequestID: "req_1", Route: "chat_completions",
		Model: "@evil", Status: 200, Duration: 1500 * time.Millisecond, InputTokens: 10, OutputTokens: 5, Estimated: true})
	e.v.LogRequest(vault.LogRecord{Time: now, UserID: u.ID, RequestID: "req_2", Route: "responses", Model: "gpt-5.5", Status: 502, ErrorCode: "upstream_error",
		ServiceTier: "priority", RequestedTier: "fast"})
	waitFor(t, func() bool {
		rs, _ := e.v.RecentRequests(u.ID, time.Time{}, 10, vault.StatusAll)
		return len(rs) == 2
	})
	r := b.get("/requests.csv")
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") ||
		!strings.Contains(r.header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("export: %d %v", r.status, r.header)
	}
	rows, err := csv.NewReader(strings.NewReader(r.body)).ReadAll()
	if err != nil {
		t.Fatalf("not CSV: %v\n%s", err, r.body)
	}
	if len(rows) != 3 || rows[0][0] != "time_utc" {
		t.Fatalf("rows: %q", rows)
	}
	newest, older := rows[1], rows[2]
	if newest[1] != "req_2" || newest[4] != "Responses" || newest[7] != "502" || newest[8] != "upstream_error" {
		t.Fatalf("newest row %q", newest)
	}
	if older[2] != `'=cmd|' /C calc'!A0, "quoted"` || older[5] != "'@evil" || older[4] != "Chat" || older[9] != "1500" ||
		older[15] != "true" || newest[15] != "false" || newest[16] != "priority" || newest[17] != "fast" || older[16] != "" {
		t.Fatalf("older row %q", older)
	}
	// The failed filter applies.
	rows, _ = csv.NewReader(strings.NewReader(b.get("/requests.csv?status=failed").body)).ReadAll()
	if len(rows) != 2 || rows[1][1] != "req_2" {
		t.Fatalf("failed only: %q", rows)
	}
	// Signed out: no export.
	if r := e.browser().get("/requests.csv"); r.status != http.StatusSeeOther {
		t.Fatalf("export signed out: %d", r.status)
	}
}

func TestFormTokenOnce(t *testing.T) {
	var f formTokens
	now := time.Now()
	tok := f.issue("u1", now)
	calls := 0
	do := func() string { calls++; return "/keys?created=x" }
	if _, _, ok := f.use(tok, "u2", now, do); ok || calls != 0 {
		t.Fatal("another user's token was accepted")
	}
	dest, replay, ok := f.use(tok, "u1", now, do)
	if !ok || replay || dest != "/keys?created=x" || calls != 1 {
		t.Fatalf("first use: %q %v %v %d", dest, replay, ok, calls)
	}
	dest, replay, ok = f.use(tok, "u1", now, do)
	if !ok || !replay || dest != "/keys?created=x" || calls != 1 {
		t.Fatalf("second use: %q %v %v %d", dest, replay, ok, calls)
	}
	old := f.issue("u1", now)
	if _, _, ok := f.use(old, "u1", now.Add(formTokenTTL+time.Second), do); ok {
		t.Fatal("expired token accepted")
	}
	if _, _, ok := f.use("made-up", "u1", now, do); ok {
		t.Fatal("unknown token accepted")
	}
	// Concurrent uses (a double click): one runs, all get its answer.
	tok = f.issue("u1", now)
	var mu sync.Mutex
	runs := 0
	var wg sync.WaitGroup
	dests := make([]string, 8)
	for i := range dests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dests[i], _, _ = f.use(tok, "u1", now, func() string {
				mu.Lock()
				runs++
				mu.Unlock()
				time.Sleep(20 * time.Millisecond)
				return "/keys?created=y"
			})
		}()
	}
	wg.Wait()
	if runs != 1 {
		t.Fatalf("%d runs", runs)
	}
	for _, d := range dests {
		if d != "/keys?created=y" {
			t.Fatalf("dests %q", dests)
		}
	}
	// Tokens per user are bounded.
	for range formTokensPerUser * 3 {
		f.issue("u3", now)
	}
	n := 0
	for _, e := range f.m {
		if e.user == "u3" {
			n++
		}
	}
	if n > formTokensPerUser {
		t.Fatalf("%d tokens kept for one user", n)
	}
}

// TestKeyCreateTwiceMakesOneKey: re-sending the create form (a reload of
// the POST, a double click) makes one key and shows it.
func TestKeyCreateTwiceMakesOneKey(t *testing.T) {
	e := newEnv(t)
	b := e.signIn("ada@example.com")
	page := b.get("/keys").body
	form := url.Values{"label": {"once"}, "form_token": {formTokenOf(page)}, "csrf": {csrfOf(page)}}
	r1 := b.post("/keys", form)
	r2 := b.post("/keys", form)
	if r1.status != http.StatusSeeOther || r2.status != http.StatusSeeOther || r1.location != r2.location {
		t.Fatalf("posts: %d %q, %d %q", r1.status, r1.location, r2.status, r2.location)
	}
	keys, _ := e.v.ListKeys(e.user("ada@example.com").ID)
	if len(keys) != 1 {
		t.Fatalf("%d keys from one form", len(keys))
	}
	// The browser shows the second answer: the key is there.
	mustContain(t, b.get(r2.location).body, `id="new-key"`)
	// Without a token nothing is made.
	r := b.post("/keys", url.Values{"label": {"no token"}})
	if r.status != http.StatusConflict {
		t.Fatalf("no token: %d", r.status)
	}
	mustContain(t, r.body, "no key was created")
	if keys, _ := e.v.ListKeys(e.user("ada@example.com").ID); len(keys) != 1 {
		t.Fatalf("%d keys", len(keys))
	}
}

func TestHSTS(t *testing.T) {
	e := newEnv(t)
	loop := newEnv(t, func(c *Config) { c.HSTSOnLoopback = true })
	for _, c := range []struct {
		d    *Dashboard
		host string
		tls  bool
		want bool
	}{
		{e.d, "ai.example.com", true, true},
		{e.d, "ai.example.com", false, false},
		{e.d, "localhost:8443", true, false},
		{e.d, "app.localhost", true, false},
		{e.d, "127.0.0.1:8443", true, false},
		{e.d, "[::1]:8443", true, false},
		{loop.d, "localhost:8443", true, true},
	} {
		req := httptest.NewRequest(http.MethodGet, "/login", nil)
		req.Host = c.host
		if c.tls {
			req.TLS = &tls.ConnectionState{}
		}
		w := httptest.NewRecorder()
		c.d.ServeHTTP(w, req)
		got := w.Header().Get("Strict-Transport-Security")
		if (got == "max-age=31536000") != c.want || (!c.want && got != "") {
			t.Errorf("host %s tls %v: HSTS %q, want %v", c.host, c.tls, got, c.want)
		}
	}
}

func TestNotFoundPage(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	r := b.get("/no-such-page")
	if r.status != http.StatusNotFound || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Fatalf("unknown path: %d %q", r.status, r.header.Get("Content-Type"))
	}
	mustContain(t, r.body, "This page does not exist", "/no-such-page", "Go to the start page")
	if r.header.Get("Content-Security-Policy") == "" {
		t.Fatal("404 page without security headers")
	}
	s := e.signIn("ada@example.com")
	mustContain(t, s.get("/keyz").body, "Go to your dashboard")

	// Under a prefix, Match claims every path below it.
	p := newEnv(t, func(c *Config) { c.Prefix = "/dash" })
	req := httptest.NewRequest(http.MethodGet, "/dash/nope", nil)
	if !p.d.Match(req) {
		t.Fatal("prefix path not matched")
	}
	if p.d.Match(httptest.NewRequest(http.MethodGet, "/elsewhere", nil)) {
		t.Fatal("outside the prefix matched")
	}
	w := httptest.NewRecorder()
	p.d.ServeHTTP(w, req)
	if w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), "This page does not exist") {
		t.Fatalf("prefix 404: %d", w.Code)
	}
	// At the root, other paths are not claimed (the site may serve them),
	// but NotFound is there for the caller.
	if e.d.Match(httptest.NewRequest(http.MethodGet, "/elsewhere", nil)) {
		t.Fatal("root dashboard claimed an unknown path")
	}
}

func TestSignOutEverywhere(t *testing.T) {
	e := newEnv(t)
	a := e.signIn("ada@example.com")
	other := e.signIn("ada@example.com") // another browser
	mal := e.signIn("mallory@example.com")
	a.get("/overview")
	r := a.post("/logout/everywhere", nil)
	if r.status != http.StatusSeeOther || r.location != "/login?msg=everywhere" {
		t.Fatalf("everywhere: %d %q", r.status, r.location)
	}
	mustContain(t, a.get(r.location).body, "signed out on every device")
	for name, b := range map[string]*browser{"this": a, "other": other} {
		if r := b.get("/overview"); r.status != http.StatusSeeOther {
			t.Fatalf("%s browser still signed in: %d", name, r.status)
		}
	}
	if r := mal.get("/overview"); r.status != http.StatusOK {
		t.Fatalf("another user was signed out: %d", r.status)
	}
}

func TestConfirmNamesTheAccount(t *testing.T) {
	e := newEnv(t)
	mal := e.browser()
	mal.get("/login")
	mal.login(url.Values{"email": {"mallory@example.com"}})
	link := linkIn(t, e.mail.wait(t).Text)
	// Ada, signed in, opens Mallory's link.
	ada := e.signIn("ada@example.com")
	r := ada.get(link)
	mustContain(t, r.body, "Sign in as mallory@example.com", "You are signed in as <strong>ada@example.com</strong>")
}

func TestLoginPRG(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.get("/login")
	r := b.post("/login", url.Values{"email": {"ada@example.com"}})
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location, "/login?sent=") {
		t.Fatalf("login: %d %q", r.status, r.location)
	}
	e.mail.wait(t)
	// A reload shows the same page and sends nothing more.
	for range 2 {
		mustContain(t, b.get(r.location).body, "Check your email", "ada@example.com")
	}
	e.mail.none(t)
	// Another browser cannot read it.
	mustNotContain(t, e.browser().get(r.location).body, "ada@example.com")
}
