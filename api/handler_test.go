package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/keypolicy"
	"github.com/usemysub/caddy-codex-proxy/ratelimit"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// env is a Handler over in-memory fakes.
type env struct {
	h        *Handler
	keys     *fakeKeys
	accounts *fakeAccounts
	up       *fakeUpstream
	rec      *fakeRecorder
	obs      *countingObserver
}

func newEnv(t *testing.T, mod ...func(*Config)) *env {
	t.Helper()
	e := &env{
		keys:     &fakeKeys{key: vault.Key{ID: "key1", UserID: "u1"}, user: vault.User{ID: "u1", Email: "a@example.com"}},
		accounts: &fakeAccounts{accounts: []string{"acct-a"}},
		up:       &fakeUpstream{sse: textSSE},
		rec:      &fakeRecorder{},
		obs:      &countingObserver{},
	}
	e.rec.keys = e.keys
	cfg := Config{Keys: e.keys, Accounts: e.accounts, Upstream: e.up, Recorder: e.rec, Observer: e.obs,
		CORSOrigins: []string{"*"}}
	for _, m := range mod {
		m(&cfg)
	}
	e.h = New(cfg)
	return e
}

// do sends one request with the test key (key "" sends none).
func (e *env) do(t *testing.T, method, path, key string, body io.Reader) (*http.Response, map[string]any) {
	t.Helper()
	r := httptest.NewRequest(method, path, body)
	if key != "" {
		r.Header.Set("Authorization", "Bearer "+key)
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	res := w.Result()
	var m map[string]any
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
			t.Fatalf("%s %s: body is not JSON: %v: %s", method, path, err, w.Body.Bytes())
		}
	}
	res.Body = io.NopCloser(bytes.NewReader(w.Body.Bytes()))
	return res, m
}

// errorCode is the OpenAI error envelope's code (and checks the shape).
func errorCode(t *testing.T, m map[string]any) string {
	t.Helper()
	e, ok := m["error"].(map[string]any)
	if !ok {
		t.Fatalf("no OpenAI error envelope: %v", m)
	}
	if msg, _ := e["message"].(string); msg == "" {
		t.Fatalf("error without a message: %v", m)
	}
	if typ, _ := e["type"].(string); typ == "" {
		t.Fatalf("error without a type: %v", m)
	}
	code, _ := e["code"].(string)
	return code
}

const chatBody = `{"model":"gpt-5.5","messages":[{"role":"user","content":"hi"}]}`

func TestRoutingErrors(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{"GET", "/v1/nope", 404, "unknown_url", ""},
		{"GET", "/v1/chat/completions", 405, "method_not_allowed", "POST, OPTIONS"},
		{"POST", "/v1/models", 405, "method_not_allowed", "GET, OPTIONS"},
		{"DELETE", "/v1/usage", 405, "method_not_allowed", "GET, OPTIONS"},
	} {
		res, m := e.do(t, tc.method, tc.path, testKey, nil)
		if res.StatusCode != tc.status || errorCode(t, m) != tc.code || res.Header.Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d %v Allow=%q", tc.method, tc.path, res.StatusCode, m, res.Header.Get("Allow"))
		}
		if res.Header.Get("X-Request-Id") == "" {
			t.Errorf("%s %s: no X-Request-Id", tc.method, tc.path)
		}
	}
	if e.up.calls() != 0 || len(e.rec.recs) != 0 {
		t.Fatalf("routing errors went upstream or into the log")
	}
}

func TestPreflight(t *testing.T) {
	e := newEnv(t)
	r := httptest.NewRequest("OPTIONS", "/v1/chat/completions", nil)
	r.Header.Set("Origin", "https://webui.example")
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	if w.Code != 204 || w.Header().Get("Access-Control-Allow-Origin") != "*" ||
		!strings.Contains(w.Header().Get("Access-Control-Allow-Headers"), "X-Stainless-Timeout") {
		t.Fatalf("preflight: %d %v", w.Code, w.Header())
	}
}

func TestAuthentication(t *testing.T) {
	for _, tc := range []struct {
		name      string
		key       string
		verifyErr error
		status    int
		code      string
		retry     bool
	}{
		{"no key", "", nil, 401, "invalid_api_key", false},
		{"wrong key", "cpk_wrong", nil, 401, "invalid_api_key", false},
		{"disabled user", testKey, vault.ErrUserDisabled, 403, "account_disabled", false},
		{"vault down", testKey, errVaultDown, 503, "vault_unavailable", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.keys.verifyErr = tc.verifyErr
			res, m := e.do(t, "POST", "/v1/chat/completions", tc.key, strings.NewReader(chatBody))
			if res.StatusCode != tc.status || errorCode(t, m) != tc.code {
				t.Fatalf("%d %v", res.StatusCode, m)
			}
			if got := res.Header.Get("Retry-After") != ""; got != tc.retry {
				t.Fatalf("Retry-After %q", res.Header.Get("Retry-After"))
			}
			if e.up.calls() != 0 || e.keys.admitted != 0 {
				t.Fatalf("an unauthenticated request was admitted or sent upstream")
			}
			if strings.Contains(strings.Join(e.obs.statuses(), ","), "200") {
				t.Fatalf("counted as served")
			}
		})
	}
}

func (o *countingObserver) statuses() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var s []string
	for _, st := range o.requests {
		s = append(s, strconv.Itoa(st))
	}
	return s
}

func TestFailedKeysAreLimitedPerAddressValidKeysNever(t *testing.T) {
	table := ratelimit.New(ratelimit.Config{})
	e := newEnv(t, func(c *Config) {
		c.FailedAuth = table
		c.ClientIP = func(*http.Request) string { return "192.0.2.7" }
	})
	for i := range AuthFailLimit {
		if res, _ := e.do(t, "GET", "/v1/models", "cpk_guess", nil); res.StatusCode != 401 {
			t.Fatalf("attempt %d: %d", i, res.StatusCode)
		}
	}
	res, m := e.do(t, "GET", "/v1/models", "cpk_guess", nil)
	secs, _ := strconv.Atoi(res.Header.Get("Retry-After"))
	if res.StatusCode != 429 || errorCode(t, m) != "too_many_failed_attempts" || secs < 1 || secs > int(AuthFailWindow.Seconds()) {
		t.Fatalf("over the limit: %d %v Retry-After=%q", res.StatusCode, m, res.Header.Get("Retry-After"))
	}
	if res, _ := e.do(t, "GET", "/v1/models", testKey, nil); res.StatusCode != 200 {
		t.Fatalf("a valid key from a blocked address: %d", res.StatusCode)
	}
}

// readTracker records whether anything read the body.
type readTracker struct {
	r    io.Reader
	read bool
}

func (b *readTracker) Read(p []byte) (int, error) { b.read = true; return b.r.Read(p) }

func TestKeyAdmissionBeforeTheBodyIsRead(t *testing.T) {
	e := newEnv(t)
	e.keys.refuse = &keypolicy.Refusal{Reason: keypolicy.ReasonRPM, Status: 429, Type: "rate_limit_error",
		Code: "key_rate_limited", Message: "slow down", RetryAfter: 30 * time.Second}
	body := &readTracker{r: strings.NewReader(chatBody)}
	res, m := e.do(t, "POST", "/v1/chat/completions", testKey, body)
	if res.StatusCode != 429 || errorCode(t, m) != "key_rate_limited" || res.Header.Get("Retry-After") != "30" {
		t.Fatalf("%d %v %v", res.StatusCode, m, res.Header)
	}
	if body.read {
		t.Fatalf("the body was read before the key was admitted")
	}
	if e.up.calls() != 0 {
		t.Fatalf("a refused request went upstream")
	}
	if len(e.obs.refusals) != 1 || e.obs.refusals[0] != keypolicy.ReasonRPM {
		t.Fatalf("refusals counted: %v", e.obs.refusals)
	}
	if rec := e.rec.last(); rec.Status != 429 || rec.ErrorCode != "key_rate_limited" || rec.KeyID != "key1" {
		t.Fatalf("request log: %+v", rec)
	}
}

func TestExpiredKeyIsRefusedOnEveryEndpoint(t *testing.T) {
	e := newEnv(t)
	e.keys.key.Policy = keypolicy.Policy{Expires: time.Now().Add(-time.Minute)}
	for _, p := range []string{"/v1/models", "/v1/usage"} {
		if res, m := e.do(t, "GET", p, testKey, nil); res.StatusCode != 401 || errorCode(t, m) != "key_expired" {
			t.Fatalf("%s: %d %v", p, res.StatusCode, m)
		}
	}
	if res, _ := e.do(t, "POST", "/v1/responses", testKey, strings.NewReader(`{"model":"gpt-5.5","input":"hi"}`)); res.StatusCode != 401 {
		t.Fatalf("responses: %d", res.StatusCode)
	}
	if e.keys.admitted != 0 || e.up.calls() != 0 {
		t.Fatalf("an expired key took a slot or went upstream")
	}
}

func TestModelOutsideTheAllowlist(t *testing.T) {
	e := newEnv(t)
	e.keys.key.Policy = keypolicy.Policy{Models: []string{"gpt-5.4*"}}
	res, m := e.do(t, "POST", "/v1/chat/completions", testKey, strings.NewReader(chatBody))
	if res.StatusCode != 403 || errorCode(t, m) != "model_not_allowed" {
		t.Fatalf("%d %v", res.StatusCode, m)
	}
	if e.up.calls() != 0 {
		t.Fatalf("went upstream")
	}
	if e.keys.admitted != 1 || e.keys.inFlight() != 0 {
		t.Fatalf("slot taken %d, still held %d", e.keys.admitted, e.keys.inFlight())
	}
	// The models list shows only what the key may use.
	_, list := e.do(t, "GET", "/v1/models", testKey, nil)
	for _, it := range list["data"].([]any) {
		if id := it.(map[string]any)["id"].(string); !strings.HasPrefix(id, "gpt-5.4") {
			t.Fatalf("listed %s to a key limited to gpt-5.4*", id)
		}
	}
}

func TestChatCompletionIsRelayedAndRecorded(t *testing.T) {
	e := newEnv(t)
	res, m := e.do(t, "POST", "/v1/chat/completions", testKey, strings.NewReader(chatBody))
	if res.StatusCode != 200 {
		t.Fatalf("%d %v", res.StatusCode, m)
	}
	choice := m["choices"].([]any)[0].(map[string]any)
	if got := choice["message"].(map[string]any)["content"]; got != "Hello" {
		t.Fatalf("content %v", got)
	}
	if e.keys.admitted != 1 || e.keys.inFlight() != 0 {
		t.Fatalf("slot taken %d, still held %d", e.keys.admitted, e.keys.inFlight())
	}
	rec := e.rec.last()
	if rec.Status != 200 || rec.Route != "chat_completions" || rec.Model != "gpt-5.5" || rec.AccountID != "acct-a" ||
		rec.InputTokens != 12 || rec.OutputTokens != 3 || rec.CachedTokens != 4 || rec.UserID != "u1" {
		t.Fatalf("request log: %+v", rec)
	}
	// What went upstream is a Responses request, not the chat body.
	var sent map[string]any
	if err := json.Unmarshal(e.up.bodies[0], &sent); err != nil || sent["input"] == nil || sent["messages"] != nil {
		t.Fatalf("upstream body: %s", e.up.bodies[0])
	}
}

func TestChatStream(t *testing.T) {
	e := newEnv(t)
	res, _ := e.do(t, "POST", "/v1/chat/completions", testKey,
		strings.NewReader(`{"model":"gpt-5.5","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`))
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" ||
		!strings.Contains(string(b), `"content":"Hello"`) || !strings.HasSuffix(strings.TrimSpace(string(b)), "data: [DONE]") {
		t.Fatalf("%d %v\n%s", res.StatusCode, res.Header, b)
	}
	if rec := e.rec.last(); rec.Status != 200 || rec.OutputTokens != 3 {
		t.Fatalf("request log: %+v", rec)
	}
}

func TestResponsesNonStream(t *testing.T) {
	e := newEnv(t)
	res, m := e.do(t, "POST", "/v1/responses", testKey, strings.NewReader(`{"model":"gpt-5.5","input":"hi"}`))
	if res.StatusCode != 200 || m["object"] != "response" || m["status"] != "completed" {
		t.Fatalf("%d %v", res.StatusCode, m)
	}
	if rec := e.rec.last(); rec.Route != "responses" || rec.InputTokens != 12 {
		t.Fatalf("request log: %+v", rec)
	}
}

func TestFailoverOnUsageLimit(t *testing.T) {
	e := newEnv(t)
	e.accounts.accounts = []string{"acct-a", "acct-b"}
	e.up.errs = map[string]error{"acct-a": usageLimit(20 * time.Minute)}
	res, m := e.do(t, "POST", "/v1/chat/completions", testKey, strings.NewReader(chatBody))
	if res.StatusCode != 200 {
		t.Fatalf("%d %v", res.StatusCode, m)
	}
	if until, ok := e.accounts.exhausted["acct-a"]; !ok || time.Until(until) < 19*time.Minute {
		t.Fatalf("account a not marked exhausted until its reset: %v", e.accounts.exhausted)
	}
	if rec := e.rec.last(); rec.AccountID != "acct-b" || rec.FailoverFrom != "acct-a" {
		t.Fatalf("request log: %+v", rec)
	}
	if e.obs.failovers != 1 || len(e.up.bodies) != 1 {
		t.Fatalf("failovers %d, generations sent %d", e.obs.failovers, len(e.up.bodies))
	}
	// The conversation's prompt cache stayed with account a: a reset,
	// counted for metrics and in /v1/usage.
	if e.obs.cacheResets != 1 {
		t.Fatalf("cache resets %d, want 1", e.obs.cacheResets)
	}
	if _, m := e.do(t, "GET", "/v1/usage", testKey, nil); m["cache"].(map[string]any)["cache_resets"] != 1.0 {
		t.Fatalf("usage cache %v", m["cache"])
	}
}

func TestEveryAccountExhaustedNamesTheSoonestReset(t *testing.T) {
	e := newEnv(t)
	e.accounts.accounts = []string{"acct-a", "acct-b"}
	e.up.errs = map[string]error{"acct-a": usageLimit(30 * time.Minute), "acct-b": usageLimit(10 * time.Minute)}
	res, m := e.do(t, "POST", "/v1/chat/completions", testKey, strings.NewReader(chatBody))
	secs, _ := strconv.Atoi(res.Header.Get("Retry-After"))
	if res.StatusCode != 429 || errorCode(t, m) != "usage_limit_reached" || secs < 9*60 || secs > 10*60+1 {
		t.Fatalf("%d %v Retry-After=%q", res.StatusCode, m, res.Header.Get("Retry-After"))
	}
}

func TestNoFailoverOnOtherErrors(t *testing.T) {
	e := newEnv(t)
	e.accounts.accounts = []string{"acct-a", "acct-b"}
	e.up.errs = map[string]error{"acct-a": errVaultDown}
	res, m := e.do(t, "POST", "/v1/chat/completions", testKey, strings.NewReader(chatBody))
	if res.StatusCode != 502 || errorCode(t, m) != "upstream_error" {
		t.Fatalf("%d %v", res.StatusCode, m)
	}
	if e.up.calls() != 1 {
		t.Fatalf("a failure that may have run the turn was retried on another account: %v", e.up.tried)
	}
}

func TestVaultVerdictsBecomeClearErrors(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{vault.ErrNotLinked, 403, "chatgpt_not_linked"},
		{vault.ErrNoSuchAccount, 403, "account_not_linked"},
		{vault.ErrUnavailable, 503, "vault_unavailable"},
	} {
		e := newEnv(t)
		e.accounts.routeErr = tc.err
		res, m := e.do(t, "POST", "/v1/chat/completions", testKey, strings.NewReader(chatBody))
		if res.StatusCode != tc.status || errorCode(t, m) != tc.code {
			t.Errorf("%v: %d %v", tc.err, res.StatusCode, m)
		}
	}
}

func TestBodyErrors(t *testing.T) {
	for _, tc := range []struct {
		name, body, encoding string
		status               int
		code                 string
	}{
		{"empty", "", "", 400, "invalid_body"},
		{"not JSON", "{", "", 400, ""},
		{"too large", `{"model":"gpt-5.5","messages":[{"role":"user","content":"` + strings.Repeat("a", 2048) + `"}]}`, "", 413, "request_too_large"},
		{"unknown encoding", chatBody, "compress", 415, "unsupported_content_encoding"},
		{"bad gzip", chatBody, "gzip", 400, "invalid_body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.MaxBodySize = 1024 })
			r := httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(tc.body))
			r.Header.Set("Authorization", "Bearer "+testKey)
			if tc.encoding != "" {
				r.Header.Set("Content-Encoding", tc.encoding)
			}
			w := httptest.NewRecorder()
			e.h.ServeHTTP(w, r)
			var m map[string]any
			_ = json.Unmarshal(w.Body.Bytes(), &m)
			code := errorCode(t, m)
			if w.Code != tc.status || tc.code != "" && code != tc.code {
				t.Fatalf("%d %s", w.Code, w.Body.Bytes())
			}
			if e.up.calls() != 0 {
				t.Fatalf("a bad body went upstream")
			}
		})
	}
}

func TestUsage(t *testing.T) {
	e := newEnv(t)
	res, m := e.do(t, "GET", "/v1/usage", testKey, nil)
	if res.StatusCode != 200 || m["scope"] != "key" || m["key"].(map[string]any)["id"] != "key1" ||
		m["account"] == nil || res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("%d %v", res.StatusCode, m)
	}
	if _, m := e.do(t, "GET", "/v1/usage?scope=user", testKey, nil); len(m["keys"].([]any)) != 1 || m["total"] == nil {
		t.Fatalf("scope=user: %v", m)
	}
	if res, m := e.do(t, "GET", "/v1/usage?scope=team", testKey, nil); res.StatusCode != 400 || errorCode(t, m) != "invalid_value" {
		t.Fatalf("scope=team: %d %v", res.StatusCode, m)
	}
	hidden := newEnv(t, func(c *Config) { off := false; c.ExposeAccountQuota = &off })
	if _, m := hidden.do(t, "GET", "/v1/usage", testKey, nil); m["account"] != nil || m["accounts"] != nil {
		t.Fatalf("account windows shown while not exposed: %v", m)
	}
}

func TestOneModelAndAnUnknownOne(t *testing.T) {
	e := newEnv(t)
	if res, m := e.do(t, "GET", "/v1/models/gpt-5.5", testKey, nil); res.StatusCode != 200 || m["id"] != "gpt-5.5" {
		t.Fatalf("%d %v", res.StatusCode, m)
	}
	if res, m := e.do(t, "GET", "/v1/models/gpt-0", testKey, nil); res.StatusCode != 404 || errorCode(t, m) != "model_not_found" {
		t.Fatalf("%d %v", res.StatusCode, m)
	}
}

func TestKeyHeadersAreRedacted(t *testing.T) {
	e := newEnv(t)
	r := httptest.NewRequest("GET", "/v1/models", nil)
	r.Header.Set("X-Api-Key", testKey)
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	if w.Code != 200 || r.Header.Get("X-Api-Key") != "REDACTED" {
		t.Fatalf("%d, header after: %q", w.Code, r.Header.Get("X-Api-Key"))
	}
}

// A known exhausted account resets sooner than the one that just answered
// 429: the client hears of the soonest (issue 19, item 4).
func TestSoonestResetIncludesAccountsKnownExhausted(t *testing.T) {
	e := newEnv(t)
	e.accounts.accounts = []string{"acct-a", "acct-b"}
	e.accounts.MarkExhausted("u1", "acct-a", time.Now().Add(1233*time.Second))
	e.up.errs = map[string]error{"acct-b": usageLimit(1800 * time.Second)}
	res, m := e.do(t, "POST", "/v1/chat/completions", testKey, strings.NewReader(chatBody))
	secs, _ := strconv.Atoi(res.Header.Get("Retry-After"))
	if res.StatusCode != 429 || errorCode(t, m) != "usage_limit_reached" || secs < 1230 || secs > 1234 {
		t.Fatalf("%d %v Retry-After=%q, want about 1233", res.StatusCode, m, res.Header.Get("Retry-After"))
	}
	if msg := m["error"].(map[string]any)["message"].(string); !strings.Contains(msg, "in 20m3") {
		t.Fatalf("message does not name the soonest reset: %q", msg)
	}
}

// What a key with a policy may see of its owner (issue 19, item 5): not the
// owner's other keys, not the accounts list; a pinned key its own account.
func TestUsageOfRestrictedKeys(t *testing.T) {
	for _, tc := range []struct {
		name     string
		policy   keypolicy.Policy
		accounts []string // ids in /v1/usage's accounts list
	}{
		{"no policy", keypolicy.Policy{}, []string{"acct-a", "acct-b"}},
		{"models only", keypolicy.Policy{Models: []string{"gpt-5.5"}}, nil},
		{"pinned", keypolicy.Policy{Account: "acct-b"}, []string{"acct-b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.accounts.accounts = []string{"acct-a", "acct-b"}
			e.keys.key.Policy = tc.policy
			_, m := e.do(t, "GET", "/v1/usage", testKey, nil)
			var got []string
			list, _ := m["accounts"].([]any)
			for _, a := range list {
				got = append(got, a.(map[string]any)["id"].(string))
			}
			if strings.Join(got, ",") != strings.Join(tc.accounts, ",") {
				t.Fatalf("accounts %v, want %v", got, tc.accounts)
			}
			res, m := e.do(t, "GET", "/v1/usage?scope=user", testKey, nil)
			if tc.policy.IsZero() != (res.StatusCode == 200) {
				t.Fatalf("scope=user: %d %v", res.StatusCode, m)
			}
			if res.StatusCode != 200 && (res.StatusCode != 403 || errorCode(t, m) != "scope_not_allowed") {
				t.Fatalf("scope=user refusal: %d %v", res.StatusCode, m)
			}
		})
	}
}

func TestUsageReadsAreRateLimited(t *testing.T) {
	e := newEnv(t)
	e.keys.refuse = &keypolicy.Refusal{Reason: keypolicy.ReasonRPM, Status: 429, Type: "rate_limit_error",
		Code: "key_rate_limited", Message: "slow down", RetryAfter: 5 * time.Second}
	res, m := e.do(t, "GET", "/v1/usage", testKey, nil)
	if res.StatusCode != 429 || errorCode(t, m) != "key_rate_limited" || res.Header.Get("Retry-After") != "5" {
		t.Fatalf("%d %v", res.StatusCode, m)
	}
	// The model list is not rate limited: clients fetch it at start.
	if res, _ := e.do(t, "GET", "/v1/models", testKey, nil); res.StatusCode != 200 {
		t.Fatalf("models: %d", res.StatusCode)
	}
}
