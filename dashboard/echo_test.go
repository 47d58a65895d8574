package dashboard

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestRefusalsQuoteAShortPrefix: a form field far over its limit is
// refused with a message that says so, and the page quotes at most
// maxQuoted characters of it, not the whole 100 KB.
func TestRefusalsQuoteAShortPrefix(t *testing.T) {
	e := newEnv(t)
	b := e.signIn("ada@example.com")
	u := e.user("ada@example.com")
	_, k, err := e.v.CreateKey(u.ID, "ci")
	if err != nil {
		t.Fatal(err)
	}
	startLink(t, b, "chatgpt")
	flow := b.flow
	huge := strings.Repeat("x", 100<<10)
	long := strings.Repeat("x", maxQuoted+1) // more than a refusal may quote
	visitor := e.browser()
	for _, tc := range []struct {
		name   string
		b      *browser
		page   string // the page the form is on
		path   string
		form   url.Values
		status int
		want   string
		// refill: the value is within the field's limit, so the form
		// keeps it to be corrected; only the message must cut it.
		refill bool
	}{
		{"sign-in email", visitor, "/login", "/login", url.Values{"email": {huge + "@example.com"}}, http.StatusBadRequest, "That address is too long", false},
		{"key label", b, "/keys", "/keys", url.Values{"label": {huge}}, http.StatusBadRequest, "Labels are one line of at most 100 characters", false},
		{"policy models", b, "/keys/detail?id=" + k.ID, "/keys/policy", url.Values{"id": {k.ID}, "models": {huge}}, http.StatusBadRequest, "“Models” is too long", false},
		{"policy expiry", b, "/keys/detail?id=" + k.ID, "/keys/policy", url.Values{"id": {k.ID}, "expires": {huge}}, http.StatusBadRequest, "“Expires” is too long", false},
		{"policy rpm", b, "/keys/detail?id=" + k.ID, "/keys/policy", url.Values{"id": {k.ID}, "rpm": {huge}}, http.StatusBadRequest, "“Requests per minute” is too long", false},
		{"policy pin", b, "/keys/detail?id=" + k.ID, "/keys/policy", url.Values{"id": {k.ID}, "account": {huge}}, http.StatusBadRequest, "“Account pin” is too long", false},
		// Within the field's limit, the value quoted in the message is
		// cut (the form keeps it to be corrected).
		{"bad model quoted", b, "/keys/detail?id=" + k.ID, "/keys/policy", url.Values{"id": {k.ID}, "models": {"#" + strings.Repeat("x", 90)}}, http.StatusBadRequest, "Not saved: model", true},
		{"paste", b, "/chatgpt", "/chatgpt/callback", url.Values{"callback": {huge}}, http.StatusBadRequest, "too long to be the address", false},
		{"paste in a flow", b, "/chatgpt/link?flow=" + flow, "/chatgpt/callback", url.Values{"callback": {huge}, "flow": {flow}}, http.StatusBadRequest, "too long to be the address", false},
		{"paste foreign host", b, "/chatgpt", "/chatgpt/callback", url.Values{"callback": {"https://" + long + ".example/?code=a&state=b"}}, http.StatusBadRequest, "This address is from another site", false},
		{"paste issuer error", b, "/chatgpt", "/chatgpt/callback", url.Values{"callback": {"http://localhost:1455/auth/callback?state=s&error=server_error&error_description=" + long}}, http.StatusBadRequest, "ChatGPT reported a problem", false},
		{"auth.json", b, "/chatgpt", "/chatgpt/authjson", url.Values{"authjson": {huge}}, http.StatusBadRequest, "not a usable auth.json", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.b.get(tc.page)
			r := tc.b.post(tc.path, tc.form)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d", r.status, tc.status)
			}
			mustContain(t, r.body, tc.want)
			quoted := r.body
			if tc.refill {
				quoted = notice(t, r.body)
				mustContain(t, r.body, `value="#`+strings.Repeat("x", 90)+`"`)
			}
			if strings.Contains(quoted, strings.Repeat("x", maxQuoted+1)) {
				t.Fatalf("the page quotes more than %d characters of the input (%d bytes)", maxQuoted, len(r.body))
			}
			if len(r.body) > 32<<10 {
				t.Fatalf("refusal page of %d bytes", len(r.body))
			}
		})
	}
}

// notice is the page's error notice.
func notice(t *testing.T, body string) string {
	t.Helper()
	i := strings.Index(body, `id="form-error"`)
	if i < 0 {
		t.Fatal("no error notice")
	}
	j := strings.Index(body[i:], "</div>")
	return body[i : i+j]
}

func TestQuoteInput(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"short", "short"},
		{strings.Repeat("a", maxQuoted), strings.Repeat("a", maxQuoted)},
		{strings.Repeat("a", maxQuoted+1), strings.Repeat("a", maxQuoted) + "…"},
		{strings.Repeat("é", maxQuoted+5), strings.Repeat("é", maxQuoted) + "…"}, // characters, not bytes
	} {
		if got := quoteInput(tc.in); got != tc.want {
			t.Errorf("quoteInput(%.10q…) = %q", tc.in, got)
		}
	}
	long := strings.Repeat("b", 100)
	for _, tc := range []struct{ in, want string }{
		{`model "gpt" is bad`, `model "gpt" is bad`},
		{`model "` + long + `" is bad`, `model "` + long[:maxQuoted] + `…" is bad`},
		{`two "` + long + `" and "` + long + `"`, `two "` + long[:maxQuoted] + `…" and "` + long[:maxQuoted] + `…"`},
		{`unbalanced " quote`, `unbalanced " quote`},
	} {
		if got := clipQuoted(tc.in); got != tc.want {
			t.Errorf("clipQuoted(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
