package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
)

// TestHiddenAccountQuota: with `expose_account_quota off` in the
// Caddyfile, the built binary shows a key holder the ChatGPT account's
// usage nowhere: no x-codex-* header on a chat, a Responses stream or a
// Messages answer, no account in /v1/usage, and a client socket's turn
// starts with response.created instead of the codex.rate_limits event
// (which TestWebSocketAcrossReload and the others see with the default).
func TestHiddenAccountQuota(t *testing.T) {
	t.Parallel()
	caddyBinary(t)
	fake := newFake(t, codextest.Options{})
	p, key := startProxy(t, fake, "expose_account_quota off")
	post := func(path, body string, hdr ...string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(withTimeout(t), http.MethodPost, p.httpURL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	for _, tc := range []struct{ path, body string }{
		{"/v1/chat/completions", `{"model":"gpt-5.5","messages":[{"role":"user","content":"hi"}]}`},
		{"/v1/responses", `{"model":"gpt-5.5","input":"hi","stream":true}`},
		{"/v1/messages", `{"model":"claude-opus-5-5","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}`},
	} {
		res, body := post(tc.path, tc.body, "Anthropic-Version", "2023-06-01")
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", tc.path, res.StatusCode, body)
		}
		for k := range res.Header {
			if strings.HasPrefix(strings.ToLower(k), "x-codex-") && !strings.HasPrefix(strings.ToLower(k), "x-codex-proxy-") {
				t.Errorf("%s: header %s reached the key holder", tc.path, k)
			}
		}
		if strings.Contains(body, "codex.rate_limits") || strings.Contains(body, "used_percent") {
			t.Errorf("%s: the account's windows in the body: %s", tc.path, body)
		}
	}

	req, _ := http.NewRequestWithContext(withTimeout(t), http.MethodGet, p.httpURL+"/v1/usage?scope=user", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var usage map[string]any
	err = json.NewDecoder(res.Body).Decode(&usage)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK || usage["account"] != nil || usage["accounts"] != nil {
		t.Fatalf("/v1/usage: %d %v %v", res.StatusCode, usage, err)
	}

	ws := newWSClient(t, p, key)
	c := ws.dial()
	ws.create(c, "hi")
	if typ, code := ws.read(c); typ != "response.created" {
		t.Fatalf("socket turn's first event %q (close %v), want response.created", typ, code)
	}
}
