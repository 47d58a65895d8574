package codex

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
)

// BenchmarkNewRequest builds the upstream request of one /responses turn
// (URL, auth and client headers, the turn's cache and request ids) for an
// account whose token is unchanged, as every turn but the first after a
// refresh is.
func BenchmarkNewRequest(b *testing.B) {
	c, err := NewClient(Config{Upstream: "https://chatgpt.example/backend-api/codex"})
	if err != nil {
		b.Fatal(err)
	}
	token := "eyJ" + strings.Repeat("x", 1800)
	body := []byte(`{"model":"gpt-5.5"}`)
	cl := call{method: http.MethodPost, path: "/responses", body: body, accept: "text/event-stream",
		header: func(hd http.Header) {
			hd["session_id"] = []string{"k"}
			hd.Set("x-client-request-id", "req_1")
		}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.newRequest(context.Background(), cl, token, "acct-1"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestAccountHeadersFollowToken: the shared headers are per account and
// per token: a refreshed token is sent from the next request on, another
// account gets its own id, and a token a header cannot carry is refused
// however the account's previous one was.
func TestAccountHeadersFollowToken(t *testing.T) {
	c, err := NewClient(Config{Upstream: "https://chatgpt.example/backend-api/codex"})
	if err != nil {
		t.Fatal(err)
	}
	cl := call{method: http.MethodPost, path: "/responses", body: []byte(`{}`), accept: "text/event-stream"}
	for _, tc := range []struct{ token, account string }{
		{"tok-1", "acct-a"}, {"tok-1", "acct-a"}, {"tok-2", "acct-a"}, {"tok-3", "acct-b"}, {"tok-2", "acct-a"}, {"tok-4", ""},
	} {
		req, err := c.newRequest(context.Background(), cl, tc.token, tc.account)
		if err != nil {
			t.Fatal(err)
		}
		if got := req.Header.Get("Authorization"); got != "Bearer "+tc.token {
			t.Errorf("%s on %q: Authorization %q", tc.token, tc.account, got)
		}
		if got := req.Header.Get("ChatGPT-Account-ID"); got != tc.account {
			t.Errorf("%s on %q: account id %q", tc.token, tc.account, got)
		}
		req.Header.Set("x-client-request-id", "r") // a request's own header stays its own
		req.Header.Add("Authorization", "x")
	}
	req, _ := c.newRequest(context.Background(), cl, "tok-2", "acct-a")
	if req.Header.Get("x-client-request-id") != "" || len(req.Header.Values("Authorization")) != 1 {
		t.Errorf("one request's headers leaked into the next: %v", req.Header)
	}
	if _, err := c.newRequest(context.Background(), cl, "s3cret\n5", "acct-a"); !errors.Is(err, errHeaderValue) || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("a token with a newline: %v", err)
	}
}
