package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/shared"

	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
)

// tinyPNG is a 1×1 PNG.
var tinyPNG = []byte{
	0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
	0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
	0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
	0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
	0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
}

// TestScenarios runs the behaviours a client depends on through one real
// Caddy: what reaches the upstream (images, JSON schema), what the client
// sees when the upstream refuses (usage limit, dead login, unreachable),
// silent token refresh, and cancellation when the client goes away.
func TestScenarios(t *testing.T) {
	t.Parallel()
	fake := newFake(t, codextest.Options{SlowDelay: time.Second})
	tap := newTap(t, fake)
	p, key := startProxySpec(t, fake, proxySpec{
		upstream: tap.URL + codextest.BackendPath,
		sites: []site{{
			name:     "down",
			upstream: fmt.Sprintf("http://127.0.0.1:%d%s", freePort(t), codextest.BackendPath),
		}},
	})
	c := p.openaiClient(t, p.httpURL, key, nil)

	t.Run("image input reaches upstream as input_image", func(t *testing.T) {
		t.Parallel()
		dataURL := "data:image/png;base64," + base64.StdEncoding.EncodeToString(tinyPNG)
		params := openai.ChatCompletionNewParams{Model: "gpt-5.5", Messages: []openai.ChatCompletionMessageParamUnion{
			openai.UserMessage([]openai.ChatCompletionContentPartUnionParam{
				openai.TextContentPart("what is in this picture? img-nonce"),
				openai.ImageContentPart(openai.ChatCompletionContentPartImageImageURLParam{URL: dataURL, Detail: "high"}),
			}),
		}}
		res, err := c.Chat.Completions.New(withTimeout(t), params)
		if err != nil {
			t.Fatal(err)
		}
		if res.Choices[0].FinishReason != "stop" {
			t.Fatalf("answer: %s", res.RawJSON())
		}
		up := upstreamRequest(t, fake, "img-nonce")
		var found map[string]any
		for _, part := range userContent(up.JSON) {
			if part["type"] == "input_image" {
				found = part
			}
		}
		if found == nil || found["image_url"] != dataURL || found["detail"] != "high" {
			t.Fatalf("upstream user content has no input_image with the data URL: %s", up.Body)
		}
	})

	t.Run("json_schema response_format reaches upstream as text.format", func(t *testing.T) {
		t.Parallel()
		schema := map[string]any{
			"type":                 "object",
			"properties":           map[string]any{"city": map[string]any{"type": "string"}},
			"required":             []string{"city"},
			"additionalProperties": false,
		}
		params := chatParams("give me json schema-nonce")
		params.ResponseFormat = openai.ChatCompletionNewParamsResponseFormatUnion{OfJSONSchema: &shared.ResponseFormatJSONSchemaParam{
			JSONSchema: shared.ResponseFormatJSONSchemaJSONSchemaParam{Name: "city_answer", Schema: schema, Strict: openai.Bool(true)},
		}}
		if _, err := c.Chat.Completions.New(withTimeout(t), params); err != nil {
			t.Fatal(err)
		}
		up := upstreamRequest(t, fake, "schema-nonce")
		text, _ := up.JSON["text"].(map[string]any)
		format, _ := text["format"].(map[string]any)
		got, _ := json.Marshal(format["schema"])
		want, _ := json.Marshal(schema)
		if format["type"] != "json_schema" || format["name"] != "city_answer" || format["strict"] != true || !bytes.Equal(got, want) {
			t.Fatalf("upstream text.format: %v", text)
		}
	})

	t.Run("usage limit is a 429 with Retry-After", func(t *testing.T) {
		t.Parallel()
		_, err := c.Chat.Completions.New(withTimeout(t), chatParams("limit "+codextest.Marker(codextest.ScenarioUsageLimit)))
		apiErr := asAPIError(t, err, http.StatusTooManyRequests)
		if apiErr.Code != "usage_limit_reached" {
			t.Errorf("code %q: %s", apiErr.Code, apiErr.RawJSON())
		}
		// The limit that was hit, which the backend names only in
		// x-codex-active-limit, is in the message.
		if !strings.Contains(apiErr.Message, "limit: premium") {
			t.Errorf("message %q does not name the active limit", apiErr.Message)
		}
		// The fake says the window resets in 13872 s.
		ra, err := strconv.Atoi(apiErr.Response.Header.Get("Retry-After"))
		if err != nil || ra < 13800 || ra > 13900 {
			t.Errorf("Retry-After %q, want about 13872", apiErr.Response.Header.Get("Retry-After"))
		}
		// The streaming client gets the same status: nothing was streamed yet.
		_, err = streamText(withTimeout(t), c, "limit "+codextest.Marker(codextest.ScenarioUsageLimit))
		asAPIError(t, err, http.StatusTooManyRequests)
	})

	t.Run("expired access token is refreshed transparently", func(t *testing.T) {
		t.Parallel()
		tok := fake.AddAccount("acc-exp", "exp@example.com", "plus")
		expKey, _ := p.provision(t, "exp@example.com", writeAuthJSON(t, p.dir, "acc-exp", tok))
		ce := p.openaiClient(t, p.httpURL, expKey, nil)
		fake.ExpireAccess("acc-exp")
		for i := range 2 {
			cc, err := streamText(withTimeout(t), ce, fmt.Sprintf("after expiry %d", i))
			if err != nil {
				t.Fatalf("request %d after the access token expired: %v", i, err)
			}
			if !strings.Contains(cc.Choices[0].Message.Content, "after expiry") {
				t.Fatalf("answer: %+v", cc)
			}
		}
		if n := refreshGrants(fake, tok.RefreshToken); n != 1 {
			t.Fatalf("the imported refresh token was used %d times, want 1", n)
		}
	})

	t.Run("reused refresh token is a 401 asking to re-link", func(t *testing.T) {
		t.Parallel()
		tok := fake.AddAccount("acc-reuse", "reuse@example.com", "plus")
		reuseKey, _ := p.provision(t, "reuse@example.com", writeAuthJSON(t, p.dir, "acc-reuse", tok))
		cr := p.openaiClient(t, p.httpURL, reuseKey, nil)
		// The user's own Codex CLI refreshes the same login first (the
		// issuer rotates refresh tokens), then the proxy's token expires.
		laptopRefresh(t, fake, tok.RefreshToken)
		fake.ExpireAccess("acc-reuse")
		for i := range 2 {
			_, err := c.Chat.Completions.New(withTimeout(t), chatParams("x")) // other users are unaffected
			if err != nil {
				t.Fatalf("ada: %v", err)
			}
			_, err = cr.Chat.Completions.New(withTimeout(t), chatParams(fmt.Sprintf("reuse %d", i)))
			var apiErr *openai.Error
			if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusUnauthorized {
				t.Fatalf("request %d with a dead login: want 401 asking to re-link, got %v: %s", i, err, rawErr(apiErr))
			}
			if !strings.Contains(strings.ToLower(apiErr.Message), "re-link") {
				t.Fatalf("request %d: the 401 does not tell the user to re-link: %s", i, apiErr.RawJSON())
			}
		}
		// The operator sees it, and importing a fresh login fixes it with
		// the same key.
		out, _ := p.cli(t, "users", "list", "--json")
		if !strings.Contains(out, `"relink_needed": true`) {
			t.Errorf("users list does not show the relink: %s", out)
		}
		p.provision(t, "reuse@example.com", writeAuthJSON(t, p.dir, "acc-reuse", fake.AddAccount("acc-reuse", "reuse@example.com", "plus")))
		if _, err := cr.Chat.Completions.New(withTimeout(t), chatParams("relinked")); err != nil {
			t.Fatalf("after re-importing the login: %v", err)
		}
	})

	t.Run("user without a ChatGPT login is told to link one", func(t *testing.T) {
		t.Parallel()
		// provision without --auth-file: the key exists, the login does not.
		nolinkKey, stderr := p.provision(t, "nolink@example.com", "")
		if !strings.Contains(stderr, "no ChatGPT login yet") {
			t.Errorf("provision did not warn about the missing login: %s", stderr)
		}
		cn := p.openaiClient(t, p.httpURL, nolinkKey, nil)
		_, err := cn.Chat.Completions.New(withTimeout(t), chatParams("hi"))
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusForbidden || apiErr.Code != "chatgpt_not_linked" {
			t.Fatalf("want 403 chatgpt_not_linked (caddymodule/errors.go), got %v: %s", err, rawErr(apiErr))
		}
	})

	t.Run("unreachable upstream is a 502 JSON error", func(t *testing.T) {
		t.Parallel()
		resp := postJSON(t, p.sites["down"]+"/v1/chat/completions", key, `{"model":"gpt-5.5","messages":[{"role":"user","content":"hi"}]}`)
		var body struct {
			Error struct {
				Message, Type string
				Code          string `json:"code"`
			} `json:"error"`
		}
		if resp.status != http.StatusBadGateway || !strings.HasPrefix(resp.header.Get("Content-Type"), "application/json") ||
			json.Unmarshal(resp.body, &body) != nil || body.Error.Message == "" || body.Error.Type == "" {
			t.Fatalf("got %d %s: %s", resp.status, resp.header.Get("Content-Type"), resp.body)
		}
		// openai-go surfaces it as an API error, not a decoding failure.
		cd := p.openaiClient(t, p.sites["down"], key, nil)
		_, err := streamText(withTimeout(t), cd, "hi")
		asAPIError(t, err, http.StatusBadGateway)
	})

	t.Run("client disconnect cancels the upstream request", func(t *testing.T) {
		t.Parallel()
		watch := tap.watch("disconnect-nonce")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, p.httpURL+"/v1/chat/completions",
				strings.NewReader(`{"model":"gpt-5.5","stream":true,"messages":[{"role":"user","content":"disconnect-nonce `+codextest.Marker(codextest.ScenarioSlow)+`"}]}`))
			req.Header.Set("Authorization", "Bearer "+key)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			done <- err
		}()
		select {
		case <-watch.started:
		case <-time.After(10 * time.Second):
			t.Fatal("the request never reached the upstream")
		}
		time.Sleep(300 * time.Millisecond) // mid-stream: the slow scenario sends an event a second
		cancelled := time.Now()
		cancel()
		select {
		case ended := <-watch.ended:
			if !ended.cancelled {
				t.Fatal("the upstream stream ran to its end after the client left")
			}
			if d := ended.at.Sub(cancelled); d > 3*time.Second {
				t.Fatalf("the upstream request was cancelled %s after the client left", d)
			}
		case <-time.After(8 * time.Second):
			t.Fatal("the upstream request was still open 8 s after the client left")
		}
		<-done
	})
}

// userContent returns the content parts of the user messages of an
// upstream request.
func userContent(req map[string]any) []map[string]any {
	var out []map[string]any
	input, _ := req["input"].([]any)
	for _, it := range input {
		m, _ := it.(map[string]any)
		if m["role"] != "user" {
			continue
		}
		parts, _ := m["content"].([]any)
		for _, p := range parts {
			if pm, ok := p.(map[string]any); ok {
				out = append(out, pm)
			}
		}
	}
	return out
}

// asAPIError checks that err is an OpenAI API error with status.
func asAPIError(t *testing.T, err error, status int) *openai.Error {
	t.Helper()
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) {
		t.Fatalf("want an API error with status %d, got %v", status, err)
	}
	if apiErr.StatusCode != status {
		t.Fatalf("want status %d, got %d: %s", status, apiErr.StatusCode, apiErr.RawJSON())
	}
	return apiErr
}

// rawErr is the error object of an API error, for messages.
func rawErr(e *openai.Error) string {
	if e == nil {
		return ""
	}
	return e.RawJSON()
}

// refreshGrants counts the refresh_token grants the fake got for rt.
func refreshGrants(fake *codextest.Server, rt string) int {
	n := 0
	for _, r := range fake.RequestsTo("/oauth/token") {
		// The proxy posts JSON; a form post is read too.
		grant, token := r.Form.Get("grant_type"), r.Form.Get("refresh_token")
		if r.JSON != nil {
			grant, _ = r.JSON["grant_type"].(string)
			token, _ = r.JSON["refresh_token"].(string)
		}
		if grant == "refresh_token" && token == rt {
			n++
		}
	}
	return n
}

// laptopRefresh uses a refresh token the way the user's own Codex CLI
// would, which makes any other copy of it a reused token.
func laptopRefresh(t *testing.T, fake *codextest.Server, rt string) {
	t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "client_id": {codextest.DefaultClientID}, "refresh_token": {rt}}
	resp, err := http.PostForm(fake.IssuerURL+"/oauth/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("refresh at the fake issuer: %d %s", resp.StatusCode, b)
	}
}

type rawResponse struct {
	status int
	header http.Header
	body   []byte
}

// postJSON sends a raw API request.
func postJSON(t *testing.T, u, key, body string) rawResponse {
	t.Helper()
	req, err := http.NewRequestWithContext(withTimeout(t), http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return rawResponse{resp.StatusCode, resp.Header, b}
}

// tap is a reverse proxy between Caddy and the fake that reports when a
// watched upstream request starts and how it ends: run to completion, or
// cancelled because the proxy closed it.
type tap struct {
	URL string

	mu      sync.Mutex
	watches map[string]*tapWatch
}

type tapWatch struct {
	started chan struct{}
	ended   chan tapEnd
}

type tapEnd struct {
	cancelled bool
	at        time.Time
}

func newTap(t *testing.T, fake *codextest.Server) *tap {
	t.Helper()
	target, err := url.Parse(fake.IssuerURL)
	if err != nil {
		t.Fatal(err)
	}
	tp := &tap{watches: map[string]*tapWatch{}}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.FlushInterval = -1
	rp.ErrorLog = log.New(io.Discard, "", 0)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		w2 := tp.match(body)
		if w2 == nil {
			rp.ServeHTTP(w, r)
			return
		}
		close(w2.started)
		// ReverseProxy panics with http.ErrAbortHandler when a stream is
		// cut, so report from a deferred call.
		defer func() { w2.ended <- tapEnd{cancelled: r.Context().Err() != nil, at: time.Now()} }()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	tp.URL = srv.URL
	return tp
}

// watch reports on the next upstream request whose body contains nonce.
func (tp *tap) watch(nonce string) *tapWatch {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	w := &tapWatch{started: make(chan struct{}), ended: make(chan tapEnd, 1)}
	tp.watches[nonce] = w
	return w
}

func (tp *tap) match(body []byte) *tapWatch {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	for nonce, w := range tp.watches {
		if bytes.Contains(body, []byte(nonce)) {
			delete(tp.watches, nonce)
			return w
		}
	}
	return nil
}
