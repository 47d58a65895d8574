package postgres

import (
	"context"
	"errors"
	"hash/fnv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// lockPoll is the lock pool's lock_timeout: a refresh lock is waited for
// in slices this long, and the caller's context is checked between them.
// Cancelling the wait mid-statement instead could leave the lock granted
// just as the cancel lands, on a connection we then think is free.
const lockPoll = 100 * time.Millisecond

// refreshKey is the second advisory-lock key of an account's refresh
// lock. Two accounts sharing a hash merely refresh one after the other.
func refreshKey(userID, accountID string) int32 {
	h := fnv.New32a()
	h.Write([]byte(userID))
	h.Write([]byte{0})
	h.Write([]byte(accountID))
	return int32(h.Sum32())
}

// LockRefresh takes the account's refresh lock: a session-level advisory
// lock on a connection of its own, held until unlock. The lock lives as
// long as that connection: if this process dies, or its connection does,
// PostgreSQL releases it and another instance takes over.
func (s *Store) LockRefresh(ctx context.Context, userID, accountID string) (func(), error) {
	if s.closed.Load() {
		return nil, vault.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	key := refreshKey(userID, accountID)
	actx, cancel := context.WithTimeout(ctx, s.opts.ConnectTimeout+s.opts.QueryTimeout)
	conn, err := s.locks.Acquire(actx)
	cancel()
	if err != nil {
		return nil, s.fail(ctx, "take the refresh lock", err)
	}
	for {
		// Not the caller's context: see lockPoll.
		qctx, cancel := context.WithTimeout(context.Background(), lockPoll+s.opts.QueryTimeout)
		_, err := conn.Exec(qctx, `SELECT pg_advisory_lock($1, $2)`, lockClassRefresh, key)
		cancel()
		if err == nil {
			return s.unlocker(conn, key), nil
		}
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != codeLockNotAvailable {
			discard(conn)
			return nil, s.fail(ctx, "take the refresh lock", err)
		}
		// lock_timeout ended this wait; the session holds nothing.
		if err := ctx.Err(); err != nil {
			conn.Release()
			return nil, err
		}
		if s.closed.Load() {
			conn.Release()
			return nil, vault.ErrClosed
		}
	}
}

// unlocker releases the lock held on conn and gives conn back, once.
func (s *Store) unlocker(conn *pgxpool.Conn, key int32) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), s.opts.QueryTimeout)
			defer cancel()
			var released bool
			if err := conn.QueryRow(ctx, `SELECT pg_advisory_unlock($1, $2)`, lockClassRefresh, key).Scan(&released); err != nil || !released {
				// The connection broke (and with it the lock) or is in an
				// unknown state: closing it ends the session and any lock.
				discard(conn)
				return
			}
			conn.Release()
		})
	}
}

// discard closes a pooled connection whose session state is unknown and
// returns it, so the pool drops it.
func discard(conn *pgxpool.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	conn.Conn().Close(ctx)
	conn.Release()
}
