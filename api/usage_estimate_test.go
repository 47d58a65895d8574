package api

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/keypolicy"
	"github.com/usemysub/caddy-codex-proxy/relay"
	"github.com/usemysub/caddy-codex-proxy/translate"
)

// hangUpWriter is a client that goes away once it has seen want in the
// answer (or at once for a non-streamed answer, as a client timeout does).
type hangUpWriter struct {
	*httptest.ResponseRecorder
	want   string
	cancel context.CancelFunc
}

func (w *hangUpWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseRecorder.Write(p)
	if bytes.Contains(w.Body.Bytes(), []byte(w.want)) {
		w.cancel()
	}
	return n, err
}

// prompt is a chat body of about n tokens.
func prompt(n int, stream bool) string {
	s := ""
	if stream {
		s = `"stream":true,`
	}
	return `{"model":"gpt-5.5",` + s + `"messages":[{"role":"user","content":"` + strings.Repeat("word ", n*translate.BytesPerToken/5) + `"}]}`
}

// hangUp sends body and goes away after the first delta (streams) or after
// a moment (non-streamed answers, which send nothing before the end).
func (e *env) hangUp(t *testing.T, path, body string, stream bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := httptest.NewRequest("POST", path, strings.NewReader(body)).WithContext(ctx)
	r.Header.Set("Authorization", "Bearer "+testKey)
	w := &hangUpWriter{ResponseRecorder: httptest.NewRecorder(), want: "Once upon", cancel: cancel}
	if !stream {
		time.AfterFunc(50*time.Millisecond, cancel)
	}
	e.h.ServeHTTP(w, r)
}

// A client that hangs up before the terminal usage event is still charged:
// the prompt as sent upstream and the output relayed so far, marked as
// estimated; a key with a 1,500-token day budget is refused after two
// ~1,000-token prompts (issue 19, item 1).
func TestUsageIsChargedWhenTheClientHangsUp(t *testing.T) {
	for _, tc := range []struct {
		name, path string
		body       func(n int) string
		stream     bool
	}{
		{"chat stream", "/v1/chat/completions", func(n int) string { return prompt(n, true) }, true},
		{"chat non-stream", "/v1/chat/completions", func(n int) string { return prompt(n, false) }, false},
		{"responses stream", "/v1/responses", func(n int) string {
			return `{"model":"gpt-5.5","stream":true,"input":"` + strings.Repeat("word ", n*translate.BytesPerToken/5) + `"}`
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.up.sse, e.up.hang = partialSSE, true
			e.keys.key.Policy = keypolicy.Policy{TokensPerDay: 1500}
			for i := range 2 {
				e.hangUp(t, tc.path, tc.body(1000), tc.stream)
				rec := e.rec.last()
				if rec.Status != relay.ClientGone || !rec.Estimated || rec.InputTokens < 1000 || rec.InputTokens > 1300 {
					t.Fatalf("request %d: %+v", i+1, rec)
				}
				if tc.stream && rec.OutputTokens == 0 {
					t.Fatalf("request %d: the relayed delta is not charged: %+v", i+1, rec)
				}
			}
			if used := e.keys.tracker.Status("key1", e.keys.key.Policy).TokensToday.Used; used < 2000 {
				t.Fatalf("used %d after two ~1,000-token prompts", used)
			}
			res, m := e.do(t, "POST", tc.path, testKey, strings.NewReader(tc.body(10)))
			if res.StatusCode != http.StatusTooManyRequests || errorCode(t, m) != "key_budget_exhausted" {
				t.Fatalf("next request: %d %v", res.StatusCode, m)
			}
			if e.keys.inFlight() != 0 {
				t.Fatalf("a hold was not released")
			}
		})
	}
}

// A completed turn is charged what the upstream reported, not an estimate.
func TestUpstreamUsageIsNotEstimated(t *testing.T) {
	e := newEnv(t)
	e.do(t, "POST", "/v1/chat/completions", testKey, strings.NewReader(prompt(1000, false)))
	if rec := e.rec.last(); rec.Estimated || rec.InputTokens != 12 || rec.OutputTokens != 3 {
		t.Fatalf("%+v", rec)
	}
}

// A refusal before the upstream ran (a usage limit) charges nothing.
func TestNothingChargedWhenTheUpstreamRefused(t *testing.T) {
	e := newEnv(t)
	e.up.errs = map[string]error{"acct-a": usageLimit(time.Minute)}
	e.do(t, "POST", "/v1/chat/completions", testKey, strings.NewReader(prompt(1000, false)))
	if rec := e.rec.last(); rec.Estimated || rec.InputTokens != 0 || rec.Status != 429 {
		t.Fatalf("%+v", rec)
	}
}

// Requests in progress reserve their prompt against the budget: with two
// generations running on a key's last tokens, a third is refused before
// either has finished.
func TestRunningRequestsReserveTheirPrompt(t *testing.T) {
	e := newEnv(t)
	e.up.sse, e.up.hang = partialSSE, true
	e.keys.key.Policy = keypolicy.Policy{TokensPerDay: 1500}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{}, 2)
	for range 2 {
		r := httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(prompt(1000, true))).WithContext(ctx)
		r.Header.Set("Authorization", "Bearer "+testKey)
		go func() { e.h.ServeHTTP(httptest.NewRecorder(), r); done <- struct{}{} }()
	}
	deadline := time.Now().Add(5 * time.Second)
	for e.up.calls() < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	res, m := e.do(t, "POST", "/v1/chat/completions", testKey, strings.NewReader(prompt(10, false)))
	if res.StatusCode != http.StatusTooManyRequests || errorCode(t, m) != "key_budget_exhausted" {
		t.Fatalf("third while two run: %d %v", res.StatusCode, m)
	}
	cancel()
	<-done
	<-done
	_, _ = io.Copy(io.Discard, res.Body)
}
