package codex

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
)

func TestResponsesSendsCodexHeaders(t *testing.T) {
	srv, c, ts, _ := setup(t)
	st, err := c.Responses(t.Context(), ts, requestBody("hello there"), RequestHeaders{PromptCacheKey: "pck-123", RequestID: "req-abc"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	body := readAll(t, st)
	if !contains(body, "event: response.completed", "You said: hello there") {
		t.Fatalf("stream body: %.300s", body)
	}
	reqs := srv.RequestsTo("/responses")
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	h := reqs[0].Header
	want := map[string]string{
		"Authorization":       "Bearer " + ts.access,
		"ChatGPT-Account-ID":  "acc-1",
		"originator":          "codex_cli_rs",
		"User-Agent":          c.UserAgent(),
		"version":             DefaultClientVersion,
		"session_id":          "pck-123",
		"session-id":          "pck-123",
		"thread-id":           "pck-123",
		"x-client-request-id": "req-abc",
		"Accept":              "text/event-stream",
		"Content-Type":        "application/json",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if !strings.HasPrefix(c.UserAgent(), "codex_cli_rs/"+DefaultClientVersion+" (") || !strings.HasSuffix(c.UserAgent(), ") usemysub") {
		t.Errorf("user agent %q", c.UserAgent())
	}
	if h.Get(RelayTokenHeader) != "" {
		t.Error("relay token sent without a relay")
	}
	if st.RateLimits == nil || st.RateLimits.PlanType != "plus" || st.RateLimits.Primary == nil || st.RateLimits.Primary.WindowMinutes != 300 {
		t.Errorf("rate limits %+v", st.RateLimits)
	}
	if st.AccountID != "acc-1" || st.RequestID == "" {
		t.Errorf("stream metadata: %q %q", st.AccountID, st.RequestID)
	}
	if ts.forced != 0 {
		t.Error("refreshed without a 401")
	}
}

func TestResponsesWithoutCacheKeyOmitsSessionHeaders(t *testing.T) {
	srv, c, ts, _ := setup(t)
	st, err := c.Responses(t.Context(), ts, requestBody("x"), RequestHeaders{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	h := srv.RequestsTo("/responses")[0].Header
	if h.Get("session_id") != "" || h.Get("session-id") != "" || h.Get("thread-id") != "" || h.Get("x-client-request-id") == "" {
		t.Errorf("headers %v", h)
	}
}

func TestResponses401RefreshesOnceAndRetries(t *testing.T) {
	srv, c, ts, _ := setup(t)
	srv.ExpireAccess("acc-1")
	st, err := c.Responses(t.Context(), ts, requestBody("after refresh"), RequestHeaders{})
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, st); !strings.Contains(body, "You said: after refresh") {
		t.Fatalf("body %.200s", body)
	}
	st.Close()
	if n := len(srv.RequestsTo("/responses")); n != 2 {
		t.Fatalf("%d upstream requests, want 2", n)
	}
	if ts.forced != 1 || srv.RefreshCount() != 1 {
		t.Fatalf("forced %d, refreshes %d", ts.forced, srv.RefreshCount())
	}
	reqs := srv.RequestsTo("/responses")
	if reqs[0].Header.Get("Authorization") == reqs[1].Header.Get("Authorization") {
		t.Fatal("retry reused the rejected token")
	}
}

func TestResponses401AfterRefreshIsUnauthorized(t *testing.T) {
	srv, c, ts, rec := setup(t, codextest.WithScenario(codextest.ScenarioUnauthorized))
	_, err := c.Responses(t.Context(), ts, requestBody("x"), RequestHeaders{})
	ue := asUpstream(t, err)
	if ue.Err.Status != 401 || ue.Err.Code != CodeUpstreamUnauthorized || !strings.Contains(ue.Err.Message, "Re-link") {
		t.Fatalf("error %+v", ue.Err)
	}
	if n := len(srv.RequestsTo("/responses")); n != 2 || ts.forced != 1 || len(rec.delays) != 0 {
		t.Fatalf("requests %d, forced %d, sleeps %d", n, ts.forced, len(rec.delays))
	}
	if strings.Contains(err.Error(), ts.access) || strings.Contains(err.Error(), ts.refresh) {
		t.Fatal("token in error message")
	}
}

func TestResponsesPermanentRefreshFailure(t *testing.T) {
	srv, c, ts, _ := setup(t)
	srv.ExpireAccess("acc-1")
	srv.ExpireRefresh("acc-1")
	_, err := c.Responses(t.Context(), ts, requestBody("x"), RequestHeaders{})
	ue := asUpstream(t, err)
	if ue.Err.Status != 401 || ue.Err.Code != CodeUpstreamUnauthorized {
		t.Fatalf("error %+v", ue.Err)
	}
	var re *RefreshError
	if !errors.As(err, &re) || !re.Permanent() {
		t.Fatalf("cause not kept: %v", ue.Cause)
	}
}

func TestResponsesRetries5xx(t *testing.T) {
	var n atomic.Int32
	srv, c, ts, rec := setup(t, codextest.WithScript(func(codextest.Request) codextest.Scenario {
		if n.Add(1) <= 2 {
			return codextest.ScenarioServerError
		}
		return codextest.ScenarioPlain
	}))
	st, err := c.Responses(t.Context(), ts, requestBody("x"), RequestHeaders{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if got := len(srv.RequestsTo("/responses")); got != 3 {
		t.Fatalf("%d requests", got)
	}
	if len(rec.delays) != 2 {
		t.Fatalf("delays %v", rec.delays)
	}
	for i, d := range rec.delays {
		want := DefaultRetryBase << i
		if d < want*9/10 || d > want*11/10 {
			t.Errorf("delay %d = %v, want %v ±10%%", i, d, want)
		}
	}
}

func TestResponses5xxRetriesAreBounded(t *testing.T) {
	tests := []struct {
		name       string
		maxRetries int
		want       int
	}{
		{"default", 0, 1 + DefaultMaxRetries},
		{"disabled", -1, 1},
		{"three", 3, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := codextest.New(t, codextest.WithScenario(codextest.ScenarioServerError))
			tok := srv.AddAccount("acc-1", "a@example.com", "plus")
			c, _ := newTestClient(t, Config{Upstream: srv.URL, MaxRetries: tc.maxRetries})
			_, err := c.Responses(t.Context(), newTestTS(srv, tok, "acc-1"), requestBody("x"), RequestHeaders{})
			ue := asUpstream(t, err)
			if ue.Err.Status != 502 || ue.Err.Code != CodeUpstreamError {
				t.Fatalf("error %+v", ue.Err)
			}
			if got := len(srv.RequestsTo("/responses")); got != tc.want {
				t.Fatalf("%d requests, want %d", got, tc.want)
			}
		})
	}
}

func TestResponsesNeverRetries429(t *testing.T) {
	tests := []struct {
		sc       codextest.Scenario
		code     string
		minRetry time.Duration
		maxRetry time.Duration
		msg      string
	}{
		{codextest.ScenarioUsageLimit, CodeUsageLimitReached, 13860 * time.Second, 13880 * time.Second, "resets at"},
		{codextest.ScenarioRateLimited, "rate_limit_exceeded", 7 * time.Second, 7 * time.Second, "try again in 7s"},
	}
	for _, tc := range tests {
		t.Run(string(tc.sc), func(t *testing.T) {
			srv, c, ts, rec := setup(t, codextest.WithScenario(tc.sc))
			_, err := c.Responses(t.Context(), ts, requestBody("x"), RequestHeaders{})
			ue := asUpstream(t, err)
			if ue.Err.Status != 429 || ue.Err.Code != tc.code || !strings.Contains(ue.Err.Message, tc.msg) {
				t.Fatalf("error %+v", ue.Err)
			}
			if ue.RetryAfter < tc.minRetry || ue.RetryAfter > tc.maxRetry {
				t.Fatalf("retry after %v", ue.RetryAfter)
			}
			if n := len(srv.RequestsTo("/responses")); n != 1 || len(rec.delays) != 0 {
				t.Fatalf("429 retried: %d requests", n)
			}
		})
	}
}

func TestResponsesMapsUpstreamErrors(t *testing.T) {
	tests := []struct {
		sc     codextest.Scenario
		status int
		code   string
		msg    string
	}{
		{codextest.ScenarioCloudflare, 502, CodeCloudflareChallenge, "Cloudflare"},
		{codextest.ScenarioUsageNotIncluded, 403, CodeUsageNotIncluded, "does not include Codex"},
	}
	for _, tc := range tests {
		t.Run(string(tc.sc), func(t *testing.T) {
			srv, c, ts, _ := setup(t, codextest.WithScenario(tc.sc))
			_, err := c.Responses(t.Context(), ts, requestBody("x"), RequestHeaders{})
			ue := asUpstream(t, err)
			if ue.Err.Status != tc.status || ue.Err.Code != tc.code || !strings.Contains(ue.Err.Message, tc.msg) {
				t.Fatalf("error %+v", ue.Err)
			}
			if n := len(srv.RequestsTo("/responses")); n != 1 {
				t.Fatalf("%d requests", n)
			}
		})
	}
	// A validation 400 keeps the upstream's text.
	_, c, ts, _ := setup(t)
	_, err := c.Responses(t.Context(), ts, []byte(`{"model":"gpt-5.5","instructions":"","input":[],"store":true,"stream":true}`), RequestHeaders{})
	if ue := asUpstream(t, err); ue.Err.Status != 400 || ue.Err.Message != "Store must be set to false" {
		t.Fatalf("400: %+v", ue.Err)
	}
	_, err = c.Responses(t.Context(), ts, []byte(`{"model":"gpt-4o","instructions":"","input":[],"store":false,"stream":true}`), RequestHeaders{})
	if ue := asUpstream(t, err); ue.Err.Status != 404 || ue.Err.Code != CodeModelNotFound || !strings.Contains(ue.Err.Message, "'gpt-4o' model is not supported") {
		t.Fatalf("model: %+v", ue.Err)
	}
}

func TestResponsesConnectionErrorsRetried(t *testing.T) {
	l := httptest.NewServer(http.NotFoundHandler())
	addr := l.URL
	l.Close() // nothing listens there any more
	c, rec := newTestClient(t, Config{Upstream: addr + "/backend-api/codex"})
	ts := TokenSourceFunc(func(context.Context, bool) (string, string, error) { return "tok", "acc", nil })
	_, err := c.Responses(t.Context(), ts, requestBody("x"), RequestHeaders{})
	ue := asUpstream(t, err)
	if ue.Err.Status != 502 || ue.Err.Code != CodeUpstreamUnreachable || ue.Cause == nil {
		t.Fatalf("error %+v", ue)
	}
	if len(rec.delays) != DefaultMaxRetries {
		t.Fatalf("%d retries", len(rec.delays))
	}
}

func TestResponsesRelay(t *testing.T) {
	srv := codextest.New(t)
	tok := srv.AddAccount("acc-1", "a@example.com", "plus")
	target, _ := url.Parse(srv.IssuerURL)
	var seen atomic.Value
	proxy := httputil.NewSingleHostReverseProxy(target)
	relay := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.Header.Get(RelayTokenHeader))
		if r.Header.Get(RelayTokenHeader) != "relay-secret" {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		r.Header.Del(RelayTokenHeader)
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(relay.Close)
	c, _ := newTestClient(t, Config{RelayURL: relay.URL + "/backend-api/codex", RelayToken: "relay-secret"})
	if c.BaseURL() != relay.URL+"/backend-api/codex" {
		t.Fatalf("base %s", c.BaseURL())
	}
	st, err := c.Responses(t.Context(), newTestTS(srv, tok, "acc-1"), requestBody("via relay"), RequestHeaders{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(readAll(t, st), "You said: via relay") {
		t.Fatal("relay answer")
	}
	st.Close()
	if seen.Load() != "relay-secret" {
		t.Fatalf("relay saw token %v", seen.Load())
	}
	if n := len(srv.RequestsTo("/responses")); n != 1 {
		t.Fatalf("upstream saw %d requests", n)
	}
}

func TestRedirectToOtherHostRefused(t *testing.T) {
	var leaked atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked.Add(1)
		if r.Header.Get("Authorization") != "" || r.Header.Get("ChatGPT-Account-ID") != "" || r.Header.Get(RelayTokenHeader) != "" {
			leaked.Add(100)
		}
	}))
	t.Cleanup(other.Close)
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/steal", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(evil.Close)
	for _, cfg := range []Config{
		{Upstream: evil.URL + "/backend-api/codex"},
		{RelayURL: evil.URL, RelayToken: "relay-secret"},
	} {
		c, rec := newTestClient(t, cfg)
		ts := TokenSourceFunc(func(context.Context, bool) (string, string, error) { return "secret-bearer", "acc", nil })
		_, err := c.Responses(t.Context(), ts, requestBody("x"), RequestHeaders{})
		ue := asUpstream(t, err)
		if ue.Err.Status != 502 || !strings.Contains(ue.Err.Message, "redirected") || len(rec.delays) != 0 {
			t.Fatalf("error %+v", ue.Err)
		}
		if strings.Contains(err.Error(), "secret") {
			t.Fatal("secret in error")
		}
	}
	if leaked.Load() != 0 {
		t.Fatalf("other host was contacted (%d)", leaked.Load())
	}
}

func TestSameHostRedirectFollowed(t *testing.T) {
	srv := codextest.New(t)
	tok := srv.AddAccount("acc-1", "a@example.com", "plus")
	target, _ := url.Parse(srv.IssuerURL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/old/") {
			http.Redirect(w, r, "/backend-api/codex/"+strings.TrimPrefix(r.URL.Path, "/old/"), http.StatusPermanentRedirect)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	c, _ := newTestClient(t, Config{Upstream: front.URL + "/old"})
	st, err := c.Responses(t.Context(), newTestTS(srv, tok, "acc-1"), requestBody("moved"), RequestHeaders{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
}

func TestIdleTimeoutCancelsSilentStream(t *testing.T) {
	srv := codextest.New(t, codextest.WithSlowDelay(10*time.Second), codextest.WithScenario(codextest.ScenarioSlow))
	tok := srv.AddAccount("acc-1", "a@example.com", "plus")
	c, _ := newTestClient(t, Config{Upstream: srv.URL, IdleTimeout: 150 * time.Millisecond})
	st, err := c.Responses(t.Context(), newTestTS(srv, tok, "acc-1"), requestBody("x"), RequestHeaders{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	start := time.Now()
	buf := make([]byte, 4096)
	var got []byte
	for {
		n, err := st.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			if !errors.Is(err, ErrIdleTimeout) {
				t.Fatalf("err %v, want ErrIdleTimeout", err)
			}
			break
		}
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("idle timeout took %v", el)
	}
	if !strings.Contains(string(got), "response.created") {
		t.Fatalf("first event missing: %q", got)
	}
}

func TestStreamKeepsFlowingUnderIdleTimeout(t *testing.T) {
	srv := codextest.New(t, codextest.WithSlowDelay(20*time.Millisecond), codextest.WithScenario(codextest.ScenarioSlow))
	tok := srv.AddAccount("acc-1", "a@example.com", "plus")
	c, _ := newTestClient(t, Config{Upstream: srv.URL, IdleTimeout: 300 * time.Millisecond})
	st, err := c.Responses(t.Context(), newTestTS(srv, tok, "acc-1"), requestBody("x"), RequestHeaders{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if body := readAll(t, st); !strings.Contains(body, "response.completed") {
		t.Fatal("incomplete")
	}
}

func TestCutStreamIsAnError(t *testing.T) {
	_, c, ts, _ := setup(t, codextest.WithScenario(codextest.ScenarioCut))
	st, err := c.Responses(t.Context(), ts, requestBody("x"), RequestHeaders{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	buf := make([]byte, 1<<16)
	for {
		_, err := st.Read(buf)
		if err != nil {
			if errors.Is(err, ErrIdleTimeout) || errors.Is(err, io.EOF) {
				t.Fatalf("cut stream gave %v", err)
			}
			return
		}
	}
}

func TestResponsesCancelledContext(t *testing.T) {
	_, c, ts, _ := setup(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := c.Responses(ctx, ts, requestBody("x"), RequestHeaders{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
	if asUpstream(t, err).Err.Status != 499 {
		t.Fatal("status")
	}
}

func TestTokenSourceErrors(t *testing.T) {
	c, _ := newTestClient(t, Config{Upstream: "http://127.0.0.1:1/backend-api/codex"})
	_, err := c.Responses(t.Context(), nil, nil, RequestHeaders{})
	if asUpstream(t, err).Err.Code != CodeTokenUnavailable {
		t.Fatalf("nil ts: %v", err)
	}
	transient := TokenSourceFunc(func(context.Context, bool) (string, string, error) {
		return "", "", &RefreshError{Status: 503}
	})
	_, err = c.Responses(t.Context(), transient, nil, RequestHeaders{})
	if ue := asUpstream(t, err); ue.Err.Status != 502 || ue.Err.Code != CodeTokenUnavailable {
		t.Fatalf("transient: %+v", ue.Err)
	}
	badToken := TokenSourceFunc(func(context.Context, bool) (string, string, error) { return "a\r\nX-Evil: 1", "acc", nil })
	_, err = c.Responses(t.Context(), badToken, nil, RequestHeaders{})
	if ue := asUpstream(t, err); ue.Err.Status != 500 || strings.Contains(err.Error(), "Evil") {
		t.Fatalf("bad token: %+v", ue.Err)
	}
}
