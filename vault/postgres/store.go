// Package postgres is the PostgreSQL engine of the vault: a vault.Store
// that several proxy instances share, so they serve the same users, keys
// and ChatGPT logins.
//
// It keeps the vault's records in tables prefixed codex_ (so they can live
// beside other tables in one database), migrates them at start under an
// advisory lock, reports other instances' writes through LISTEN/NOTIFY
// (Store.Changes), and serialises token refreshes across instances with
// session-level advisory locks that end with the holder's connection.
//
// Like every Store it never sees a plaintext secret: the Vault seals token
// bundles and hashes keys before they get here. The DSN's password is the
// one secret it holds, and it never appears in an error or a log line.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// Defaults for the zero values in Options.
const (
	DefaultConnectTimeout = 2 * time.Second
	DefaultQueryTimeout   = 5 * time.Second
	DefaultMaxConns       = 10
	DefaultMaxLockConns   = 32
)

// Options configures Open. The zero value works.
type Options struct {
	// ConnectTimeout bounds opening one connection (default 2 s), so an
	// unreachable server fails fast instead of hanging.
	ConnectTimeout time.Duration
	// QueryTimeout bounds each Store call (default 5 s), whatever the
	// caller's context allows.
	QueryTimeout time.Duration
	// MaxConns is the size of the pool for ordinary calls (default 10).
	MaxConns int32
	// MaxLockConns is the size of the separate pool whose connections hold
	// refresh locks (default 32): at most that many users refresh at once.
	MaxLockConns int32
	// Log receives operational messages with key/value pairs (a migration
	// ran, the change listener reconnected); default: discard.
	Logger *slog.Logger
}

// withDefaults fills in o's zero values.
func (o Options) withDefaults() Options {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.QueryTimeout <= 0 {
		o.QueryTimeout = DefaultQueryTimeout
	}
	if o.MaxConns <= 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.MaxLockConns <= 0 {
		o.MaxLockConns = DefaultMaxLockConns
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Store is the PostgreSQL vault.Store. All methods are safe for concurrent
// use.
type Store struct {
	opts Options
	// pool serves ordinary calls; locks holds refresh-lock connections,
	// kept apart so lock holders can never starve the calls they make
	// while holding the lock.
	pool  *pgxpool.Pool
	locks *pgxpool.Pool
	// listenCfg opens the change listener's own connection.
	listenCfg *pgx.ConnConfig
	red       redactor

	closed    atomic.Bool
	closeOnce sync.Once
	stop      chan struct{}
	listener  sync.WaitGroup
	changes   chan vault.Change

	// listenPID is the listener connection's backend, for tests.
	listenPID atomic.Uint32
	// reconnects counts listener reconnects, for tests.
	reconnects atomic.Int64
	// testHookBeforeListen, if set, runs before each (re)connect of the
	// listener.
	testHookBeforeListen atomic.Pointer[func()]
}

var _ vault.Store = (*Store)(nil)

// Open connects to the database dsn names (a libpq URL such as
// postgres://user@host:5432/db?sslmode=verify-full, or key=value pairs),
// migrates the schema and starts listening for other instances' writes.
// Errors never contain the DSN's password.
func Open(ctx context.Context, dsn string, o Options) (*Store, error) {
	o = o.withDefaults()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's message quotes the DSN; its redaction is best effort.
		return nil, fmt.Errorf("vault: the PostgreSQL DSN %s does not parse", redactDSN(dsn))
	}
	red := redactor{secrets: passwords(dsn, cfg.ConnConfig.Password)}
	cc := cfg.ConnConfig
	cc.ConnectTimeout = o.ConnectTimeout
	if cc.RuntimeParams == nil {
		cc.RuntimeParams = map[string]string{}
	}
	if cc.RuntimeParams["application_name"] == "" {
		cc.RuntimeParams["application_name"] = "codex-proxy"
	}
	cfg.MaxConns = o.MaxConns
	cfg.PingTimeout = o.ConnectTimeout

	lockCfg := cfg.Copy()
	lockCfg.MaxConns = o.MaxLockConns
	lockCfg.MinConns = 0
	// A lock wait is a series of short waits, so a cancelled caller is
	// noticed without cancelling a query mid-lock (see lock.go).
	lockCfg.ConnConfig.RuntimeParams["lock_timeout"] = lockPoll.String()
	lockCfg.ConnConfig.RuntimeParams["application_name"] = cc.RuntimeParams["application_name"] + "-lock"

	s := &Store{
		opts:      o,
		listenCfg: cc.Copy(),
		red:       red,
		stop:      make(chan struct{}),
		changes:   make(chan vault.Change, changeBuffer),
	}
	s.listenCfg.RuntimeParams["application_name"] = cc.RuntimeParams["application_name"] + "-listen"
	if s.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, s.fail(ctx, "connect", err)
	}
	if s.locks, err = pgxpool.NewWithConfig(ctx, lockCfg); err != nil {
		s.pool.Close()
		return nil, s.fail(ctx, "connect", err)
	}
	cleanup := func() {
		s.locks.Close()
		s.pool.Close()
	}
	if err := s.migrate(ctx); err != nil {
		cleanup()
		return nil, err
	}
	// Listen before the Vault loads its caches, so no write made after the
	// load can go unreported.
	conn, err := s.listen(ctx)
	if err != nil {
		cleanup()
		return nil, err
	}
	s.listener.Add(1)
	go s.follow(conn)
	return s, nil
}

// Close stops the change listener, closes its channel and the pools.
// Later calls fail with vault.ErrClosed.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.stop)
		s.listener.Wait()
		close(s.changes)
		s.locks.Close()
		s.pool.Close()
	})
	return nil
}

// Changes reports writes of every instance on the database, this one's
// included, and vault.ChangeAll after the listener had to reconnect.
func (s *Store) Changes() <-chan vault.Change { return s.changes }

// call bounds ctx by the query timeout and checks the store is open.
func (s *Store) call(ctx context.Context) (context.Context, context.CancelFunc, error) {
	if s.closed.Load() {
		return nil, nil, vault.ErrClosed
	}
	cctx, cancel := context.WithTimeout(ctx, s.opts.QueryTimeout)
	return cctx, cancel, nil
}

// tx runs fn in a read-committed transaction, bounded by the query
// timeout, and maps its error.
func (s *Store) tx(ctx context.Context, what string, fn func(ctx context.Context, tx pgx.Tx) error) error {
	cctx, cancel, err := s.call(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	return s.fail(ctx, what, pgx.BeginFunc(cctx, s.pool, func(tx pgx.Tx) error { return fn(cctx, tx) }))
}

// exec runs one statement and returns how many rows it touched.
func (s *Store) exec(ctx context.Context, what, sql string, args ...any) (int64, error) {
	cctx, cancel, err := s.call(ctx)
	if err != nil {
		return 0, err
	}
	defer cancel()
	tag, err := s.pool.Exec(cctx, sql, args...)
	if err != nil {
		return 0, s.fail(ctx, what, err)
	}
	return tag.RowsAffected(), nil
}

// queryOne reads the one row sql returns with scan, or fails with
// vault.ErrNotFound.
func queryOne[T any](s *Store, ctx context.Context, what, sql string, args []any, scan func(pgx.Row) (T, error)) (T, error) {
	cctx, cancel, err := s.call(ctx)
	if err != nil {
		var zero T
		return zero, err
	}
	defer cancel()
	v, err := scan(s.pool.QueryRow(cctx, sql, args...))
	return v, s.fail(ctx, what, err)
}

// query collects the rows sql returns with scan.
func query[T any](s *Store, ctx context.Context, what, sql string, args []any, scan func(pgx.Row) (T, error)) ([]T, error) {
	cctx, cancel, err := s.call(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	rows, err := s.pool.Query(cctx, sql, args...)
	if err != nil {
		return nil, s.fail(ctx, what, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) { return scan(r) })
	if err != nil {
		return nil, s.fail(ctx, what, err)
	}
	return out, nil
}

// errNoWrite rolls back a transaction that has nothing to write.
var errNoWrite = errors.New("postgres: nothing to write")
