package caddymodule

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/klauspost/compress/zstd"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
	"github.com/usemysub/caddy-codex-proxy/metrics"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// proxyEnv is a provisioned handler behind a real HTTP server, with one
// user linked to an account of the fake Codex backend.
type proxyEnv struct {
	fake    *codextest.Server
	h       *Handler
	srv     *httptest.Server
	key     string
	userID  string
	account string
	client  openai.Client
	// ip is the client address Caddy would have resolved for this env's
	// requests; each env has its own, since the rate limiter is shared by
	// every handler in the process.
	ip string
}

var testIPs atomic.Uint32

// nextTestIP is a client address no other env in this process uses.
func nextTestIP() string {
	n := testIPs.Add(1)
	return fmt.Sprintf("198.18.%d.%d", byte(n>>8), byte(n))
}

// serveHandler serves h the way a Caddy server calls it: with the request
// vars holding the client address (ip, or the X-Test-Client-Ip header) and
// a next handler answering 418.
func serveHandler(t *testing.T, h *Handler, ip string) *httptest.Server {
	t.Helper()
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.WriteHeader(http.StatusTeapot)
		return nil
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client := ip
		if v := r.Header.Get("X-Test-Client-Ip"); v != "" {
			client = v
		}
		r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{caddyhttp.ClientIPVarKey: client}))
		if err := h.ServeHTTP(w, r, next); err != nil {
			t.Errorf("ServeHTTP returned %v", err)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func newProxyEnv(t *testing.T, opts ...codextest.Option) *proxyEnv {
	t.Helper()
	return newProxyEnvAt(t, filepath.Join(t.TempDir(), "vault.db"), opts...)
}

// newProxyEnvAt is newProxyEnv with the vault at location (a file or a
// PostgreSQL DSN).
func newProxyEnvAt(t *testing.T, location string, opts ...codextest.Option) *proxyEnv {
	t.Helper()
	return newProxyEnvWith(t, location, nil, opts...)
}

// newProxyEnvWith is newProxyEnvAt with mod (if not nil) applied to the
// handler's settings before it starts.
func newProxyEnvWith(t *testing.T, location string, mod func(*Handler), opts ...codextest.Option) *proxyEnv {
	t.Helper()
	fake := codextest.New(t, opts...)
	tok := fake.AddAccount("acc-1", "ada@example.com", "plus")
	h := &Handler{
		Vault:          location,
		EncryptionKeys: []string{"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
		APIKeyPepper:   "test-pepper-0123456789",
		Upstream:       fake.URL,
		OAuthIssuer:    fake.IssuerURL,
		Keepalive:      caddy.Duration(50 * time.Millisecond),
	}
	if mod != nil {
		mod(h)
	}
	startHandler(t, h)
	u, err := h.vault.CreateUser("ada@example.com", "Ada")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.vault.PutTokens(u.ID, vault.TokenBundle{IDToken: tok.IDToken, AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken}); err != nil {
		t.Fatal(err)
	}
	key, _, err := h.vault.CreateKey(u.ID, "test")
	if err != nil {
		t.Fatal(err)
	}
	ip := nextTestIP()
	srv := serveHandler(t, h, ip)
	env := &proxyEnv{fake: fake, h: h, srv: srv, key: key, userID: u.ID, account: "acc-1", ip: ip}
	env.client = openai.NewClient(option.WithBaseURL(srv.URL+"/v1/"), option.WithAPIKey(key), option.WithMaxRetries(0))
	return env
}

func userMsg(text string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:    "gpt-5.5",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(text)},
	}
}

func TestChatStreamThroughProxy(t *testing.T) {
	env := newProxyEnv(t)
	params := userMsg("hello " + codextest.Marker(codextest.ScenarioReasoningText))
	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	stream := env.client.Chat.Completions.NewStreaming(context.Background(), params)
	acc := openai.ChatCompletionAccumulator{}
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if len(acc.Choices) != 1 || acc.Choices[0].Message.Content == "" || acc.Choices[0].FinishReason != "stop" {
		t.Fatalf("accumulated %+v", acc.ChatCompletion)
	}
	if acc.Usage.TotalTokens == 0 {
		t.Fatal("no usage chunk")
	}
	// The upstream got the strict dialect.
	reqs := env.fake.RequestsTo("/responses")
	if len(reqs) != 1 {
		t.Fatalf("%d upstream requests", len(reqs))
	}
	got := reqs[0]
	if got.JSON["store"] != false || got.JSON["stream"] != true || got.Header.Get("Chatgpt-Account-Id") != "acc-1" {
		t.Fatalf("upstream request: %v %v", got.JSON, got.Header)
	}
	if ua := got.Header.Get("User-Agent"); strings.Contains(ua, "OpenAI/Go") {
		t.Fatalf("downstream user agent leaked upstream: %s", ua)
	}
}

func TestChatNonStreamToolCall(t *testing.T) {
	env := newProxyEnv(t)
	params := userMsg("read it " + codextest.Marker(codextest.ScenarioToolCall))
	params.Tools = []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(openai.FunctionDefinitionParam{
		Name:       "read_file",
		Parameters: openai.FunctionParameters{"type": "object", "properties": map[string]any{"path": map[string]any{"type": "string"}}},
	})}
	cc, err := env.client.Chat.Completions.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	if cc.Choices[0].FinishReason != "tool_calls" || len(cc.Choices[0].Message.ToolCalls) == 0 {
		t.Fatalf("completion: %s", cc.RawJSON())
	}
	call := cc.Choices[0].Message.ToolCalls[0]
	if call.ID == "" || call.Function.Name == "" || !json.Valid([]byte(call.Function.Arguments)) {
		t.Fatalf("tool call: %+v", call)
	}
}

func TestResponsesStreamAndNonStream(t *testing.T) {
	env := newProxyEnv(t)
	stream := env.client.Responses.NewStreaming(context.Background(), responses.ResponseNewParams{
		Model: "gpt-5.5",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi " + codextest.Marker(codextest.ScenarioText))},
	})
	var text strings.Builder
	completed := false
	for stream.Next() {
		ev := stream.Current()
		if ev.Type == "response.output_text.delta" {
			text.WriteString(ev.Delta)
		}
		if ev.Type == "response.completed" {
			completed = true
		}
	}
	if err := stream.Err(); err != nil || !completed || text.Len() == 0 {
		t.Fatalf("stream: err=%v completed=%v text=%q", err, completed, text.String())
	}
	resp, err := env.client.Responses.New(context.Background(), responses.ResponseNewParams{
		Model: "gpt-5.5",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hi " + codextest.Marker(codextest.ScenarioEmptyOutput))},
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.OutputText() == "" {
		t.Fatalf("non-stream response lost its output: %s", resp.RawJSON())
	}
}

// apiError runs a chat call and returns the *openai.Error it failed with.
func apiError(t *testing.T, c openai.Client, text string) *openai.Error {
	t.Helper()
	_, err := c.Chat.Completions.New(context.Background(), userMsg(text))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) {
		t.Fatalf("want an API error, got %v", err)
	}
	return apiErr
}

func TestBadAndRevokedKeys(t *testing.T) {
	env := newProxyEnv(t)
	bad := openai.NewClient(option.WithBaseURL(env.srv.URL+"/v1/"), option.WithAPIKey("cpk_nope"), option.WithMaxRetries(0))
	if e := apiError(t, bad, "x"); e.StatusCode != 401 || e.Code != "invalid_api_key" {
		t.Fatalf("bad key: %d %s", e.StatusCode, e.Code)
	}
	keys, _ := env.h.vault.ListKeys(env.userID)
	if err := env.h.vault.RevokeKey(env.userID, keys[0].ID); err != nil {
		t.Fatal(err)
	}
	if e := apiError(t, env.client, "x"); e.StatusCode != 401 {
		t.Fatalf("revoked key: %d", e.StatusCode)
	}
	if n := len(env.fake.RequestsTo("/responses")); n != 0 {
		t.Fatalf("%d upstream requests for unauthenticated calls", n)
	}
}

func TestUsageLimitIs429WithRetryAfter(t *testing.T) {
	env := newProxyEnv(t)
	e := apiError(t, env.client, "x "+codextest.Marker(codextest.ScenarioUsageLimit))
	if e.StatusCode != 429 || e.Response.Header.Get("Retry-After") == "" {
		t.Fatalf("usage limit: %d retry-after=%q %s", e.StatusCode, e.Response.Header.Get("Retry-After"), e.RawJSON())
	}
	if n := len(env.fake.RequestsTo("/responses")); n != 1 {
		t.Fatalf("usage-limit 429 retried: %d upstream requests", n)
	}
}

func TestExpiredAccessTokenRefreshesTransparently(t *testing.T) {
	env := newProxyEnv(t)
	env.fake.ExpireAccess(env.account)
	if _, err := env.client.Chat.Completions.New(context.Background(), userMsg("hi")); err != nil {
		t.Fatal(err)
	}
	if env.fake.RefreshCount() != 1 {
		t.Fatalf("%d refreshes", env.fake.RefreshCount())
	}
}

func TestReusedRefreshTokenAsksToRelink(t *testing.T) {
	env := newProxyEnv(t)
	env.fake.ExpireRefresh(env.account)
	env.fake.ExpireAccess(env.account)
	e := apiError(t, env.client, "hi")
	if e.StatusCode != 401 || !strings.Contains(strings.ToLower(e.Message), "re-link") {
		t.Fatalf("relink: %d %s", e.StatusCode, e.RawJSON())
	}
}

func TestUpstreamDownIs502JSON(t *testing.T) {
	env := newProxyEnv(t)
	env.fake.Close()
	e := apiError(t, env.client, "hi")
	if e.StatusCode != 502 || e.Message == "" {
		t.Fatalf("upstream down: %d %s", e.StatusCode, e.RawJSON())
	}
}

func TestMidStreamFailureEndsWithErrorThenDone(t *testing.T) {
	env := newProxyEnv(t)
	params := userMsg("x " + codextest.Marker(codextest.ScenarioFailed))
	stream := env.client.Chat.Completions.NewStreaming(context.Background(), params)
	for stream.Next() {
	}
	if stream.Err() == nil {
		t.Fatal("a failed upstream stream looked like success")
	}
}

func TestNotFoundAndMethodErrorsAreOpenAIShaped(t *testing.T) {
	env := newProxyEnv(t)
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/v1/embeddings", 404},
		{"GET", "/v1/chat/completions", 405},
		{"POST", "/v1/models", 405},
	} {
		req, _ := http.NewRequest(tc.method, env.srv.URL+tc.path, nil)
		req.Header.Set("Authorization", "Bearer "+env.key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var env struct {
			Error struct{ Message, Type string }
		}
		if resp.StatusCode != tc.status || json.Unmarshal(body, &env) != nil || env.Error.Message == "" || resp.Header.Get("X-Request-Id") == "" {
			t.Fatalf("%s %s: %d %s", tc.method, tc.path, resp.StatusCode, body)
		}
	}
	resp, err := http.Get(env.srv.URL + "/dashboard")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTeapot {
		t.Fatalf("non-API path not passed on: %d", resp.StatusCode)
	}
}

func TestBadBodies(t *testing.T) {
	env := newProxyEnv(t)
	for _, tc := range []struct {
		name, body, encoding string
		status               int
	}{
		{"invalid json", `{"model":`, "", 400},
		{"not an object", `[1]`, "", 400},
		{"empty", ``, "", 400},
		{"unknown encoding", `{}`, "compress", 415},
	} {
		req, _ := http.NewRequest("POST", env.srv.URL+"/v1/chat/completions", strings.NewReader(tc.body))
		req.Header.Set("Authorization", "Bearer "+env.key)
		if tc.encoding != "" {
			req.Header.Set("Content-Encoding", tc.encoding)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !json.Valid(body) || !bytes.Contains(body, []byte(`"message"`)) {
			t.Errorf("%s: %d %s", tc.name, resp.StatusCode, body)
		}
	}
}

func TestModelsList(t *testing.T) {
	env := newProxyEnv(t)
	page, err := env.client.Models.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Data) == 0 {
		t.Fatal("no models")
	}
}

// TestClientDisconnectCancelsUpstream: a slow stream whose client goes away
// must not keep the upstream request open.
func TestClientDisconnectCancelsUpstream(t *testing.T) {
	env := newProxyEnv(t, codextest.WithSlowDelay(2*time.Second))
	ctx, cancel := context.WithCancel(context.Background())
	params := userMsg("x " + codextest.Marker(codextest.ScenarioSlow))
	stream := env.client.Chat.Completions.NewStreaming(ctx, params)
	go func() {
		time.Sleep(300 * time.Millisecond)
		cancel()
	}()
	start := time.Now()
	for stream.Next() {
	}
	if time.Since(start) > 1500*time.Millisecond {
		t.Fatalf("stream outlived the client by %v", time.Since(start))
	}
	deadline := time.Now().Add(2 * time.Second)
	for env.h.metrics != nil && time.Now().Before(deadline) {
		if streamsActive(env.h) == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("stream still active after the client left")
}

func streamsActive(h *Handler) float64 { return gaugeValue(metrics.ActiveStreams) }

// TestMetricsLabelsStayBounded: a client-chosen model name never becomes a
// label, and refresh attempts are counted by outcome.
func TestMetricsLabelsStayBounded(t *testing.T) {
	env := newProxyEnv(t)
	// The collectors live as long as the process: compare with before.
	known := metrics.Requests.WithLabelValues("chat_completions", "200", "gpt-5.5")
	other := metrics.Requests.WithLabelValues("chat_completions", "404", "other")
	refreshed := metrics.TokenRefreshes.WithLabelValues("success")
	known0, other0, refreshed0 := testutil.ToFloat64(known), testutil.ToFloat64(other), testutil.ToFloat64(refreshed)

	params := userMsg("hi")
	params.Model = "totally-made-up-model-4711"
	_, _ = env.client.Chat.Completions.New(context.Background(), params)
	if _, err := env.client.Chat.Completions.New(context.Background(), userMsg("hi")); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(known) - known0; got != 1 {
		t.Fatalf("known model counted %v times", got)
	}
	if got := testutil.ToFloat64(other) - other0; got != 1 {
		t.Fatalf("unknown model not counted as other: %v", got)
	}
	ch := make(chan prometheus.Metric, 1000)
	metrics.Requests.Collect(ch)
	close(ch)
	for m := range ch {
		var d dto.Metric
		_ = m.Write(&d)
		for _, lp := range d.GetLabel() {
			if lp.GetName() == "model" && lp.GetValue() == params.Model {
				t.Fatalf("the client's model name became a label: %v", d.GetLabel())
			}
		}
	}
	env.fake.ExpireAccess(env.account)
	if _, err := env.client.Chat.Completions.New(context.Background(), userMsg("hi")); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(refreshed) - refreshed0; got != 1 {
		t.Fatalf("refresh successes: %v", got)
	}
}

// TestCompressedBodies: gzip, br and zstd request bodies are decoded, and
// the size limit applies to the decoded bytes.
func TestCompressedBodies(t *testing.T) {
	env := newProxyEnv(t)
	body := []byte(`{"model":"gpt-5.5","messages":[{"role":"user","content":"hi"}]}`)
	encoders := map[string]func([]byte) []byte{
		"gzip": func(b []byte) []byte {
			var buf bytes.Buffer
			w := gzip.NewWriter(&buf)
			_, _ = w.Write(b)
			_ = w.Close()
			return buf.Bytes()
		},
		"br": func(b []byte) []byte {
			var buf bytes.Buffer
			w := brotli.NewWriter(&buf)
			_, _ = w.Write(b)
			_ = w.Close()
			return buf.Bytes()
		},
		"zstd": func(b []byte) []byte {
			enc, _ := zstd.NewWriter(nil)
			defer enc.Close()
			return enc.EncodeAll(b, nil)
		},
	}
	post := func(enc string, payload []byte) (int, string) {
		req, _ := http.NewRequest("POST", env.srv.URL+"/v1/chat/completions", bytes.NewReader(payload))
		req.Header.Set("Authorization", "Bearer "+env.key)
		req.Header.Set("Content-Encoding", enc)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for enc, f := range encoders {
		if status, b := post(enc, f(body)); status != 200 || !strings.Contains(b, `"chat.completion"`) {
			t.Errorf("%s: %d %s", enc, status, b)
		}
	}
	env.h.MaxBodySize = 1 << 10
	env.h.api = env.h.newAPI()
	bomb := encoders["zstd"]([]byte(`{"model":"gpt-5.5","messages":[{"role":"user","content":"` + strings.Repeat("a", 1<<20) + `"}]}`))
	if status, b := post("zstd", bomb); status != http.StatusRequestEntityTooLarge {
		t.Errorf("decoded size not limited: %d %s", status, b)
	}
}

// TestKeyHeadersAcceptedAndRedacted: x-api-key and api-key authenticate,
// and are masked before Caddy's access log sees the request.
func TestKeyHeadersAcceptedAndRedacted(t *testing.T) {
	env := newProxyEnv(t)
	for _, name := range []string{"X-Api-Key", "Api-Key"} {
		req := httptest.NewRequest("GET", "/v1/models", nil)
		req.Header.Set(name, env.key)
		rec := httptest.NewRecorder()
		if err := env.h.ServeHTTP(rec, req, nil); err != nil {
			t.Fatal(err)
		}
		if rec.Code != 200 {
			t.Fatalf("%s: %d %s", name, rec.Code, rec.Body)
		}
		if got := req.Header.Get(name); got != "REDACTED" {
			t.Fatalf("%s left as %q", name, got)
		}
	}
}

// TestRelinkAndNotLinkedStayClear: once a user needs a re-link, every later
// request says so (not a generic 502), and a user with no ChatGPT login is
// told to link one.
func TestRelinkAndNotLinkedStayClear(t *testing.T) {
	env := newProxyEnv(t)
	env.fake.ExpireRefresh(env.account)
	env.fake.ExpireAccess(env.account)
	for i := 0; i < 2; i++ {
		if e := apiError(t, env.client, "hi"); e.StatusCode != 401 || e.Code != "relink_needed" {
			t.Fatalf("request %d: %d %s", i+1, e.StatusCode, e.RawJSON())
		}
	}
	u, err := env.h.vault.CreateUser("nolink@example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	key, _, err := env.h.vault.CreateKey(u.ID, "x")
	if err != nil {
		t.Fatal(err)
	}
	c := openai.NewClient(option.WithBaseURL(env.srv.URL+"/v1/"), option.WithAPIKey(key), option.WithMaxRetries(0))
	if e := apiError(t, c, "hi"); e.StatusCode != 403 || e.Code != "chatgpt_not_linked" {
		t.Fatalf("unlinked user: %d %s", e.StatusCode, e.RawJSON())
	}
}

// TestDisabledUserIsRefused: an operator's disable takes effect on the next
// request with a clear 403, and enable restores access.
func TestDisabledUserIsRefused(t *testing.T) {
	env := newProxyEnv(t)
	if _, err := env.h.vault.SetUserDisabled(env.userID, true); err != nil {
		t.Fatal(err)
	}
	if e := apiError(t, env.client, "hi"); e.StatusCode != 403 || e.Code != "account_disabled" {
		t.Fatalf("disabled: %d %s", e.StatusCode, e.RawJSON())
	}
	if _, err := env.h.vault.SetUserDisabled(env.userID, false); err != nil {
		t.Fatal(err)
	}
	if _, err := env.client.Chat.Completions.New(context.Background(), userMsg("hi")); err != nil {
		t.Fatal(err)
	}
}

// TestKeepaliveWhileUpstreamIsSilent: long gaps between upstream events get
// SSE comments, and the stream still completes.
func TestKeepaliveWhileUpstreamIsSilent(t *testing.T) {
	env := newProxyEnv(t, codextest.WithSlowDelay(150*time.Millisecond))
	body := `{"model":"gpt-5.5","stream":true,"messages":[{"role":"user","content":"x ` + codextest.Marker(codextest.ScenarioSlow) + `"}]}`
	req, _ := http.NewRequest("POST", env.srv.URL+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+env.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	all, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if !bytes.Contains(all, []byte(": keepalive\n\n")) || !bytes.HasSuffix(all, []byte("data: [DONE]\n\n")) {
		t.Fatalf("no keepalive or no [DONE]:\n%s", all)
	}
}
