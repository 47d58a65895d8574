package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
	"github.com/usemysub/caddy-codex-proxy/vault"
	"github.com/usemysub/caddy-codex-proxy/vault/engine"
)

// TestHungUpstreamIsOne504 is issue 9: an upstream that takes a generation
// and never sends headers. With upstream_header_timeout 2s the client gets
// a 504 upstream_timeout within 3 s, the upstream saw the request exactly
// once (no retry that could start a second turn on the user's quota), and
// the request log holds one entry for it.
func TestHungUpstreamIsOne504(t *testing.T) {
	t.Parallel()
	fake := newFake(t, codextest.Options{Default: codextest.ScenarioHangHeaders})
	p, key := startProxy(t, fake, "upstream_header_timeout 2s")

	cases := []struct{ name, path, body, nonce string }{
		{"chat stream", "/v1/chat/completions",
			`{"model":"gpt-5.5","stream":true,"messages":[{"role":"user","content":"hung-chat-nonce"}]}`, "hung-chat-nonce"},
		{"responses", "/v1/responses",
			`{"model":"gpt-5.5","input":"hung-responses-nonce"}`, "hung-responses-nonce"},
	}
	t.Run("requests", func(t *testing.T) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				start := time.Now()
				resp := postJSON(t, p.httpURL+tc.path, key, tc.body)
				elapsed := time.Since(start)
				var body struct {
					Error struct {
						Message string `json:"message"`
						Type    string `json:"type"`
						Code    string `json:"code"`
					} `json:"error"`
				}
				if resp.status != http.StatusGatewayTimeout || json.Unmarshal(resp.body, &body) != nil ||
					body.Error.Code != "upstream_timeout" || body.Error.Type != "server_error" {
					t.Fatalf("got %d %s, want 504 upstream_timeout", resp.status, resp.body)
				}
				if !strings.Contains(body.Error.Message, "did not answer in time") {
					t.Errorf("message %q does not say the upstream did not answer in time", body.Error.Message)
				}
				if elapsed > 3*time.Second {
					t.Errorf("the 504 came after %v with a 2s header timeout", elapsed)
				}
				n := 0
				for _, r := range fake.RequestsTo("/responses") {
					if strings.Contains(string(r.Body), tc.nonce) {
						n++
					}
				}
				if n != 1 {
					t.Errorf("the upstream received the request %d times, want once", n)
				}
			})
		}
	})
	if t.Failed() {
		return
	}
	if n := fake.GenerationCount(); n != len(cases) {
		t.Fatalf("the upstream received %d generations for %d requests", n, len(cases))
	}

	// The request log: stop Caddy (it holds the vault's lock) and read it.
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("caddy did not stop")
	}
	v, err := engine.Open(context.Background(), filepath.Join(p.dir, "vault", "vault.db"), vault.Options{EncryptionKeys: []string{encKey}, Pepper: pepper})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	recs, err := v.RecentRequests("", time.Time{}, 100, vault.StatusAll)
	if err != nil {
		t.Fatal(err)
	}
	routes := map[string]int{}
	for _, r := range recs {
		if r.Status != http.StatusGatewayTimeout || r.ErrorCode != "upstream_timeout" {
			t.Errorf("unexpected log record %+v", r)
		}
		routes[r.Route]++
	}
	if len(recs) != 2 || routes["chat_completions"] != 1 || routes["responses"] != 1 {
		t.Fatalf("request log has %d records by route %v, want one chat_completions and one responses", len(recs), routes)
	}
}
