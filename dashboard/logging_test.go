package dashboard

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"testing"
)

// failingMailer refuses every message, like an SMTP relay that denies us.
type failingMailer struct{}

func (failingMailer) Send(context.Context, Message) error {
	return errors.New("smtp: 554 relay access denied")
}

// TestFailuresLoggedAtError: a sign-in link that could not be mailed is an
// ERROR (the user is locked out until someone looks), while routine events
// stay at INFO.
func TestFailuresLoggedAtError(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Mailer = failingMailer{} })
	b := e.browser()
	b.get("/login")
	b.post("/login", url.Values{"email": {"ada@example.com"}})
	waitFor(t, func() bool {
		_, ok := e.logs.levelOf("sending the sign-in link failed")
		return ok
	})
	if lvl, _ := e.logs.levelOf("sending the sign-in link failed"); lvl != slog.LevelError {
		t.Fatalf("mail failure logged at %v, want ERROR", lvl)
	}

	e2 := newEnv(t)
	e2.signIn("bob@example.com")
	if lvl, ok := e2.logs.levelOf("dashboard: signed in"); !ok || lvl != slog.LevelInfo {
		t.Fatalf("sign-in logged at %v (found %v), want INFO", lvl, ok)
	}
}
