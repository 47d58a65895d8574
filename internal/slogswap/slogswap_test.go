package slogswap

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestSetRedirectsLogger: a logger made once writes to whichever
// destination was set last, at that destination's level.
func TestSetRedirectsLogger(t *testing.T) {
	var first, second bytes.Buffer
	s := New(slog.NewTextHandler(&first, nil))
	log := slog.New(s)
	log.Info("one")
	s.Set(slog.NewTextHandler(&second, &slog.HandlerOptions{Level: slog.LevelWarn}))
	log.Info("hidden")
	log.Warn("two", "k", "v")
	if got := first.String(); !strings.Contains(got, "msg=one") || strings.Contains(got, "two") {
		t.Errorf("first destination got %q", got)
	}
	if got := second.String(); !strings.Contains(got, "msg=two k=v") || strings.Contains(got, "hidden") {
		t.Errorf("second destination got %q", got)
	}
}
