package vault

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"
	"go.uber.org/zap/exp/zapslog"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// observedLogger is a vault logger that records into a zap observer, the
// way the Caddy module bridges the vault's slog calls to zap.
func observedLogger() (*slog.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.DebugLevel)
	return slog.New(zapslog.NewHandler(core)), logs
}

// TestTokenSaveFailureLoggedAtError: when the rotated refresh token cannot
// be written, the operator sees an ERROR naming the user and the cause, and
// no token appears anywhere in the entry.
func TestTokenSaveFailureLoggedAtError(t *testing.T) {
	logger, logs := observedLogger()
	v, _, u, _, _ := linkedVault(t, -time.Minute, func(o *Options) { o.Logger = logger })
	// The token endpoint has answered; the file goes away before the commit.
	v.testHookAfterRefresh = func() { _ = boltOf(v).DB().Close() }
	_, _, err := v.AccessToken(context.Background(), u.ID, false)
	if err == nil {
		t.Fatal("refresh reported success without saving")
	}
	var found bool
	for _, e := range logs.All() {
		entry := fmt.Sprint(e.Message, e.ContextMap())
		for _, secret := range []string{"rt-0", "rt-1", "eyJ"} {
			if strings.Contains(entry, secret) {
				t.Errorf("log entry carries a token (%q): %s", secret, entry)
			}
		}
		if !strings.Contains(e.Message, "saving the refreshed ChatGPT token failed") {
			continue
		}
		found = true
		if e.Level != zapcore.ErrorLevel {
			t.Errorf("logged at %v, want ERROR", e.Level)
		}
		m := e.ContextMap()
		if m["user_id"] != u.ID {
			t.Errorf("user_id = %v, want %s", m["user_id"], u.ID)
		}
		if s, _ := m["error"].(string); s == "" {
			t.Errorf("no error field: %v", m)
		}
	}
	if !found {
		t.Fatalf("no save-failure entry among %d entries", logs.Len())
	}
}

// TestDroppedRecordsWarnedOncePerMinute: dropped request-log records are
// reported at WARN with their count, at most once a minute however many
// more drop.
func TestDroppedRecordsWarnedOncePerMinute(t *testing.T) {
	logger, logs := observedLogger()
	v, _, clock := newTestVault(t, func(o *Options) {
		o.Logger = logger
		o.LogBuffer, o.LogBatchSize, o.LogFlushInterval = 4, 1, 5*time.Millisecond
	})
	dropSome := func() {
		// Hold the file's writer lock so the queue fills and records drop.
		release, held := make(chan struct{}), make(chan struct{})
		go boltOf(v).DB().Update(func(*bbolt.Tx) error { close(held); <-release; return nil })
		<-held
		before := v.DroppedLogs()
		for range 100 {
			v.LogRequest(LogRecord{UserID: "u", Status: 200})
		}
		close(release)
		if v.DroppedLogs() == before {
			t.Fatal("nothing dropped")
		}
	}
	warnings := func() []observer.LoggedEntry {
		return logs.FilterMessageSnippet("request-log records were dropped").AllUntimed()
	}
	waitWarnings := func(n int) []observer.LoggedEntry {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if w := warnings(); len(w) >= n {
				return w
			}
		}
		t.Fatalf("%d drop warnings, want %d", len(warnings()), n)
		return nil
	}

	dropSome()
	w := waitWarnings(1)
	first := v.DroppedLogs()
	if w[0].Level != zapcore.WarnLevel {
		t.Fatalf("logged at %v, want WARN", w[0].Level)
	}
	if got := w[0].ContextMap()["dropped_total"]; got != first {
		t.Fatalf("dropped_total = %v, want %d", got, first)
	}

	// More drops within the minute: counted, not logged yet.
	dropSome()
	time.Sleep(50 * time.Millisecond) // ten flush ticks
	if n := len(warnings()); n != 1 {
		t.Fatalf("%d warnings within a minute, want 1", n)
	}
	clock.Advance(time.Minute)
	w = waitWarnings(2)
	if got, want := w[1].ContextMap()["dropped"], v.DroppedLogs()-first; got != want {
		t.Fatalf("second warning reports %v dropped, want the %d since the first", got, want)
	}
}
