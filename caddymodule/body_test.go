package caddymodule

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// TestOversizedBodyClosesConnection: a body over max_body_size gets the
// OpenAI-shaped 413, and the server closes the connection rather than
// keeping it for a client that is still sending the rest.
func TestOversizedBodyClosesConnection(t *testing.T) {
	env := newProxyEnv(t)
	env.h.MaxBodySize = 1 << 10
	env.h.api = env.h.newAPI()
	// Behind Caddy the handler gets a wrapped writer, not net/http's own.
	wrapped := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = env.h.ServeHTTP(&caddyhttp.ResponseWriterWrapper{ResponseWriter: w}, r, nil)
	}))
	t.Cleanup(wrapped.Close)
	for name, url := range map[string]string{"net/http writer": env.srv.URL, "wrapped writer": wrapped.URL} {
		t.Run(name, func(t *testing.T) {
			body := `{"model":"gpt-5.5","messages":[{"role":"user","content":"` + strings.Repeat("a", 64<<10) + `"}]}`
			req, _ := http.NewRequest("POST", url+"/v1/chat/completions", bytes.NewReader([]byte(body)))
			req.Header.Set("Authorization", "Bearer "+env.key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e struct {
				Error struct{ Message, Type, Code string }
			}
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusRequestEntityTooLarge || e.Error.Code != "request_too_large" ||
				e.Error.Type != "invalid_request_error" || !strings.Contains(e.Error.Message, "1024 bytes") {
				t.Fatalf("%d %+v", resp.StatusCode, e)
			}
			if !resp.Close {
				t.Fatalf("connection kept open after an oversized body (Connection: %q)", resp.Header.Get("Connection"))
			}
		})
	}
}
