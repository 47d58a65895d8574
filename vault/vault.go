package vault

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Vault is the proxy's store. All methods are safe for concurrent use.
type Vault struct {
	db      *bolt.DB
	opts    Options
	keyring *keyring
	pepper  []byte

	// mu guards the in-memory users and API-key indexes below; writers hold
	// it across the bbolt commit so memory and disk change together.
	mu         sync.RWMutex
	users      map[string]User   // id → user
	emails     map[string]string // normalised email → id
	keysByHash map[[32]byte]*keyEntry
	keysByID   map[string]*keyEntry // active keys only
	keysDirty  atomic.Bool          // some keyEntry has an unwritten last-used
	macs       sync.Pool            // keyed HMAC states for keyHash
	// repeppered and retention hold what SetPepper and SetLogRetention
	// changed since Open (reconfigure.go); unset, opts apply.
	repeppered atomic.Pointer[pepperState]
	retention  atomic.Int64

	// tokMu guards tokens, the per-user broker state (cache + refresh lock).
	tokMu  sync.RWMutex
	tokens map[string]*tokenState

	// life guards closed: LogRequest and refresh flights check it so that
	// nothing new starts once Close has begun.
	life    sync.RWMutex
	closed  bool
	logCh   chan LogRecord
	drops   atomic.Uint64
	flights sync.WaitGroup

	commits   atomic.Uint64 // committed write transactions (for tests)
	stop      chan struct{}
	bg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error

	// Test hooks around the refresh commit (crash-safety tests kill the
	// process in them).
	testHookAfterRefresh func()
	testHookAfterPersist func()
}

// Open opens or creates the vault file at path (mode 0600), migrates it to
// the current schema and loads users, keys and decrypted tokens into memory.
func Open(path string, opts Options) (*Vault, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	kr, err := newKeyring(opts.EncryptionKeys)
	if err != nil {
		return nil, err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout: opts.OpenTimeout,
		// Request logs free pages on every commit; not writing the freelist
		// each time roughly doubles log throughput. Open rebuilds it.
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("vault: %s is locked: another process (a running Caddy?) or another Open in this process holds it: %w", path, err)
		}
		return nil, fmt.Errorf("vault: open %s: %w", path, err)
	}
	v := &Vault{
		db:         db,
		opts:       opts,
		keyring:    kr,
		pepper:     []byte(opts.Pepper),
		users:      map[string]User{},
		emails:     map[string]string{},
		keysByHash: map[[32]byte]*keyEntry{},
		keysByID:   map[string]*keyEntry{},
		tokens:     map[string]*tokenState{},
		logCh:      make(chan LogRecord, opts.LogBuffer),
		stop:       make(chan struct{}),
	}
	if err := v.tightenMode(path); err != nil {
		db.Close()
		return nil, err
	}
	if err := v.migrate(); err != nil {
		db.Close()
		return nil, err
	}
	if err := v.load(); err != nil {
		db.Close()
		return nil, err
	}
	v.purge()
	v.bg.Add(1)
	go v.background()
	return v, nil
}

// tightenMode makes an existing file private: it holds refresh tokens.
func (v *Vault) tightenMode(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("vault: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(path, 0o600); err != nil {
			return fmt.Errorf("vault: make %s private: %w", path, err)
		}
		v.logf("vault file was readable by others; mode set to 0600", "path", path)
	}
	return nil
}

// load fills the in-memory indexes from the file.
func (v *Vault) load() error {
	if err := v.loadUsers(); err != nil {
		return fmt.Errorf("vault: load users: %w", err)
	}
	if err := v.loadKeys(); err != nil {
		return fmt.Errorf("vault: load API keys: %w", err)
	}
	if err := v.loadTokens(); err != nil {
		return fmt.Errorf("vault: load tokens: %w", err)
	}
	return nil
}

// Close waits for in-flight refreshes, writes pending request logs and
// last-used times, and closes the file. It is safe to call more than once.
func (v *Vault) Close() error {
	v.closeOnce.Do(func() {
		v.life.Lock()
		v.closed = true
		v.life.Unlock()
		// A refresh in flight holds a rotated refresh token that must reach
		// the disk before the file closes.
		v.flights.Wait()
		close(v.stop)
		v.bg.Wait()
		v.closeErr = v.db.Close()
	})
	return v.closeErr
}

// background commits request logs, writes key last-used times and purges
// expired records, all off the request path.
func (v *Vault) background() {
	defer v.bg.Done()
	flush := time.NewTicker(v.opts.LogFlushInterval)
	defer flush.Stop()
	keys := time.NewTicker(v.opts.KeyFlushInterval)
	defer keys.Stop()
	purge := time.NewTicker(time.Hour)
	defer purge.Stop()
	batch := make([]LogRecord, 0, v.opts.LogBatchSize)
	for {
		select {
		case rec := <-v.logCh:
			batch = append(batch, rec)
			if len(batch) >= v.opts.LogBatchSize {
				// Under load, take the backlog into the same commit: a commit
				// costs two fsyncs whatever its size.
				batch = v.drainLogs(batch, maxBacklogBatches*v.opts.LogBatchSize)
				batch = v.writeLogBatch(batch)
			}
		case <-flush.C:
			batch = v.writeLogBatch(batch)
		case <-keys.C:
			v.flushKeyUsage()
		case <-purge.C:
			v.purge()
		case <-v.stop:
			// Close set closed first, so nothing more arrives: drain it all.
			for {
				batch = v.drainLogs(batch, maxBacklogBatches*v.opts.LogBatchSize)
				if len(batch) == 0 {
					break
				}
				batch = v.writeLogBatch(batch)
			}
			v.flushKeyUsage()
			return
		}
	}
}

// maxBacklogBatches bounds one commit to this many batches of backlog.
const maxBacklogBatches = 16

// drainLogs appends queued records to batch, without waiting, until it
// holds max.
func (v *Vault) drainLogs(batch []LogRecord, max int) []LogRecord {
	for len(batch) < max {
		select {
		case rec := <-v.logCh:
			batch = append(batch, rec)
		default:
			return batch
		}
	}
	return batch
}

// purge drops expired request logs, sessions, login tokens and OAuth states.
func (v *Vault) purge() {
	if n, err := v.purgeLogs(); err != nil {
		v.logf("vault: purging request logs failed", "error", err)
	} else if n > 0 {
		v.logf("vault: purged old request logs", "records", n)
	}
	if n, err := v.purgeExpiredSecrets(); err != nil {
		v.logf("vault: purging expired sessions failed", "error", err)
	} else if n > 0 {
		v.logf("vault: purged expired sessions and tokens", "records", n)
	}
}

// update runs fn in a write transaction and counts the commit.
func (v *Vault) update(fn func(tx *bolt.Tx) error) error {
	err := v.db.Update(fn)
	if err == nil {
		v.commits.Add(1)
	}
	return mapClosed(err)
}

// view runs fn in a read transaction.
func (v *Vault) view(fn func(tx *bolt.Tx) error) error {
	return mapClosed(v.db.View(fn))
}

// mapClosed turns bbolt's closed-database error into ErrClosed.
func mapClosed(err error) error {
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// now reads the configured clock.
func (v *Vault) now() time.Time { return v.opts.Now() }

// logf forwards to the configured logger.
func (v *Vault) logf(msg string, kv ...any) { v.opts.Log(msg, kv...) }
