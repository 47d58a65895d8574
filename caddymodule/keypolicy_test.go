package caddymodule

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
	"github.com/usemysub/caddy-codex-proxy/keypolicy"
	"github.com/usemysub/caddy-codex-proxy/metrics"
)

// setPolicy replaces the env key's policy.
func (e *proxyEnv) setPolicy(t *testing.T, p keypolicy.Policy) {
	t.Helper()
	k, _, err := e.h.vault.VerifyKey(e.key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.h.vault.UpdateKeyPolicy(e.userID, k.ID, p); err != nil {
		t.Fatal(err)
	}
}

// call sends one request with the env's key and returns the response with
// its body read.
func (e *proxyEnv) call(t *testing.T, method, path, body string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+e.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// usage reads GET /v1/usage.
func (e *proxyEnv) usage(t *testing.T, query string) usageResponse {
	t.Helper()
	return e.usageWith(t, e.key, query)
}

// usageWith reads GET /v1/usage with another key.
func (e *proxyEnv) usageWith(t *testing.T, key, query string) usageResponse {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+"/v1/usage"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/v1/usage%s: %d %s", query, resp.StatusCode, b)
	}
	var u usageResponse
	if err := json.Unmarshal(b, &u); err != nil {
		t.Fatal(err)
	}
	return u
}

// waitUsage polls /v1/usage until ok holds: a request's tokens are counted
// when the handler has finished it, just after the client got the end.
func (e *proxyEnv) waitUsage(t *testing.T, ok func(keypolicy.Status) bool) keypolicy.Status {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		u := e.usage(t, "")
		if u.Usage != nil && ok(*u.Usage) {
			return *u.Usage
		}
		if time.Now().After(deadline) {
			t.Fatalf("usage never reached the expected state: %+v", u.Usage)
		}
		time.Sleep(100 * time.Millisecond) // usage reads are rate limited too
	}
}

const (
	chatMini  = `{"model":"gpt-5.4-mini","messages":[{"role":"user","content":"hi"}]}`
	chatLarge = `{"model":"gpt-5.5","messages":[{"role":"user","content":"hi"}]}`
)

type policyErrBody struct {
	Error struct {
		Message, Type, Code string
		Param               *string
	}
}

func TestKeyPolicyRefusals(t *testing.T) {
	for _, tc := range []struct {
		name       string
		policy     keypolicy.Policy
		before     []string // request bodies sent first, each must succeed
		body       string
		status     int
		code       string
		reason     keypolicy.Reason
		retryAfter bool
	}{
		{name: "model outside the list", policy: keypolicy.Policy{Models: []string{"gpt-5.4*"}},
			body: chatLarge, status: 403, code: "model_not_allowed", reason: keypolicy.ReasonModel},
		{name: "alias resolved before the check", policy: keypolicy.Policy{Models: []string{"gpt-5.4*"}},
			body: `{"model":"openai/gpt-5.5-codex-high","messages":[{"role":"user","content":"hi"}]}`, status: 403, code: "model_not_allowed", reason: keypolicy.ReasonModel},
		{name: "glob and effort suffix allowed", policy: keypolicy.Policy{Models: []string{"gpt-5.4*"}},
			body: `{"model":"gpt-5.4-mini-high","messages":[{"role":"user","content":"hi"}]}`, status: 200},
		{name: "requests per minute", policy: keypolicy.Policy{RPM: 2}, before: []string{chatMini, chatMini},
			body: chatMini, status: 429, code: "key_rate_limited", reason: keypolicy.ReasonRPM, retryAfter: true},
		{name: "tokens per day", policy: keypolicy.Policy{TokensPerDay: 1}, before: []string{chatMini},
			body: chatMini, status: 429, code: "key_budget_exhausted", reason: keypolicy.ReasonDayBudget, retryAfter: true},
		{name: "tokens per week", policy: keypolicy.Policy{TokensPerWeek: 1}, before: []string{chatMini},
			body: chatMini, status: 429, code: "key_budget_exhausted", reason: keypolicy.ReasonWeekBudget, retryAfter: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newProxyEnv(t)
			env.setPolicy(t, tc.policy)
			for i, b := range tc.before {
				if resp, body := env.call(t, http.MethodPost, "/v1/chat/completions", b); resp.StatusCode != 200 {
					t.Fatalf("request %d before: %d %s", i, resp.StatusCode, body)
				}
			}
			if len(tc.before) > 0 {
				env.waitUsage(t, func(s keypolicy.Status) bool {
					return s.TokensToday.Requests == int64(len(tc.before)) && s.TokensToday.Used > 0
				})
			}
			upstreamBefore := len(env.fake.RequestsTo("/responses"))
			var refusals float64
			if tc.reason != "" {
				refusals = testutil.ToFloat64(metrics.KeyRefusals.WithLabelValues(string(tc.reason)))
			}
			resp, body := env.call(t, http.MethodPost, "/v1/chat/completions", tc.body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if tc.status == 200 {
				return
			}
			var e policyErrBody
			if err := json.Unmarshal(body, &e); err != nil || e.Error.Code != tc.code || e.Error.Message == "" {
				t.Fatalf("error body %s, want code %s", body, tc.code)
			}
			if ra := resp.Header.Get("Retry-After"); tc.retryAfter {
				if n, err := strconv.Atoi(ra); err != nil || n < 1 {
					t.Fatalf("Retry-After %q", ra)
				}
			}
			if n := len(env.fake.RequestsTo("/responses")); n != upstreamBefore {
				t.Fatalf("a refused request went upstream (%d → %d)", upstreamBefore, n)
			}
			if got := testutil.ToFloat64(metrics.KeyRefusals.WithLabelValues(string(tc.reason))); got != refusals+1 {
				t.Fatalf("refusals{reason=%s} went %v → %v", tc.reason, refusals, got)
			}
		})
	}
}

func TestKeyExpiryWhileInUse(t *testing.T) {
	env := newProxyEnv(t)
	env.setPolicy(t, keypolicy.Policy{Expires: time.Now().Add(300 * time.Millisecond)})
	if resp, body := env.call(t, http.MethodPost, "/v1/chat/completions", chatMini); resp.StatusCode != 200 {
		t.Fatalf("before expiry: %d %s", resp.StatusCode, body)
	}
	time.Sleep(400 * time.Millisecond)
	for _, path := range []string{"/v1/chat/completions", "/v1/usage", "/v1/models"} {
		method := http.MethodPost
		if path != "/v1/chat/completions" {
			method = http.MethodGet
		}
		resp, body := env.call(t, method, path, chatMini)
		var e policyErrBody
		_ = json.Unmarshal(body, &e)
		if resp.StatusCode != 401 || e.Error.Code != "key_expired" || !strings.Contains(e.Error.Message, "expired at") {
			t.Fatalf("%s after expiry: %d %s", path, resp.StatusCode, body)
		}
	}
}

func TestKeyEffortCeiling(t *testing.T) {
	env := newProxyEnv(t)
	env.setPolicy(t, keypolicy.Policy{MaxEffort: "high"})
	resp, body := env.call(t, http.MethodPost, "/v1/chat/completions",
		`{"model":"gpt-5.5","reasoning_effort":"xhigh","messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if h := resp.Header.Get("X-Codex-Proxy-Effort-Clamped"); h != "xhigh->high" {
		t.Fatalf("clamp header %q", h)
	}
	reqs := env.fake.RequestsTo("/responses")
	sent := reqs[len(reqs)-1].JSON["reasoning"].(map[string]any)["effort"]
	if sent != "high" {
		t.Fatalf("upstream got effort %v", sent)
	}
	resp, _ = env.call(t, http.MethodPost, "/v1/chat/completions",
		`{"model":"gpt-5.5","reasoning_effort":"low","messages":[{"role":"user","content":"hi"}]}`)
	if h := resp.Header.Get("X-Codex-Proxy-Effort-Clamped"); h != "" {
		t.Fatalf("clamp header on a request below the ceiling: %q", h)
	}
}

func TestKeyConcurrencySlotReleased(t *testing.T) {
	env := newProxyEnv(t, codextest.WithSlowDelay(100*time.Millisecond))
	env.setPolicy(t, keypolicy.Policy{Concurrency: 1})
	slow := `{"model":"gpt-5.4-mini","stream":true,"messages":[{"role":"user","content":"hi ` + codextest.Marker(codextest.ScenarioSlow) + `"}]}`

	// A stream in progress holds the only slot.
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, env.srv.URL+"/v1/chat/completions", strings.NewReader(slow))
	req.Header.Set("Authorization", "Bearer "+env.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("first stream: %d", resp.StatusCode)
	}
	r2, body := env.call(t, http.MethodPost, "/v1/chat/completions", chatMini)
	var e policyErrBody
	_ = json.Unmarshal(body, &e)
	if r2.StatusCode != 429 || e.Error.Code != "key_rate_limited" || r2.Header.Get("Retry-After") == "" {
		t.Fatalf("second while the first streams: %d %s", r2.StatusCode, body)
	}
	// The client goes away mid-stream: the slot comes back.
	cancel()
	resp.Body.Close()
	env.waitUsage(t, func(s keypolicy.Status) bool { return s.Concurrent.Used == 0 })
	if r3, body := env.call(t, http.MethodPost, "/v1/chat/completions", chatMini); r3.StatusCode != 200 {
		t.Fatalf("after the client left: %d %s", r3.StatusCode, body)
	}
}

func TestUsageEndpoint(t *testing.T) {
	env := newProxyEnv(t)
	env.setPolicy(t, keypolicy.Policy{TokensPerDay: 100_000, RPM: 10, Models: []string{"gpt-5.4-mini"}})
	// A second key of the same owner, unlimited.
	second, _, err := env.h.vault.CreateKey(env.userID, "laptop")
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{env.key, second} {
		req, _ := http.NewRequest(http.MethodPost, env.srv.URL+"/v1/chat/completions", strings.NewReader(chatMini))
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("request: %v %v", resp, err)
		}
		resp.Body.Close()
	}
	s := env.waitUsage(t, func(s keypolicy.Status) bool { return s.TokensToday.Used > 0 })
	if s.TokensToday.Limit != 100_000 || *s.TokensToday.Remaining != 100_000-s.TokensToday.Used || s.RequestsPerMinute.Used != 1 ||
		s.RequestsPerMinute.Limit != 10 || s.TokensToday.ResetsAt.IsZero() || s.TokensThisWeek.Limit != 0 || s.TokensThisWeek.Remaining != nil {
		t.Fatalf("key usage %+v", s)
	}
	u := env.usage(t, "")
	if u.Object != "usage" || u.Scope != "key" || u.Key == nil || u.Policy == nil || u.Key.Label != "test" || len(u.Policy.Models) != 1 {
		t.Fatalf("key scope %+v", u)
	}
	if u.Account == nil || u.Account.FiveHour == nil || u.Account.Weekly == nil {
		t.Fatalf("account windows missing: %+v", u.Account)
	}

	var all usageResponse
	deadline := time.Now().Add(5 * time.Second)
	for {
		all = env.usageWith(t, second, "?scope=user") // a key without a policy
		if all.Total != nil && all.Total.TokensToday.Requests == 2 && len(all.Keys) == 2 && all.Keys[1].Usage.TokensToday.Used > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("user scope %+v", all)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if all.Scope != "user" || all.Key != nil || all.Usage != nil || all.Total.TokensToday.Used != all.Keys[0].Usage.TokensToday.Used+all.Keys[1].Usage.TokensToday.Used {
		t.Fatalf("user scope %+v", all)
	}
	// A key with a policy sees neither the owner's other keys nor its accounts.
	if resp, body := env.call(t, http.MethodGet, "/v1/usage?scope=user", ""); resp.StatusCode != 403 || !strings.Contains(string(body), `"scope_not_allowed"`) {
		t.Fatalf("scope=user with a restricted key: %d %s", resp.StatusCode, body)
	}
	if u := env.usage(t, ""); len(u.Accounts) != 0 || u.Account == nil {
		t.Fatalf("a restricted key sees the accounts list, or not its serving account: %+v", u)
	}
	if resp, body := env.call(t, http.MethodGet, "/v1/usage?scope=everyone", ""); resp.StatusCode != 400 || !strings.Contains(string(body), `"param":"scope"`) {
		t.Fatalf("bad scope: %d %s", resp.StatusCode, body)
	}
	// /v1/models lists only the allowed models.
	resp, body := env.call(t, http.MethodGet, "/v1/models", "")
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"gpt-5.4-mini"`) || strings.Contains(string(body), `"gpt-5.5"`) {
		t.Fatalf("models: %s", body)
	}

	off := false
	env.h.ExposeAccountQuota = &off
	env.h.api = env.h.newAPI()
	if u := env.usage(t, ""); u.Account != nil {
		t.Fatalf("account shown with expose_account_quota off: %+v", u.Account)
	}
}
