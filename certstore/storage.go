// Package certstore is a certmagic.Storage on PostgreSQL: ACME accounts,
// certificates, keys, OCSP staples and challenge tokens of every Caddy
// instance of a cluster live in one table, and the locks that keep two
// instances from ordering the same certificate are PostgreSQL advisory
// locks, released by PostgreSQL itself when the holder's connection ends.
//
// It shares a database with the vault: its tables carry their own prefix
// (certmagic_ by default). Nothing connects until the first use.
package certstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
)

// Defaults of Config.
const (
	DefaultTablePrefix       = "certmagic"
	DefaultLockPollInterval  = time.Second
	DefaultLockCheckInterval = 5 * time.Second
)

// ErrClosed is returned by every method after Close.
var ErrClosed = errors.New("certstore: storage is closed")

// ErrConfig marks a configuration New refuses (bad DSN or table prefix).
var ErrConfig = errors.New("certstore: bad configuration")

// Config configures a Storage.
type Config struct {
	// DSN is a libpq connection string or postgres:// URL. Its password
	// never appears in logs or errors.
	DSN string
	// TablePrefix names the tables: <prefix>_data and <prefix>_schema.
	// Lower-case letters, digits and underscores. Default: certmagic.
	TablePrefix string
	// Logger receives lock losses (WARN). Default: no logging.
	Logger *zap.Logger
	// LockPollInterval is how often a waiting Lock tries again.
	LockPollInterval time.Duration
	// LockCheckInterval is how often a held lock's connection is checked,
	// so that a broken one is reported as a lost lock.
	LockCheckInterval time.Duration
}

var prefixRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,40}$`)

// Storage implements certmagic.Storage and certmagic.TryLocker. It is safe
// for concurrent use.
type Storage struct {
	cfg       Config
	poolCfg   *pgxpool.Config
	where     string   // host:port/db, for String and errors
	secrets   []string // scrubbed from error texts
	data      string   // quoted table names
	schema    string
	lockSpace string // first advisory lock key, derived from the prefix

	sem    chan struct{} // guards pool creation, honouring ctx
	pool   *pgxpool.Pool
	closed bool

	locksMu sync.Mutex
	locks   map[string]*heldLock
}

var (
	_ certmagic.Storage   = (*Storage)(nil)
	_ certmagic.TryLocker = (*Storage)(nil)
)

// New checks cfg and returns a Storage. It opens no connection: the first
// method call connects and creates the tables.
func New(cfg Config) (*Storage, error) {
	if cfg.TablePrefix == "" {
		cfg.TablePrefix = DefaultTablePrefix
	}
	if !prefixRE.MatchString(cfg.TablePrefix) {
		return nil, fmt.Errorf("%w: table prefix %q: use lower-case letters, digits and underscores", ErrConfig, cfg.TablePrefix)
	}
	if cfg.LockPollInterval <= 0 {
		cfg.LockPollInterval = DefaultLockPollInterval
	}
	if cfg.LockCheckInterval <= 0 {
		cfg.LockCheckInterval = DefaultLockCheckInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if strings.TrimSpace(cfg.DSN) == "" {
		return nil, fmt.Errorf("%w: empty dsn", ErrConfig)
	}
	secrets := dsnSecrets(cfg.DSN)
	pc, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("%w: the dsn does not parse: %w", ErrConfig, scrub(err, secrets))
	}
	pc.MinConns = 0 // nothing opens before the first use
	s := &Storage{
		cfg:       cfg,
		poolCfg:   pc,
		where:     describe(pc),
		secrets:   secrets,
		data:      pgx.Identifier{cfg.TablePrefix + "_data"}.Sanitize(),
		schema:    pgx.Identifier{cfg.TablePrefix + "_schema"}.Sanitize(),
		lockSpace: cfg.TablePrefix + ":lock",
		sem:       make(chan struct{}, 1),
		locks:     map[string]*heldLock{},
	}
	s.cfg.DSN = "" // the parsed config is all that is kept
	return s, nil
}

// String names the database without credentials (certmagic and Caddy log
// storages with it).
func (s *Storage) String() string {
	return "postgres://" + s.where + " (tables " + s.cfg.TablePrefix + "_*)"
}

// db returns the pool, creating it and the schema on first use. A failed
// attempt is tried again by the next call.
func (s *Storage) db(ctx context.Context) (*pgxpool.Pool, error) {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-s.sem }()
	if s.closed {
		return nil, ErrClosed
	}
	if s.pool != nil {
		return s.pool, nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, s.poolCfg.Copy())
	if err != nil {
		return nil, fmt.Errorf("certstore: connecting to %s: %w", s.where, scrub(err, s.secrets))
	}
	if err := s.migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("certstore: preparing tables in %s: %w", s.where, scrub(err, s.secrets))
	}
	s.pool = pool
	return pool, nil
}

// Close releases every lock this Storage holds and closes its connections.
func (s *Storage) Close() {
	s.sem <- struct{}{}
	s.closed = true
	pool := s.pool
	s.pool = nil
	<-s.sem

	s.locksMu.Lock()
	held := s.locks
	s.locks = map[string]*heldLock{}
	s.locksMu.Unlock()
	for _, l := range held {
		_ = l.release(context.Background(), s.lockSpace)
	}
	if pool != nil {
		pool.Close()
	}
}

// notExist wraps fs.ErrNotExist with the key, as certmagic expects.
func notExist(key string) error {
	return fmt.Errorf("certstore: %q: %w", key, fs.ErrNotExist)
}

// clean drops leading and trailing slashes: keys have none.
func clean(key string) string { return strings.Trim(key, "/") }

// under returns the bounds of the keys strictly below dir: with the "C"
// collation, exactly the keys starting with dir+"/" sort in [dir+"/",
// dir+"0") because '0' follows '/'. For the root, every key: hi is "",
// which belowSQL reads as no upper bound.
func under(dir string) (lo, hi string) {
	if dir == "" {
		return "", ""
	}
	return dir + "/", dir + "0"
}

// belowSQL is the condition "key is below the directory" for the bounds
// from under in parameters $n and $n+1.
func belowSQL(n int) string {
	return fmt.Sprintf("(key >= $%d AND ($%d = '' OR key < $%d))", n, n+1, n+1)
}

// Store puts value at key, replacing any value there.
func (s *Storage) Store(ctx context.Context, key string, value []byte) error {
	db, err := s.db(ctx)
	if err != nil {
		return err
	}
	if value == nil {
		value = []byte{}
	}
	_, err = db.Exec(ctx, `INSERT INTO `+s.data+` (key, value, modified) VALUES ($1, $2, now())
		ON CONFLICT (key) DO UPDATE SET value = excluded.value, modified = excluded.modified`, clean(key), value)
	if err != nil {
		return fmt.Errorf("certstore: store %q: %w", key, err)
	}
	return nil
}

// Load returns the value at key, or an error wrapping fs.ErrNotExist.
func (s *Storage) Load(ctx context.Context, key string) ([]byte, error) {
	db, err := s.db(ctx)
	if err != nil {
		return nil, err
	}
	var value []byte
	err = db.QueryRow(ctx, `SELECT value FROM `+s.data+` WHERE key = $1`, clean(key)).Scan(&value)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notExist(key)
	}
	if err != nil {
		return nil, fmt.Errorf("certstore: load %q: %w", key, err)
	}
	return value, nil
}

// Delete removes key and, when key is a directory, every key below it. A
// missing key is not an error.
func (s *Storage) Delete(ctx context.Context, key string) error {
	db, err := s.db(ctx)
	if err != nil {
		return err
	}
	k := clean(key)
	if k == "" {
		// It would erase every certificate of the cluster at once.
		return errors.New("certstore: refusing to delete the root key")
	}
	lo, hi := under(k)
	_, err = db.Exec(ctx, `DELETE FROM `+s.data+` WHERE key = $1 OR `+belowSQL(2), k, lo, hi)
	if err != nil {
		return fmt.Errorf("certstore: delete %q: %w", key, err)
	}
	return nil
}

// Exists reports whether key is a file or a directory.
func (s *Storage) Exists(ctx context.Context, key string) bool {
	db, err := s.db(ctx)
	if err != nil {
		return false
	}
	k := clean(key)
	lo, hi := under(k)
	var ok bool
	err = db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+s.data+` WHERE key = $1 OR `+belowSQL(2)+`)`, k, lo, hi).Scan(&ok)
	return err == nil && ok
}

// Stat describes key: a file (IsTerminal, with size and modification time)
// or a directory (Modified is its newest key's).
func (s *Storage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	db, err := s.db(ctx)
	if err != nil {
		return certmagic.KeyInfo{}, err
	}
	k := clean(key)
	info := certmagic.KeyInfo{Key: key, IsTerminal: true}
	err = db.QueryRow(ctx, `SELECT octet_length(value), modified FROM `+s.data+` WHERE key = $1`, k).Scan(&info.Size, &info.Modified)
	if err == nil {
		return info, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return certmagic.KeyInfo{}, fmt.Errorf("certstore: stat %q: %w", key, err)
	}
	lo, hi := under(k)
	var newest *time.Time
	err = db.QueryRow(ctx, `SELECT max(modified) FROM `+s.data+` WHERE `+belowSQL(1), lo, hi).Scan(&newest)
	if err != nil {
		return certmagic.KeyInfo{}, fmt.Errorf("certstore: stat %q: %w", key, err)
	}
	if newest == nil {
		return certmagic.KeyInfo{}, notExist(key)
	}
	return certmagic.KeyInfo{Key: key, Modified: *newest, IsTerminal: false}, nil
}

// List returns the keys below dir, as FileStorage does: the direct
// children (files and directories) or, recursive, every file and
// directory below it. A missing dir is fs.ErrNotExist; a file has no
// children.
func (s *Storage) List(ctx context.Context, dir string, recursive bool) ([]string, error) {
	db, err := s.db(ctx)
	if err != nil {
		return nil, err
	}
	d := clean(dir)
	lo, hi := under(d)
	rows, err := db.Query(ctx, `SELECT key FROM `+s.data+` WHERE `+belowSQL(1)+` ORDER BY key`, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("certstore: list %q: %w", dir, err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("certstore: list %q: %w", dir, err)
	}
	if len(keys) == 0 {
		if d == "" || s.Exists(ctx, d) {
			return []string{}, nil
		}
		return nil, notExist(dir)
	}
	var out []string
	seen := map[string]bool{}
	for _, k := range keys {
		rel := k[len(lo):]
		parts := strings.Split(rel, "/")
		if !recursive {
			parts = parts[:1]
		}
		p := d
		for _, part := range parts {
			if p == "" {
				p = part
			} else {
				p += "/" + part
			}
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	return out, nil
}
