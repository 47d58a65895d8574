package postgres

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// notifyChannel is the NOTIFY channel every write that changes what a
// Vault caches announces itself on, as "<kind>:<user id>:<key id>".
const notifyChannel = "codex_vault"

// Payload kinds.
const (
	changeUser   = "user"
	changeKey    = "key"
	changeTokens = "tokens"
	// changeKeyUsage's key id part is a comma-separated list.
	changeKeyUsage = "usage"
)

// Listener tuning.
const (
	// changeBuffer is how many changes may wait for the Vault.
	changeBuffer = 1024
	// listenIdle is how long the listener waits for a notification before
	// it pings, so a silently dead connection is noticed.
	listenIdle = 30 * time.Second
	// Reconnect back-off bounds.
	reconnectMin = 100 * time.Millisecond
	reconnectMax = 5 * time.Second
)

// notify announces a change inside tx: PostgreSQL delivers it when, and
// only if, tx commits.
func notify(ctx context.Context, tx pgx.Tx, kind, userID, keyID string) error {
	_, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, notifyChannel, kind+":"+userID+":"+keyID)
	return err
}

// parseChange reads a payload. The kind ends at the first colon and the
// key id starts after the last, so a colon in a user id does no harm.
func parseChange(payload string) (vault.Change, bool) {
	kind, rest, ok := strings.Cut(payload, ":")
	i := strings.LastIndexByte(rest, ':')
	if !ok || i < 0 {
		return vault.Change{}, false
	}
	c := vault.Change{UserID: rest[:i], KeyID: rest[i+1:]}
	switch kind {
	case changeUser:
		c.Kind = vault.ChangeUser
	case changeKey:
		c.Kind = vault.ChangeKey
	case changeTokens:
		c.Kind = vault.ChangeTokens
	case changeKeyUsage:
		c.Kind, c.KeyID, c.KeyIDs = vault.ChangeKeyUsage, "", strings.Split(c.KeyID, ",")
	default:
		return vault.Change{}, false
	}
	return c, true
}

// listen opens the listener's own connection (not a pooled one: it is
// held for the store's lifetime) and subscribes.
func (s *Store) listen(ctx context.Context) (*pgx.Conn, error) {
	if hook := s.testHookBeforeListen.Load(); hook != nil {
		(*hook)()
	}
	cctx, cancel := context.WithTimeout(ctx, s.opts.ConnectTimeout+s.opts.QueryTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, s.listenCfg)
	if err != nil {
		return nil, s.fail(ctx, "connect the change listener", err)
	}
	if _, err := conn.Exec(cctx, `LISTEN `+notifyChannel); err != nil {
		conn.Close(context.Background())
		return nil, s.fail(ctx, "listen for changes", err)
	}
	s.listenPID.Store(conn.PgConn().PID())
	return conn, nil
}

// follow forwards notifications to the changes channel until Close,
// reconnecting with back-off when the connection breaks. After a
// reconnect it sends vault.ChangeAll: notifications sent while it was
// away are lost.
func (s *Store) follow(conn *pgx.Conn) {
	defer s.listener.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		err := s.forward(ctx, conn)
		conn.Close(context.Background())
		if ctx.Err() != nil {
			return
		}
		s.opts.Logger.Warn("vault: lost the PostgreSQL change listener; reconnecting", "error", err)
		if conn = s.reconnect(ctx); conn == nil {
			return
		}
		s.reconnects.Add(1)
		s.opts.Logger.Info("vault: PostgreSQL change listener reconnected; reloading caches")
		if !s.send(vault.Change{Kind: vault.ChangeAll}) {
			conn.Close(context.Background())
			return
		}
	}
}

// forward relays notifications from conn until it fails or ctx ends.
func (s *Store) forward(ctx context.Context, conn *pgx.Conn) error {
	for {
		wctx, cancel := context.WithTimeout(ctx, listenIdle)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !pgconn.Timeout(err) && !errors.Is(err, context.DeadlineExceeded) {
				return s.red.wrap(nil, "wait for changes", err)
			}
			// Quiet for a while: make sure the connection still works.
			pctx, cancel := context.WithTimeout(ctx, s.opts.QueryTimeout)
			err = conn.Ping(pctx)
			cancel()
			if err != nil {
				return s.red.wrap(nil, "ping the change listener", err)
			}
			continue
		}
		if n.Channel != notifyChannel {
			continue
		}
		c, ok := parseChange(n.Payload)
		if !ok {
			s.opts.Logger.Warn("vault: ignoring a malformed change notification", "payload_len", len(n.Payload))
			continue
		}
		if !s.send(c) {
			return context.Canceled
		}
	}
}

// send hands c to the Vault, or gives up when the store closes.
func (s *Store) send(c vault.Change) bool {
	select {
	case s.changes <- c:
		return true
	case <-s.stop:
		return false
	}
}

// reconnect retries listen with exponential back-off until it works or
// ctx ends (nil then).
func (s *Store) reconnect(ctx context.Context) *pgx.Conn {
	wait := reconnectMin
	for {
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil
		}
		conn, err := s.listen(ctx)
		if err == nil {
			return conn
		}
		if ctx.Err() != nil {
			return nil
		}
		s.opts.Logger.Warn("vault: reconnecting the PostgreSQL change listener failed", "error", err, "retry_in", wait.String())
		wait = min(2*wait, reconnectMax)
	}
}
