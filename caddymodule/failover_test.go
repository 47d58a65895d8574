package caddymodule

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/responses"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
	"github.com/usemysub/caddy-codex-proxy/keypolicy"
	"github.com/usemysub/caddy-codex-proxy/metrics"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// withSecond links a second ChatGPT account (acc-2 of the fake) to the
// env's user and returns the ids of the first and the second.
func (e *proxyEnv) withSecond(t *testing.T) (first, second string) {
	t.Helper()
	tok := e.fake.AddAccount("acc-2", "ada-work@example.com", "pro")
	a, err := e.h.vault.AddAccount(e.userID, vault.TokenBundle{IDToken: tok.IDToken, AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, Label: "work"})
	if err != nil {
		t.Fatal(err)
	}
	accts, err := e.h.vault.Accounts(e.userID)
	if err != nil || len(accts) != 2 {
		t.Fatalf("accounts: %v, %v", accts, err)
	}
	return accts[0].ID, a.ID
}

// requests is how many generations reached the fake with each account's
// token, and how many of them it refused for the usage limit.
func (e *proxyEnv) requests(acc string) (total, limited int) { return e.fake.AccountRequests(acc) }

// lastLog waits for the request-log record of the newest request.
func (e *proxyEnv) lastLog(t *testing.T, n int) []vault.LogRecord {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		recs, err := e.h.vault.RecentRequests(e.userID, time.Time{}, n, vault.StatusAll)
		if err == nil && len(recs) >= n {
			return recs
		}
		if time.Now().After(deadline) {
			t.Fatalf("request log has %d records, want %d (%v)", len(recs), n, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// generate runs one request of the given kind and returns its text.
func generate(t *testing.T, c openai.Client, kind, text string) (string, error) {
	t.Helper()
	ctx := context.Background()
	switch kind {
	case "chat":
		resp, err := c.Chat.Completions.New(ctx, userMsg(text))
		if err != nil {
			return "", err
		}
		return resp.Choices[0].Message.Content, nil
	case "chat-stream":
		s := c.Chat.Completions.NewStreaming(ctx, userMsg(text))
		var b strings.Builder
		for s.Next() {
			if ch := s.Current(); len(ch.Choices) > 0 {
				b.WriteString(ch.Choices[0].Delta.Content)
			}
		}
		return b.String(), s.Err()
	case "responses":
		resp, err := c.Responses.New(ctx, responses.ResponseNewParams{Model: "gpt-5.5",
			Input: responses.ResponseNewParamsInputUnion{OfString: openai.String(text)}})
		if err != nil {
			return "", err
		}
		return resp.OutputText(), nil
	case "responses-stream":
		s := c.Responses.NewStreaming(ctx, responses.ResponseNewParams{Model: "gpt-5.5",
			Input: responses.ResponseNewParamsInputUnion{OfString: openai.String(text)}})
		var b strings.Builder
		for s.Next() {
			if ev := s.Current(); ev.Type == "response.output_text.delta" {
				b.WriteString(ev.Delta)
			}
		}
		return b.String(), s.Err()
	}
	t.Fatalf("unknown kind %q", kind)
	return "", nil
}

// TestFailoverIsInvisible: the first account is at its limit; the request
// is served by the second as if nothing happened, the first is not asked
// again, and the log and the metric say what happened.
func TestFailoverIsInvisible(t *testing.T) {
	for _, kind := range []string{"chat", "chat-stream", "responses", "responses-stream"} {
		t.Run(kind, func(t *testing.T) {
			env := newProxyEnv(t)
			first, second := env.withSecond(t)
			env.fake.SetUsageBudget("acc-1", 0, time.Hour)
			before := testutil.ToFloat64(metrics.AccountFailovers)
			out, err := generate(t, env.client, kind, "hello there")
			if err != nil || !strings.Contains(out, "hello there") {
				t.Fatalf("through the failover: %q, %v", out, err)
			}
			if total, limited := env.requests("acc-1"); total != 1 || limited != 1 {
				t.Fatalf("acc-1: %d requests, %d refused; want the one refusal", total, limited)
			}
			if total, _ := env.requests("acc-2"); total != 1 {
				t.Fatalf("acc-2: %d requests", total)
			}
			if got := testutil.ToFloat64(metrics.AccountFailovers) - before; got != 1 {
				t.Fatalf("failover metric rose by %v", got)
			}
			rec := env.lastLog(t, 1)[0]
			if rec.Status != 200 || rec.AccountID != second || rec.FailoverFrom != first || rec.ErrorCode != "" {
				t.Fatalf("log record: status %d account %q failover_from %q code %q; want 200 %q %q", rec.Status, rec.AccountID, rec.FailoverFrom, rec.ErrorCode, second, first)
			}
			// The next request goes to the second account directly.
			if _, err := generate(t, env.client, kind, "again"); err != nil {
				t.Fatal(err)
			}
			if total, _ := env.requests("acc-1"); total != 1 {
				t.Fatalf("the exhausted account was asked again (%d requests)", total)
			}
		})
	}
}

// TestAllAccountsExhausted: one 429 with the soonest reset, and once both
// are known to be exhausted, no request goes upstream at all.
func TestAllAccountsExhausted(t *testing.T) {
	env := newProxyEnv(t)
	env.withSecond(t)
	env.fake.SetUsageBudget("acc-1", 0, 2*time.Hour)
	env.fake.SetUsageBudget("acc-2", 0, 30*time.Minute)
	for i := range 2 {
		resp, body := env.call(t, "POST", "/v1/chat/completions", `{"model":"gpt-5.5","messages":[{"role":"user","content":"hi"}]}`)
		if resp.StatusCode != 429 || !strings.Contains(string(body), `"code":"usage_limit_reached"`) {
			t.Fatalf("attempt %d: %d %s", i, resp.StatusCode, body)
		}
		secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
		if err != nil || secs < 29*60 || secs > 30*60+5 {
			t.Fatalf("attempt %d: Retry-After %q, want the soonest reset (30 min)", i, resp.Header.Get("Retry-After"))
		}
	}
	t1, _ := env.requests("acc-1")
	t2, _ := env.requests("acc-2")
	if t1 != 1 || t2 != 1 {
		t.Fatalf("upstream requests: acc-1 %d, acc-2 %d; want one each", t1, t2)
	}
}

// TestNoFailoverOnOtherErrors: a plain rate limit, a server error or a
// stream that broke after output are the client's, on the account that
// served them.
func TestNoFailoverOnOtherErrors(t *testing.T) {
	for _, sc := range []codextest.Scenario{codextest.ScenarioRateLimited, codextest.ScenarioServerError, codextest.ScenarioCut, codextest.ScenarioFailed} {
		t.Run(string(sc), func(t *testing.T) {
			env := newProxyEnv(t)
			env.withSecond(t)
			_, err := generate(t, env.client, "chat-stream", "hi "+codextest.Marker(sc))
			if err == nil && sc != codextest.ScenarioCut {
				t.Fatal("no error reached the client")
			}
			if total, _ := env.requests("acc-2"); total != 0 {
				t.Fatalf("failed over to acc-2 (%d requests) on %s", total, sc)
			}
		})
	}
}

// TestPinnedKeyDoesNotFailOver: a key pinned to an exhausted account gets
// the 429; the other account is not used.
func TestPinnedKeyDoesNotFailOver(t *testing.T) {
	env := newProxyEnv(t)
	first, _ := env.withSecond(t)
	env.setPolicy(t, keypolicy.Policy{Account: first})
	env.fake.SetUsageBudget("acc-1", 0, time.Hour)
	if e := apiError(t, env.client, "hi"); e.StatusCode != 429 || e.Code != "usage_limit_reached" {
		t.Fatalf("pinned key: %d %s", e.StatusCode, e.Code)
	}
	if total, _ := env.requests("acc-2"); total != 0 {
		t.Fatalf("a pinned key used another account (%d requests)", total)
	}
	// Unlinking the pinned account: a clear error, still no other account.
	if err := env.h.vault.RemoveAccount(env.userID, first); err != nil {
		t.Fatal(err)
	}
	if e := apiError(t, env.client, "hi"); e.StatusCode != 403 || e.Code != "account_not_linked" {
		t.Fatalf("pinned to a removed account: %d %s", e.StatusCode, e.Code)
	}
}

// TestRelinkNeededAccountSkipped: an account whose login died is passed
// over for the next.
func TestRelinkNeededAccountSkipped(t *testing.T) {
	env := newProxyEnv(t)
	env.withSecond(t)
	env.fake.ExpireAccess("acc-1")
	env.fake.ExpireRefresh("acc-1")
	if out, err := generate(t, env.client, "chat", "hello"); err != nil || !strings.Contains(out, "hello") {
		t.Fatalf("with acc-1's login dead: %q, %v", out, err)
	}
	if total, _ := env.requests("acc-2"); total != 1 {
		t.Fatalf("acc-2: %d requests", total)
	}
	accts, _ := env.h.vault.Accounts(env.userID)
	if !accts[0].RelinkNeeded {
		t.Fatal("acc-1 not marked for re-link")
	}
}

// TestConversationAffinity: with most-remaining, a new conversation goes
// to the account with more room, but a conversation stays where it began.
func TestConversationAffinity(t *testing.T) {
	env := newProxyEnv(t)
	_, _ = env.withSecond(t)
	if _, err := env.h.vault.SetAccountPolicy(env.userID, vault.PolicyMostRemaining); err != nil {
		t.Fatal(err)
	}
	ask := func(conv string) {
		t.Helper()
		_, err := env.client.Responses.New(context.Background(), responses.ResponseNewParams{Model: "gpt-5.5",
			PromptCacheKey: openai.String(conv), Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi")}})
		if err != nil {
			t.Fatal(err)
		}
	}
	ask("conv-1") // both unknown: the first in order, acc-1; it now reports 1% used
	ask("conv-1") // same conversation: acc-1 again although acc-2 has more left
	if total, _ := env.requests("acc-1"); total != 2 {
		t.Fatalf("conversation moved: acc-1 has %d requests", total)
	}
	ask("conv-2") // a new one: acc-2, which has the most left
	if total, _ := env.requests("acc-2"); total != 1 {
		t.Fatalf("new conversation: acc-2 has %d requests", total)
	}
}

// TestConcurrentFlip: many requests of one user while the first account
// runs out. All are served; once the proxy has recorded the flip, no
// request reaches the exhausted account.
func TestConcurrentFlip(t *testing.T) {
	env := newProxyEnv(t)
	env.withSecond(t)
	env.fake.SetUsageBudget("acc-1", 5, time.Hour)
	const n = 24
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := generate(t, env.client, "chat", "req "+strconv.Itoa(i)); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t1, limited := env.requests("acc-1")
	t2, _ := env.requests("acc-2")
	if t1-limited != 5 || t2 != n-5 {
		t.Fatalf("served: acc-1 %d, acc-2 %d; want 5 and %d", t1-limited, t2, n-5)
	}
	// Only requests already on their way when the first refusal arrived
	// could be refused; the flip is recorded now, so nothing more goes there.
	for i := range 5 {
		if _, err := generate(t, env.client, "chat", "after "+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	if after, _ := env.requests("acc-1"); after != t1 {
		t.Fatalf("acc-1 got %d more requests after the flip", after-t1)
	}
}

// TestUsageReportsEveryAccount: /v1/usage lists the accounts in their
// order, each with its own windows, and says which is at its limit.
func TestUsageReportsEveryAccount(t *testing.T) {
	env := newProxyEnv(t)
	first, second := env.withSecond(t)
	env.fake.SetUsageBudget("acc-1", 0, time.Hour)
	if _, err := generate(t, env.client, "chat", "hi"); err != nil {
		t.Fatal(err)
	}
	u := env.usage(t, "")
	if len(u.Accounts) != 2 || u.Accounts[0].ID != first || u.Accounts[1].ID != second || u.Accounts[1].Label != "work" {
		t.Fatalf("accounts: %+v", u.Accounts)
	}
	if u.Accounts[0].ExhaustedUntil.IsZero() || !u.Accounts[1].ExhaustedUntil.IsZero() {
		t.Fatalf("exhaustion: %+v", u.Accounts)
	}
	if q := u.Accounts[1].Quota; q == nil || q.FiveHour == nil || q.PlanType != "pro" {
		t.Fatalf("the serving account's windows: %+v", q)
	}
}

// TestSingleAccountIsNotMarked: with one account the usage-limit answer
// is passed on and the next request still asks the upstream (whose limit
// may have been lifted), as before accounts could be several.
func TestSingleAccountIsNotMarked(t *testing.T) {
	env := newProxyEnv(t)
	env.fake.SetUsageBudget("acc-1", 0, time.Hour)
	if e := apiError(t, env.client, "hi"); e.StatusCode != 429 || e.Code != "usage_limit_reached" {
		t.Fatalf("at the limit: %d %s", e.StatusCode, e.Code)
	}
	env.fake.SetUsageBudget("acc-1", -1, 0)
	if _, err := generate(t, env.client, "chat", "hi"); err != nil {
		t.Fatalf("after the limit was lifted: %v", err)
	}
}
