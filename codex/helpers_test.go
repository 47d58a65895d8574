package codex

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/apierror"
	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
)

// testTS is a TokenSource backed by the fake issuer: force refreshes
// through OAuth.Refresh like the vault will.
type testTS struct {
	mu      sync.Mutex
	oauth   *OAuth
	access  string
	refresh string
	account string
	calls   int
	forced  int
}

func newTestTS(srv *codextest.Server, tok codextest.Tokens, account string) *testTS {
	return &testTS{oauth: &OAuth{Issuer: srv.IssuerURL}, access: tok.AccessToken, refresh: tok.RefreshToken, account: account}
}

func (s *testTS) AccessToken(ctx context.Context, force bool) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if force {
		s.forced++
		t, err := s.oauth.Refresh(ctx, s.refresh)
		if err != nil {
			return "", "", err
		}
		s.access = t.AccessToken
		if t.RefreshToken != "" {
			s.refresh = t.RefreshToken
		}
	}
	return s.access, s.account, nil
}

// sleepRecorder replaces Client.sleep and records the delays.
type sleepRecorder struct {
	mu     sync.Mutex
	delays []time.Duration
}

func (r *sleepRecorder) sleep(ctx context.Context, d time.Duration) error {
	r.mu.Lock()
	r.delays = append(r.delays, d)
	r.mu.Unlock()
	return ctx.Err()
}

// newTestClient builds a client for the fake with instant retry sleeps.
func newTestClient(t *testing.T, cfg Config) (*Client, *sleepRecorder) {
	t.Helper()
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec := &sleepRecorder{}
	c.sleep = rec.sleep
	return c, rec
}

// setup starts a fake with one account and a client pointed at it.
func setup(t *testing.T, opts ...codextest.Option) (*codextest.Server, *Client, *testTS, *sleepRecorder) {
	t.Helper()
	srv := codextest.New(t, opts...)
	tok := srv.AddAccount("acc-1", "a@example.com", "plus")
	c, rec := newTestClient(t, Config{Upstream: srv.URL})
	return srv, c, newTestTS(srv, tok, "acc-1"), rec
}

// requestBody is a valid Codex request saying text.
func requestBody(text string) []byte {
	b, _ := json.Marshal(map[string]any{
		"model": "gpt-5.5", "instructions": "", "store": false, "stream": true,
		"input": []any{map[string]any{"type": "message", "role": "user",
			"content": []any{map[string]any{"type": "input_text", "text": text}}}},
	})
	return b
}

// asUpstream extracts the *UpstreamError and checks it unwraps to a
// *apierror.Error.
func asUpstream(t *testing.T, err error) *UpstreamError {
	t.Helper()
	var ue *UpstreamError
	if !errors.As(err, &ue) {
		t.Fatalf("error %T %v is not an *UpstreamError", err, err)
	}
	var te *apierror.Error
	if !errors.As(err, &te) || te != ue.Err {
		t.Fatalf("error does not unwrap to its *apierror.Error")
	}
	return ue
}

func readAll(t *testing.T, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read stream: %v", err)
	}
	return string(b)
}

func contains(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
