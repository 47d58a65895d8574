// Package slogswap is a slog.Handler whose destination can be switched
// while loggers built over it are in use: a long-lived component (an open
// vault shared across config reloads) logs through it, and each new config
// points it at its own log.
package slogswap

import (
	"context"
	"log/slog"
	"sync/atomic"
)

// Handler sends each record to the handler set last. Use New; the zero
// value has no destination and panics when used.
type Handler struct {
	cur atomic.Pointer[box]
}

// box holds a slog.Handler for atomic.Pointer.
type box struct{ h slog.Handler }

// New returns a Handler sending records to h.
func New(h slog.Handler) *Handler {
	s := &Handler{}
	s.Set(h)
	return s
}

// Set makes h the destination of every record from now on.
func (s *Handler) Set(h slog.Handler) { s.cur.Store(&box{h}) }

func (s *Handler) current() slog.Handler { return s.cur.Load().h }

// Enabled implements slog.Handler, asking the destination in force.
func (s *Handler) Enabled(ctx context.Context, lvl slog.Level) bool {
	return s.current().Enabled(ctx, lvl)
}

// Handle implements slog.Handler, writing to the destination in force.
func (s *Handler) Handle(ctx context.Context, r slog.Record) error {
	return s.current().Handle(ctx, r)
}

// WithAttrs implements slog.Handler. The result is bound to the
// destination in force now and does not follow a later Set: log with
// key/value pairs on a logger over s itself to keep following it.
func (s *Handler) WithAttrs(as []slog.Attr) slog.Handler { return s.current().WithAttrs(as) }

// WithGroup implements slog.Handler, like WithAttrs.
func (s *Handler) WithGroup(name string) slog.Handler { return s.current().WithGroup(name) }
