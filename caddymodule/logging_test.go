package caddymodule

import (
	"errors"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestSlogOfKeepsLevels: what the vault and the dashboard log at ERROR or
// WARN reaches Caddy's log at that level, under the logger's name, with
// its fields and without a stack trace.
func TestSlogOfKeepsLevels(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	l := slogOf(zap.New(core).Named("codex_proxy.vault"))
	l.Error("saving failed", "user_id", "u1", "error", errors.New("disk full"))
	l.Warn("refresh failed", "user_id", "u1")
	l.Info("migrated")
	l.Debug("detail")
	want := []zapcore.Level{zapcore.ErrorLevel, zapcore.WarnLevel, zapcore.InfoLevel, zapcore.DebugLevel}
	got := logs.All()
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d", len(got), len(want))
	}
	for i, e := range got {
		if e.Level != want[i] {
			t.Errorf("%q logged at %v, want %v", e.Message, e.Level, want[i])
		}
		if e.LoggerName != "codex_proxy.vault" {
			t.Errorf("%q logged under %q", e.Message, e.LoggerName)
		}
		if e.Stack != "" {
			t.Errorf("%q carries a stack trace", e.Message)
		}
	}
	if m := got[0].ContextMap(); m["user_id"] != "u1" || m["error"] != "disk full" {
		t.Fatalf("fields %v", m)
	}
}
