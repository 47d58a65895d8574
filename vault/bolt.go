package vault

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// BoltOptions configures OpenBoltStore. The zero value works.
type BoltOptions struct {
	// Timeout is how long OpenBoltStore waits for the file lock that
	// another process may hold (default DefaultOpenTimeout).
	Timeout time.Duration
	// Log receives operational messages (a migration ran, the file mode was
	// tightened); default: discard.
	Logger *slog.Logger
}

// boltStore is the single-file Store: one bbolt database, opened by one
// process at a time. Records are JSON in the buckets of bolt_schema.go.
type boltStore struct {
	db    *bolt.DB
	log   *slog.Logger
	locks userLocks

	commits atomic.Uint64 // committed write transactions (for tests)
}

// OpenBoltStore opens or creates the bbolt file at path (mode 0600) and
// migrates it to the current schema. bbolt locks the file: only one
// store per file may be open at a time, in any process.
func OpenBoltStore(path string, o BoltOptions) (Store, error) {
	return openBolt(path, o)
}

// openBolt is OpenBoltStore with the concrete type, for Open and tests.
func openBolt(path string, o BoltOptions) (*boltStore, error) {
	if o.Timeout <= 0 {
		o.Timeout = DefaultOpenTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout: o.Timeout,
		// Request logs free pages on every commit; not writing the freelist
		// each time roughly doubles log throughput. Open rebuilds it.
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("vault: %s is locked: another process (a running Caddy?) or another Open in this process holds it: %w (%w)", path, ErrLocked, err)
		}
		return nil, fmt.Errorf("vault: open %s: %w", path, err)
	}
	s := &boltStore{db: db, log: o.Logger}
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

// tightenMode makes an existing file private: it holds refresh tokens.
func (s *boltStore) tightenMode(path string) error {
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

// Close closes the file.
func (s *boltStore) Close() error { return s.db.Close() }

// Changes is nil: nobody else writes the file while it is open.
func (s *boltStore) Changes() <-chan Change { return nil }

// LockRefresh takes an in-process lock: bbolt's file lock already keeps
// every other process out.
func (s *boltStore) LockRefresh(ctx context.Context, userID, accountID string) (func(), error) {
	return s.locks.lock(ctx, string(accountKey(userID, accountID)))
}

// update runs fn in a write transaction and counts the commit.
func (s *boltStore) update(fn func(tx *bolt.Tx) error) error {
	err := s.db.Update(fn)
	if err == nil {
		s.commits.Add(1)
	}
	return mapClosed(err)
}

// view runs fn in a read transaction.
func (s *boltStore) view(fn func(tx *bolt.Tx) error) error {
	return mapClosed(s.db.View(fn))
}

// mapClosed turns bbolt's closed-database error into ErrClosed.
func mapClosed(err error) error {
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
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
