package caddymodule

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
	"github.com/usemysub/caddy-codex-proxy/keypolicy"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// TestHangUpIsStillCharged: through a real Caddy and vault, a key with a
// 1,500-token day budget that sends two ~1,000-token prompts and hangs up
// after the first delta (or, non-streamed, before the answer) has them
// counted, marked estimated, and its next request is refused (issue 19).
func TestHangUpIsStillCharged(t *testing.T) {
	words := strings.Repeat("lorem ", 800) // ~4,000 bytes: ~1,000 tokens
	slow := codextest.Marker(codextest.ScenarioSlow)
	for _, tc := range []struct {
		name, path, body string
		stream           bool
	}{
		{"chat stream", "/v1/chat/completions", `{"model":"gpt-5.5","stream":true,"messages":[{"role":"user","content":"` + words + slow + `"}]}`, true},
		{"chat non-stream", "/v1/chat/completions", `{"model":"gpt-5.5","messages":[{"role":"user","content":"` + words + slow + `"}]}`, false},
		{"responses stream", "/v1/responses", `{"model":"gpt-5.5","stream":true,"input":"` + words + slow + `"}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newProxyEnv(t, codextest.WithSlowDelay(300*time.Millisecond))
			env.setPolicy(t, keypolicy.Policy{TokensPerDay: 1500})
			for range 2 {
				hangUp(t, env, tc.path, tc.body, tc.stream)
			}
			s := env.waitUsage(t, func(s keypolicy.Status) bool { return s.TokensToday.Requests == 2 && s.TokensToday.Used >= 2000 })
			if s.TokensToday.Estimated < 2000 || !s.OverBudget {
				t.Fatalf("usage after two hang-ups: %+v", s.TokensToday)
			}
			resp, body := env.call(t, http.MethodPost, tc.path, tc.body)
			if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(body), "key_budget_exhausted") {
				t.Fatalf("third request: %d %s", resp.StatusCode, body)
			}
			// The request log is written in the background.
			deadline := time.Now().Add(5 * time.Second)
			for {
				recs, err := env.h.vault.RecentRequests(env.userID, time.Time{}, 10, vault.StatusAll)
				if err != nil {
					t.Fatal(err)
				}
				estimated := 0
				for _, r := range recs {
					if r.Estimated && r.Status == 499 && r.InputTokens >= 1000 {
						estimated++
					}
				}
				if estimated == 2 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("request log: %+v", recs)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

// hangUp sends body and goes away after the first delta, or after 200 ms
// for a non-streamed answer (a client timeout).
func hangUp(t *testing.T, env *proxyEnv, path, body string, stream bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if !stream {
		time.AfterFunc(200*time.Millisecond, cancel)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, env.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+env.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return // hung up before the headers
		}
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "delta") {
			return // the first delta: hang up
		}
	}
}
