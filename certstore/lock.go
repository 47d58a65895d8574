package certstore

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
)

// Locks are session-level advisory locks, each held on a connection of its
// own opened for it (not one of the pool's, so that held locks can never
// starve the Store and Load calls made under them). PostgreSQL releases
// such a lock when its session ends, so an instance that dies or loses its
// network releases its locks without any timer of ours. The key is
// (hashtext(prefix+":lock"), hashtext(name)): two names whose hashes
// collide merely take turns.
const (
	tryLockSQL = `SELECT pg_try_advisory_lock(hashtext($1), hashtext($2))`
	unlockSQL  = `SELECT pg_advisory_unlock(hashtext($1), hashtext($2))`
	// lockAppName shows lock sessions in pg_stat_activity.
	lockAppName = "certmagic-lock"
	// lockIOTimeout bounds the unlock and health-check round trips.
	lockIOTimeout = 5 * time.Second
)

// heldLock is one acquired lock and its connection.
type heldLock struct {
	name string
	mu   sync.Mutex // serializes the connection (watch vs release)
	conn *pgx.Conn
	done bool          // released or lost; conn is closed
	stop chan struct{} // closed by release to end watch
}

// Lock blocks until it holds the lock name, polling every
// LockPollInterval, or until ctx ends.
func (s *Storage) Lock(ctx context.Context, name string) error {
	ok, err := s.acquire(ctx, name, true)
	if err == nil && !ok {
		err = fmt.Errorf("certstore: lock %q not obtained", name)
	}
	return err
}

// TryLock takes the lock name if it is free and reports whether it did.
func (s *Storage) TryLock(ctx context.Context, name string) (bool, error) {
	return s.acquire(ctx, name, false)
}

func (s *Storage) acquire(ctx context.Context, name string, wait bool) (bool, error) {
	if err := s.checkOpen(ctx); err != nil {
		return false, err
	}
	cc := s.poolCfg.ConnConfig.Copy()
	if cc.RuntimeParams["application_name"] == "" {
		cc.RuntimeParams["application_name"] = lockAppName
	}
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return false, fmt.Errorf("certstore: lock %q: connecting to %s: %w", name, s.where, scrub(err, s.secrets))
	}
	closeConn := func() {
		cctx, cancel := context.WithTimeout(context.Background(), lockIOTimeout)
		defer cancel()
		_ = conn.Close(cctx)
	}
	for {
		var got bool
		if err := conn.QueryRow(ctx, tryLockSQL, s.lockSpace, name).Scan(&got); err != nil {
			closeConn()
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			return false, fmt.Errorf("certstore: lock %q: %w", name, err)
		}
		if got {
			break
		}
		if !wait {
			closeConn()
			return false, nil
		}
		t := time.NewTimer(s.cfg.LockPollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			closeConn()
			return false, ctx.Err()
		case <-t.C:
		}
	}

	l := &heldLock{name: name, conn: conn, stop: make(chan struct{})}
	s.locksMu.Lock()
	old := s.locks[name]
	s.locks[name] = l
	s.locksMu.Unlock()
	if old != nil {
		// Only possible when old's session died unnoticed (PostgreSQL let
		// us take the lock): it is lost, not held.
		old.lose(s.cfg.Logger, "taken again by this instance after its session ended", nil)
	}
	go s.watch(l)
	return true, nil
}

// checkOpen fails after Close.
func (s *Storage) checkOpen(ctx context.Context) error {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	closed := s.closed
	<-s.sem
	if closed {
		return ErrClosed
	}
	return nil
}

// watch checks a held lock's connection every LockCheckInterval: when the
// session is gone, PostgreSQL has released the lock and another instance
// may hold it now, which the holder must hear about.
func (s *Storage) watch(l *heldLock) {
	t := time.NewTicker(s.cfg.LockCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		l.mu.Lock()
		if l.done {
			l.mu.Unlock()
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), lockIOTimeout)
		err := l.conn.Ping(ctx)
		cancel()
		l.mu.Unlock()
		if err != nil {
			l.lose(s.cfg.Logger, "its PostgreSQL session ended; another instance may hold it now", err)
			s.locksMu.Lock()
			if s.locks[l.name] == l {
				delete(s.locks, l.name)
			}
			s.locksMu.Unlock()
			return
		}
	}
}

// lose marks l lost, logs it at WARN and closes its connection.
func (l *heldLock) lose(log *zap.Logger, why string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return
	}
	l.done = true
	close(l.stop)
	log.Warn("certificate storage lock lost", zap.String("lock", l.name), zap.String("why", why), zap.Error(err))
	ctx, cancel := context.WithTimeout(context.Background(), lockIOTimeout)
	defer cancel()
	_ = l.conn.Close(ctx)
}

// release unlocks and closes l's connection; closing alone would release
// the lock, the explicit unlock makes it immediate.
func (l *heldLock) release(ctx context.Context, space string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return nil
	}
	l.done = true
	close(l.stop)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lockIOTimeout)
	defer cancel()
	var released bool
	err := l.conn.QueryRow(ctx, unlockSQL, space, l.name).Scan(&released)
	cerr := l.conn.Close(ctx)
	if err != nil && cerr != nil {
		return fmt.Errorf("certstore: unlock %q: %w (closing its connection: %v)", l.name, err, cerr)
	}
	return nil
}

// Unlock releases the lock name taken by Lock or TryLock. A lock already
// lost (its session ended, reported at WARN) needs no release.
func (s *Storage) Unlock(ctx context.Context, name string) error {
	s.locksMu.Lock()
	l := s.locks[name]
	delete(s.locks, name)
	s.locksMu.Unlock()
	if l == nil {
		s.cfg.Logger.Debug("unlock of a lock not held (lost or never taken)", zap.String("lock", name))
		return nil
	}
	return l.release(ctx, s.lockSpace)
}
