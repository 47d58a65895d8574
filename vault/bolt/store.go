package bolt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// Options configures Open. The zero value works.
type Options struct {
	// Timeout is how long Open waits for the file lock that another
	// process may hold (default vault.DefaultOpenTimeout); then it fails
	// with an error matching vault.ErrLocked.
	Timeout time.Duration
	// Logger receives operational messages (a migration ran, the file mode
	// was tightened); default: discard.
	Logger *slog.Logger
}

// Store is the single-file vault.Store: one bbolt database, opened by one
// process at a time. Records are JSON in the buckets of schema.go.
type Store struct {
	db    *bbolt.DB
	log   *slog.Logger
	locks userLocks

	commits atomic.Uint64 // committed write transactions
}

// Open opens or creates the bbolt file at path (mode 0600) and migrates
// it to the current schema. bbolt locks the file: only one store per file
// may be open at a time, in any process.
func Open(path string, o Options) (*Store, error) {
	if o.Timeout <= 0 {
		o.Timeout = vault.DefaultOpenTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout: o.Timeout,
		// Request logs free pages on every commit; not writing the freelist
		// each time roughly doubles log throughput. Open rebuilds it.
		NoFreelistSync: true,
		FreelistType:   bbolt.FreelistMapType,
	})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("vault: %s is locked: another process (a running Caddy?) or another Open in this process holds it: %w", path, lockedError{err})
		}
		return nil, fmt.Errorf("vault: open %s: %w", path, err)
	}
	s := &Store{db: db, log: o.Logger}
	if err := s.tightenMode(path); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.migrate(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// lockedError is bbolt's lock timeout that also matches ErrLocked, with
// bbolt's own message, so callers need not import bbolt to recognize it.
type lockedError struct{ err error }

func (e lockedError) Error() string   { return e.err.Error() }
func (e lockedError) Unwrap() []error { return []error{vault.ErrLocked, e.err} }

// tightenMode makes an existing file private: it holds refresh tokens.
func (s *Store) tightenMode(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("vault: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(path, 0o600); err != nil {
			return fmt.Errorf("vault: make %s private: %w", path, err)
		}
		s.log.Warn("vault file was readable by others; mode set to 0600", "path", path)
	}
	return nil
}

// DB is the bbolt database, for tests and tools that inspect the file.
// Writing through it bypasses the schema's invariants.
func (s *Store) DB() *bbolt.DB { return s.db }

// Commits counts the write transactions committed since Open: a test or
// benchmark reads it to count disk writes.
func (s *Store) Commits() uint64 { return s.commits.Load() }

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

// Changes is nil: nobody else writes the file while it is open.
func (s *Store) Changes() <-chan vault.Change { return nil }

// LockRefresh takes an in-process lock: bbolt's file lock already keeps
// every other process out.
func (s *Store) LockRefresh(ctx context.Context, userID, accountID string) (func(), error) {
	return s.locks.lock(ctx, string(accountKey(userID, accountID)))
}

// update runs fn in a write transaction and counts the commit.
func (s *Store) update(fn func(tx *bbolt.Tx) error) error {
	err := s.db.Update(fn)
	if err == nil {
		s.commits.Add(1)
	}
	return mapClosed(err)
}

// batch is update for writes that arrive concurrently and each stand
// alone, such as stored responses: bbolt runs several in one transaction,
// so they share a commit and its fsync instead of queueing one fsync each
// behind the file's single writer. fn may run more than once (a batch with
// a failing member is retried), so it must set everything it reports
// afresh on each run.
func (s *Store) batch(fn func(tx *bbolt.Tx) error) error {
	err := s.db.Batch(fn)
	if err == nil {
		s.commits.Add(1)
	}
	return mapClosed(err)
}

// view runs fn in a read transaction.
func (s *Store) view(fn func(tx *bbolt.Tx) error) error {
	return mapClosed(s.db.View(fn))
}

// mapClosed turns bbolt's closed-database error into ErrClosed.
func mapClosed(err error) error {
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return vault.ErrClosed
	}
	return err
}

// userLocks is a keyed mutex whose waits end with a context. The zero
// value is ready to use.
type userLocks struct {
	mu sync.Mutex
	m  map[string]*userLock
}

// userLock is one key's lock and how many hold or wait for it.
type userLock struct {
	ch   chan struct{} // holds a token while locked
	refs int
}

// lock waits for key's lock or for ctx to end.
func (l *userLocks) lock(ctx context.Context, key string) (func(), error) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*userLock{}
	}
	ul := l.m[key]
	if ul == nil {
		ul = &userLock{ch: make(chan struct{}, 1)}
		l.m[key] = ul
	}
	ul.refs++
	l.mu.Unlock()
	release := func() {
		l.mu.Lock()
		if ul.refs--; ul.refs == 0 {
			delete(l.m, key)
		}
		l.mu.Unlock()
	}
	select {
	case ul.ch <- struct{}{}:
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			<-ul.ch
			release()
		})
	}, nil
}

// Interface guards
var (
	_ vault.Store    = (*Store)(nil)
	_ vault.Exporter = (*Store)(nil)
	_ vault.Importer = (*Store)(nil)
	_ vault.Backuper = (*Store)(nil)
)
