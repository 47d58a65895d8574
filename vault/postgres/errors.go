package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// Constraint names the error mapping recognises (schema.go creates them).
const (
	constraintEmail = "codex_users_email_key"
)

// SQLSTATE codes the store handles.
const (
	codeUniqueViolation      = "23505"
	codeForeignKeyViolation  = "23503"
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
	codeLockNotAvailable     = "55P03"
	codeQueryCanceled        = "57014"
)

// fail maps err from a call made for ctx to what the vault.Store contract
// promises: vault sentinels for missing rows and uniqueness, the caller's
// context error when it ended, vault.ErrUnavailable when the server could
// not be reached, and never a message that holds the DSN's password.
func (s *Store) fail(ctx context.Context, what string, err error) error {
	if err == nil {
		return nil
	}
	for _, sentinel := range []error{vault.ErrNotFound, vault.ErrEmailTaken, vault.ErrDuplicate, vault.ErrClosed, vault.ErrSchemaTooNew, vault.ErrUnavailable, errNoWrite} {
		if errors.Is(err, sentinel) {
			return err
		}
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return vault.ErrNotFound
	}
	if s.closed.Load() {
		return vault.ErrClosed
	}
	var pe *pgconn.PgError
	isPg := errors.As(err, &pe)
	switch {
	case isPg && pe.Code == codeUniqueViolation && pe.ConstraintName == constraintEmail:
		return vault.ErrEmailTaken
	case isPg && pe.Code == codeUniqueViolation:
		return vault.ErrDuplicate
	case isPg && pe.Code == codeForeignKeyViolation:
		return vault.ErrNotFound
	case ctx.Err() != nil:
		// The caller gave up; say so with its own error.
		return s.red.wrap(ctx.Err(), what, err)
	case isPg && (serverGone(pe.Code) || pe.Code == codeQueryCanceled):
		// Cancelled while the caller still waits: our query timeout.
		return s.red.wrap(vault.ErrUnavailable, what, err)
	case isPg:
		return s.red.wrap(nil, what, err)
	}
	if unreachable(err) {
		return s.red.wrap(vault.ErrUnavailable, what, err)
	}
	return s.red.wrap(nil, what, err)
}

// serverGone reports SQLSTATEs that mean the server or the connection is
// going away or refusing work, not that the statement was wrong.
func serverGone(code string) bool {
	switch {
	case strings.HasPrefix(code, "08"): // connection exception
		return true
	case strings.HasPrefix(code, "53"): // insufficient resources (too many connections, disk full)
		return true
	case code == "57P01", code == "57P02", code == "57P03": // admin/crash shutdown, cannot connect now
		return true
	}
	return false
}

// unreachable reports transport failures: the connection could not be
// made, broke, or a bounded call ran out of time.
func unreachable(err error) bool {
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) || pgconn.SafeToRetry(err)
}

// retryable reports a transaction to run again: it lost a serialisation
// race or a deadlock.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == codeSerializationFailure || pe.Code == codeDeadlockDetected)
}

// redactor cuts the DSN's password out of error messages.
type redactor struct {
	secrets []string
}

// minSecretLen is the shortest password cut out of messages: replacing
// every "a" would make them unreadable, and such a password is no secret.
const minSecretLen = 4

// passwords lists what must never appear in a message: the password the
// configuration resolved (from the DSN, PGPASSWORD or a pgpass file) and
// any spelled in the DSN, raw and decoded.
func passwords(dsn string, resolved string) []string {
	var out []string
	add := func(p string) {
		if len(p) >= minSecretLen {
			out = append(out, p)
		}
	}
	add(resolved)
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok {
			add(p)
			add(url.QueryEscape(p))
			add(url.PathEscape(p))
		}
	}
	return out
}

// wrap returns err as an error whose message has no secret, wrapping kind
// (if any) and err so errors.Is and errors.As still see both.
func (r redactor) wrap(kind error, what string, err error) error {
	msg := err.Error()
	for _, p := range r.secrets {
		msg = strings.ReplaceAll(msg, p, "xxxxx")
	}
	if kind != nil {
		return &storeError{msg: fmt.Sprintf("%v: postgres %s: %s", kind, what, msg), errs: []error{kind, err}}
	}
	return &storeError{msg: fmt.Sprintf("vault: postgres %s: %s", what, msg), errs: []error{err}}
}

// storeError is a redacted message over the errors it wraps.
type storeError struct {
	msg  string
	errs []error
}

func (e *storeError) Error() string   { return e.msg }
func (e *storeError) Unwrap() []error { return e.errs }

// redactDSN describes a DSN for messages: a URL without its passwords, or
// nothing of a keyword/value string (whose quoting is too loose to redact
// reliably).
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "(not shown: not a postgres:// URL)"
	}
	q := u.Query()
	for k := range q {
		if strings.Contains(strings.ToLower(k), "password") {
			q.Set(k, "xxxxx")
		}
	}
	u.RawQuery = q.Encode()
	return u.Redacted()
}

// RedactDSN returns dsn fit for a log line or an error: a URL with its
// passwords masked, or a placeholder for a keyword/value string.
func RedactDSN(dsn string) string { return redactDSN(dsn) }
