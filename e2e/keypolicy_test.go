package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"

	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
)

// keyUsage is the part of GET /v1/usage these tests read.
type keyUsage struct {
	Object string `json:"object"`
	Policy struct {
		Models       []string  `json:"models"`
		RPM          int       `json:"rpm"`
		TokensPerDay int64     `json:"tokens_per_day"`
		Expires      time.Time `json:"expires"`
	} `json:"policy"`
	Usage struct {
		RequestsPerMinute counter `json:"requests_per_minute"`
		Concurrent        counter `json:"concurrent_requests"`
		TokensToday       counter `json:"tokens_today"`
		OverBudget        bool    `json:"over_budget"`
		RateLimited       bool    `json:"rate_limited"`
	} `json:"usage"`
}

type counter struct {
	Used      int64     `json:"used"`
	Limit     int64     `json:"limit"`
	Remaining *int64    `json:"remaining"`
	Requests  int64     `json:"requests"`
	ResetsAt  time.Time `json:"resets_at"`
}

// getUsage reads GET /v1/usage with key.
func getUsage(t *testing.T, base, key string) keyUsage {
	t.Helper()
	req, _ := http.NewRequestWithContext(withTimeout(t), http.MethodGet, base+"/v1/usage", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/v1/usage: %d %s", resp.StatusCode, b)
	}
	var u keyUsage
	if err := json.Unmarshal(b, &u); err != nil {
		t.Fatalf("/v1/usage: %v\n%s", err, b)
	}
	return u
}

// waitForUsage polls /v1/usage until ok: tokens are counted when the
// proxy has finished a request, a moment after the client saw its end.
func waitForUsage(t *testing.T, base, key string, ok func(keyUsage) bool) keyUsage {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		u := getUsage(t, base, key)
		if ok(u) {
			return u
		}
		if time.Now().After(deadline) {
			t.Fatalf("usage never reached the expected state: %+v", u.Usage)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wantRefusal checks that err is the OpenAI error a client gets for a
// policy refusal.
func wantRefusal(t *testing.T, what string, err error, status int, code string) *openai.Error {
	t.Helper()
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != status || apiErr.Code != code {
		t.Fatalf("%s: got %v, want %d %s", what, err, status, code)
	}
	if status == http.StatusTooManyRequests {
		if n, err := strconv.Atoi(apiErr.Response.Header.Get("Retry-After")); err != nil || n < 1 {
			t.Fatalf("%s: Retry-After %q", what, apiErr.Response.Header.Get("Retry-After"))
		}
	}
	return apiErr
}

func miniParams(text string) openai.ChatCompletionNewParams {
	p := chatParams(text)
	p.Model = "gpt-5.4-mini"
	return p
}

// TestKeyPolicyLimits: a key created with the CLI while Caddy runs, "gpt-5.4-mini
// only, 100k tokens a day, 10 requests a minute, expires in a week", watched
// in /v1/usage while a real OpenAI client crosses each limit.
func TestKeyPolicyLimits(t *testing.T) {
	t.Parallel()
	fake := newFake(t, codextest.Options{SlowDelay: 100 * time.Millisecond})
	p, _ := startProxy(t, fake, "")
	key, _ := p.cli(t, "keys", "create", "--email", "ada@example.com", "--label", "ci",
		"--models", "gpt-5.4-mini", "--tokens-per-day", "100000", "--rpm", "10", "--expires", "7d")
	key = strings.TrimSpace(key)
	if !strings.HasPrefix(key, "cpk_") || strings.ContainsAny(key, " \n") {
		t.Fatalf("keys create printed %q, want the key alone", key)
	}
	c := p.openaiClient(t, p.httpURL, key, nil)

	u := getUsage(t, p.httpURL, key)
	if u.Policy.RPM != 10 || u.Policy.TokensPerDay != 100_000 || len(u.Policy.Models) != 1 ||
		time.Until(u.Policy.Expires) < 6*24*time.Hour || u.Usage.TokensToday.Used != 0 || *u.Usage.TokensToday.Remaining != 100_000 {
		t.Fatalf("fresh key usage: %+v", u)
	}

	// Model outside the list: 403, nothing sent upstream, no request slot used.
	upstream := len(fake.RequestsTo("/responses"))
	_, err := c.Chat.Completions.New(withTimeout(t), chatParams("hi"))
	wantRefusal(t, "gpt-5.5", err, http.StatusForbidden, "model_not_allowed")
	if len(fake.RequestsTo("/responses")) != upstream {
		t.Fatal("a refused model went upstream")
	}

	// Ten requests a minute pass, the eleventh is refused with Retry-After.
	for i := range 10 {
		if _, err := streamMini(withTimeout(t), c, "hi"); err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
	}
	_, err = c.Chat.Completions.New(withTimeout(t), miniParams("one too many"))
	e := wantRefusal(t, "11th request in a minute", err, http.StatusTooManyRequests, "key_rate_limited")
	if ra, _ := strconv.Atoi(e.Response.Header.Get("Retry-After")); ra > 60 {
		t.Fatalf("Retry-After %d beyond the minute", ra)
	}
	u = waitForUsage(t, p.httpURL, key, func(u keyUsage) bool { return u.Usage.TokensToday.Requests == 10 })
	if u.Usage.RequestsPerMinute.Used != 10 || !u.Usage.RateLimited || u.Usage.TokensToday.Used == 0 {
		t.Fatalf("usage after 10 requests: %+v", u.Usage)
	}

	// Lift the rate limit (keys update) to reach the budget.
	p.cli(t, "keys", "update", "--email", "ada@example.com", "--id", keyID(t, p, "ci"), "--rpm", "0")

	// A stream that crosses the day's budget (about 100k input tokens)
	// finishes; the next request is refused until the UTC day ends.
	big := strings.Repeat("lorem ipsum ", 34_000)
	cc, err := streamMini(withTimeout(t), c, big)
	if err != nil || len(cc.Choices) == 0 || cc.Choices[0].FinishReason != "stop" {
		t.Fatalf("the stream crossing the budget did not finish: %v %+v", err, cc)
	}
	u = waitForUsage(t, p.httpURL, key, func(u keyUsage) bool { return u.Usage.TokensToday.Used >= 100_000 })
	if !u.Usage.OverBudget || *u.Usage.TokensToday.Remaining != 0 {
		t.Fatalf("usage over budget: %+v", u.Usage)
	}
	_, err = streamMini(withTimeout(t), c, "more")
	e = wantRefusal(t, "after the budget", err, http.StatusTooManyRequests, "key_budget_exhausted")
	if ra, _ := strconv.Atoi(e.Response.Header.Get("Retry-After")); time.Duration(ra)*time.Second > 24*time.Hour {
		t.Fatalf("Retry-After %d beyond the UTC day", ra)
	}

	// keys list --json shows the policy and the usage.
	out, _ := p.cli(t, "keys", "list", "--email", "ada@example.com", "--json")
	if !strings.Contains(out, `"tokens_per_day": 100000`) || !strings.Contains(out, `"over_budget": true`) {
		t.Fatalf("keys list --json:\n%s", out)
	}
	// The refusals are counted by reason.
	metrics := httpGet(t, "http://"+p.admin+"/metrics")
	for _, reason := range []string{"model", "rpm", "tokens_per_day"} {
		if !strings.Contains(metrics, `caddy_codex_proxy_key_refusals_total{reason="`+reason+`"} 1`) {
			t.Fatalf("metrics lack the %s refusal:\n%s", reason, grepLines(metrics, "key_refusals"))
		}
	}
}

// streamMini streams one gpt-5.4-mini chat.
func streamMini(ctx context.Context, c openai.Client, text string) (openai.ChatCompletion, error) {
	s := c.Chat.Completions.NewStreaming(ctx, miniParams(text))
	acc := openai.ChatCompletionAccumulator{}
	for s.Next() {
		acc.AddChunk(s.Current())
	}
	return acc.ChatCompletion, s.Err()
}

// keyID finds a key of ada's by label through keys list --json.
func keyID(t *testing.T, p *proxy, label string) string {
	t.Helper()
	out, _ := p.cli(t, "keys", "list", "--email", "ada@example.com", "--json")
	var res struct {
		Keys []struct{ ID, Label string }
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	for _, k := range res.Keys {
		if k.Label == label {
			return k.ID
		}
	}
	t.Fatalf("no key labelled %s:\n%s", label, out)
	return ""
}

// TestKeyConcurrencyUnderLoad: six parallel streams on a key allowed two
// at a time: two stream to the end, four are refused at once, and the
// slots come back when the streams end.
func TestKeyConcurrencyUnderLoad(t *testing.T) {
	t.Parallel()
	fake := newFake(t, codextest.Options{SlowDelay: 300 * time.Millisecond})
	p, _ := startProxy(t, fake, "")
	key, _ := p.cli(t, "keys", "create", "--email", "ada@example.com", "--concurrency", "2")
	key = strings.TrimSpace(key)
	c := p.openaiClient(t, p.httpURL, key, nil)

	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, refused := 0, 0
	start := make(chan struct{})
	for range 6 {
		wg.Go(func() {
			<-start
			cc, err := streamMini(withTimeout(t), c, "slow "+codextest.Marker(codextest.ScenarioSlow))
			mu.Lock()
			defer mu.Unlock()
			var apiErr *openai.Error
			switch {
			case err == nil && len(cc.Choices) > 0 && cc.Choices[0].FinishReason == "stop":
				ok++
			case errors.As(err, &apiErr) && apiErr.StatusCode == 429 && apiErr.Code == "key_rate_limited":
				refused++
			default:
				t.Errorf("stream: %v %+v", err, cc)
			}
		})
	}
	close(start)
	wg.Wait()
	if ok != 2 || refused != 4 {
		t.Fatalf("%d streams finished and %d were refused, want 2 and 4", ok, refused)
	}
	waitForUsage(t, p.httpURL, key, func(u keyUsage) bool { return u.Usage.Concurrent.Used == 0 })
	if _, err := streamMini(withTimeout(t), c, "after"); err != nil {
		t.Fatalf("after the streams ended: %v", err)
	}
}

// TestKeyExpiresWhileInUse: a key made with --expires 3s works, then is
// refused with 401 key_expired once the time passes.
func TestKeyExpiresWhileInUse(t *testing.T) {
	t.Parallel()
	fake := newFake(t, codextest.Options{})
	p, _ := startProxy(t, fake, "")
	key, _ := p.cli(t, "keys", "create", "--email", "ada@example.com", "--expires", "3s")
	key = strings.TrimSpace(key)
	c := p.openaiClient(t, p.httpURL, key, nil)
	exp := getUsage(t, p.httpURL, key).Policy.Expires
	if _, err := streamMini(withTimeout(t), c, "hi"); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	time.Sleep(time.Until(exp) + 200*time.Millisecond)
	_, err := streamMini(withTimeout(t), c, "hi")
	e := wantRefusal(t, "after expiry", err, http.StatusUnauthorized, "key_expired")
	if !strings.Contains(e.Message, exp.UTC().Format(time.RFC3339)) {
		t.Fatalf("message does not say when: %q", e.Message)
	}
}

// grepLines keeps the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// httpGet returns the body of a GET that must answer 200.
func httpGet(t *testing.T, url string) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(withTimeout(t), http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}
