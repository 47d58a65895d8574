package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/codex"
	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
	"github.com/usemysub/caddy-codex-proxy/translate"
)

// upstream opens a real stream from the fake backend playing sc.
func upstream(t testing.TB, sc codextest.Scenario, opts ...codextest.Option) io.ReadCloser {
	t.Helper()
	fake := codextest.New(t, opts...)
	tok := fake.AddAccount("acc-relay", "relay@example.com", "plus")
	c, err := codex.NewClient(codex.Config{Upstream: fake.URL})
	if err != nil {
		t.Fatal(err)
	}
	ts := codex.TokenSourceFunc(func(context.Context, bool) (string, string, error) { return tok.AccessToken, "acc-relay", nil })
	body := fmt.Appendf(nil, `{"model":"gpt-5.5","instructions":"","store":false,"stream":true,"input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"hi %s"}]}]}`,
		codextest.Marker(sc))
	up, err := c.Responses(t.Context(), ts, body, codex.RequestHeaders{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = up.Close() })
	return up
}

func chatStream() Translator {
	return translate.NewChatStream(translate.ChatStreamOptions{Model: "gpt-5.5", IncludeUsage: true})
}

// TestStream: what a streaming client receives for each kind of upstream
// stream, and what the handler is told about it.
func TestStream(t *testing.T) {
	for _, tc := range []struct {
		name       string
		sc         codextest.Scenario
		tr         func() Translator
		status     int
		ctype      string
		body       []string // substrings of the client's body
		readErr    bool
		resultCode string // Outcome.Result.Err.Code, "" for none
	}{
		{name: "chat text", sc: codextest.ScenarioText, tr: chatStream, status: 200, ctype: "text/event-stream",
			body: []string{`"object":"chat.completion.chunk"`, `"usage":{`, "data: [DONE]\n\n"}},
		{name: "responses text", sc: codextest.ScenarioText, tr: func() Translator { return &translate.ResponsesStream{} },
			status: 200, ctype: "text/event-stream", body: []string{"event: response.completed\n"}},
		{name: "failure before output keeps its status", sc: codextest.ScenarioFailed, tr: chatStream,
			status: http.StatusTooManyRequests, ctype: "application/json",
			body: []string{`{"error":{`, `"code":"rate_limit_exceeded"`}, resultCode: "rate_limit_exceeded"},
		{name: "cut mid-stream becomes an error event", sc: codextest.ScenarioCut, tr: chatStream,
			status: 200, ctype: "text/event-stream", body: []string{`"code":"upstream_stream_error"`}, readErr: true,
			resultCode: "upstream_stream_error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			start := time.Now()
			o := Stream(t.Context(), rec, upstream(t, tc.sc), tc.tr(), Options{Start: start, Keepalive: time.Minute})
			if o.Status != tc.status || rec.Code != tc.status {
				t.Fatalf("outcome status %d, response status %d, want %d; body %s", o.Status, rec.Code, tc.status, rec.Body)
			}
			if got := rec.Header().Get("Content-Type"); got != tc.ctype {
				t.Errorf("Content-Type %q, want %q", got, tc.ctype)
			}
			for _, want := range tc.body {
				if !strings.Contains(rec.Body.String(), want) {
					t.Errorf("body lacks %q:\n%s", want, rec.Body)
				}
			}
			if (o.ReadErr != nil) != tc.readErr {
				t.Errorf("ReadErr %v, want one: %v", o.ReadErr, tc.readErr)
			}
			code := ""
			if o.Result.Err != nil {
				code = o.Result.Err.Code
			}
			if code != tc.resultCode {
				t.Errorf("result error code %q, want %q", code, tc.resultCode)
			}
			if tc.status == 200 && (o.TTFB <= 0 || o.TTFB > time.Since(start)) {
				t.Errorf("TTFB %v", o.TTFB)
			}
		})
	}
}

// TestStreamKeepalive: a silent upstream does not leave the client without
// bytes; the comments go out between real events.
func TestStreamKeepalive(t *testing.T) {
	rec := httptest.NewRecorder()
	o := Stream(t.Context(), rec, upstream(t, codextest.ScenarioSlow, codextest.WithSlowDelay(150*time.Millisecond)),
		chatStream(), Options{Start: time.Now(), Keepalive: 40 * time.Millisecond})
	if o.Status != 200 {
		t.Fatalf("status %d: %s", o.Status, rec.Body)
	}
	body := rec.Body.String()
	if !strings.Contains(body, string(translate.Keepalive)) || !strings.HasSuffix(body, "data: [DONE]\n\n") {
		t.Fatalf("no keepalive or no end:\n%s", body)
	}
}

// brokenWriter is a client connection that is gone.
type brokenWriter struct{ *httptest.ResponseRecorder }

func (brokenWriter) Write([]byte) (int, error) { return 0, errors.New("write: broken pipe") }

// TestStreamClientGone: a client that stops reading ends the relay with
// 499, not a hang or a panic.
func TestStreamClientGone(t *testing.T) {
	o := Stream(t.Context(), brokenWriter{httptest.NewRecorder()}, upstream(t, codextest.ScenarioText), chatStream(), Options{Start: time.Now()})
	if o.Status != ClientGone {
		t.Fatalf("status %d, want %d", o.Status, ClientGone)
	}
}

// TestComplete: a non-streaming client gets one JSON body, or the
// upstream's failure with its real status.
func TestComplete(t *testing.T) {
	chat := func(up io.Reader) ([]byte, translate.StreamResult) {
		return translate.AggregateChat(up, translate.ChatStreamOptions{Model: "gpt-5.5"})
	}
	rec := httptest.NewRecorder()
	o := Complete(t.Context(), rec, upstream(t, codextest.ScenarioText), chat, time.Now())
	var got struct {
		Object  string `json:"object"`
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || o.Status != 200 || rec.Code != 200 ||
		got.Object != "chat.completion" || len(got.Choices) != 1 || got.Choices[0].Message.Content == "" {
		t.Fatalf("status %d/%d, body %s (%v)", o.Status, rec.Code, rec.Body, err)
	}
	if o.Result.Usage.OutputTokens == 0 || o.TTFB <= 0 {
		t.Errorf("outcome %+v", o)
	}

	rec = httptest.NewRecorder()
	o = Complete(t.Context(), rec, upstream(t, codextest.ScenarioFailed), chat, time.Now())
	if o.Status != http.StatusTooManyRequests || rec.Code != http.StatusTooManyRequests ||
		!strings.Contains(rec.Body.String(), `"code":"rate_limit_exceeded"`) || o.Result.Err == nil {
		t.Fatalf("status %d/%d, body %s", o.Status, rec.Code, rec.Body)
	}
}
