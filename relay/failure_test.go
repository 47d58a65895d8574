package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/codex"
	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
	"github.com/usemysub/caddy-codex-proxy/translate"
)

// TestReadFailure: broken upstream reads are told apart by sentinel
// errors however deeply they are wrapped, never by their text.
func TestReadFailure(t *testing.T) {
	const (
		idle      = "sent nothing for too long"
		timedOut  = "timed out"
		cancelled = "was cancelled"
		tooLarge  = "larger than the proxy accepts"
		cut       = "closed the connection mid-stream"
		failed    = "connection failed mid-stream"
	)
	// net/http's error when the server drops a keep-alive connection: it
	// says "idle" and has nothing to do with the proxy's idle timeout.
	serverClosedIdle := errors.New("http: server closed idle connection")
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"idle timeout", codex.ErrIdleTimeout, idle},
		{"idle timeout wrapped twice", fmt.Errorf("relay: %w", fmt.Errorf("read body: %w", codex.ErrIdleTimeout)), idle},
		{"server closed idle connection", serverClosedIdle, failed},
		{"server closed idle connection wrapped", fmt.Errorf("read body: %w", serverClosedIdle), failed},
		{"deadline", fmt.Errorf("read: %w", context.DeadlineExceeded), timedOut},
		{"socket deadline", &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, timedOut},
		{"cancelled", fmt.Errorf("read: %w", context.Canceled), cancelled},
		{"event too large", fmt.Errorf("sse: %w", translate.ErrEventTooLarge), tooLarge},
		{"unexpected EOF", fmt.Errorf("chunked body: %w", io.ErrUnexpectedEOF), cut},
		{"connection reset", &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, failed},
		{"text mentions idle and timeout", errors.New("upstream idle timeout deadline exceeded"), failed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := readFailure(tc.err)
			if !strings.Contains(e.Message, tc.want) {
				t.Fatalf("readFailure(%v) = %q, want it to say %q", tc.err, e.Message, tc.want)
			}
			if e.Status != 502 || e.Code != "upstream_stream_error" || e.Type != "server_error" {
				t.Fatalf("readFailure(%v) = %+v", tc.err, e)
			}
		})
	}
}

// TestReadFailureIdleThroughLayers: the idle timeout of a real upstream
// stream, read through the SSE reader as the relay loop reads it, is
// labelled an idle timeout.
func TestReadFailureIdleThroughLayers(t *testing.T) {
	fake := codextest.New(t, codextest.WithSlowDelay(2*time.Second))
	tok := fake.AddAccount("acc-idle", "idle@example.com", "plus")
	c, err := codex.NewClient(codex.Config{Upstream: fake.URL, IdleTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ts := codex.TokenSourceFunc(func(context.Context, bool) (string, string, error) { return tok.AccessToken, "acc-idle", nil })
	body := fmt.Appendf(nil, `{"model":"gpt-5.5","instructions":"","store":false,"stream":true,"input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"hi %s"}]}]}`,
		codextest.Marker(codextest.ScenarioSlow))
	up, err := c.Responses(t.Context(), ts, body, codex.RequestHeaders{})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	rd := translate.NewReader(up)
	for {
		_, err := rd.Next()
		if err == nil {
			continue
		}
		if e := readFailure(err); !strings.Contains(e.Message, "sent nothing for too long") {
			t.Fatalf("idle timeout read as %v, labelled %q", err, e.Message)
		}
		return
	}
}
