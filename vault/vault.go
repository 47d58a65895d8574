package vault

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/usemysub/caddy-codex-proxy/keypolicy"
)

// Vault is the proxy's store. All methods are safe for concurrent use.
type Vault struct {
	store   Store
	opts    Options
	keyring *keyring
	pepper  []byte

	// mu guards the in-memory users and API-key indexes below; writers hold
	// it across the store write so memory and storage change together.
	mu         sync.RWMutex
	users      map[string]User   // id → user
	emails     map[string]string // normalised email → id
	keysByHash map[[32]byte]*keyEntry
	keysByID   map[string]*keyEntry // active keys only
	keysDirty  atomic.Bool          // some keyEntry has an unwritten last-used
	// cacheGen counts local writes to users and keys (lockCaches), so a
	// re-read of another instance's change that overlapped one is not
	// applied over it (changes.go); guarded by mu.
	cacheGen uint64
	macs     sync.Pool // keyed HMAC states for keyHash
	// repeppered and retention hold what SetPepper and SetLogRetention
	// changed since Open (reconfigure.go); unset, opts apply.
	repeppered atomic.Pointer[pepperState]
	retention  atomic.Int64
	// limits are the Limits in force (Options', then Reconfigure's);
	// responseCut asks the next purge to drop responses older than their
	// retention, which may be shorter than the one they were stored with.
	limits      atomic.Pointer[Limits]
	responseCut atomic.Bool
	// auditRetention is what SetAuditRetention set (0: the option's).
	auditRetention atomic.Int64
	// lastAudit is the Unix nanoseconds of the last audit id made here.
	lastAudit atomic.Int64
	// responseDrops counts responses not kept or dropped for the caps.
	responseDrops atomic.Uint64

	// tokMu guards tokens, the per-account broker state (cache + refresh
	// lock + exhaustion), by user id then account id.
	tokMu  sync.RWMutex
	tokens map[string]map[string]*tokenState

	// affinity keeps conversations on the account that served them; see
	// routing.go.
	affinity affinityMap

	// usage counts requests and tokens per key against its policy; see
	// key_policy.go. usageMu keeps request-log writes and reads of the
	// store's key usage from overlapping (key_usage.go); it is taken
	// before mu.
	usage   *keypolicy.Tracker
	usageMu sync.Mutex

	// quotas holds each account's latest rate-limit snapshot; see quota.go.
	quotas quotaCache
	// signup is the copy of the operator's sign-up policy; settings.go.
	signup settingCache

	// life guards closed: LogRequest and refresh flights check it so that
	// nothing new starts once Close has begun.
	life    sync.RWMutex
	closed  bool
	logCh   chan LogRecord
	drops   atomic.Uint64
	flights sync.WaitGroup
	// sealMu: token-bundle writes hold it shared, an encryption-key change
	// exclusively (reconfigure.go).
	sealMu sync.RWMutex

	// Owned by the background goroutine: what the last dropped-records
	// warning reported, and when.
	dropsWarned   uint64
	dropsWarnedAt time.Time

	// changeStats counts how other instances' changes were followed
	// (change_stats.go).
	changeStats changeCounters

	stop      chan struct{}
	bg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error

	// rot is the reconfiguration state: the settings in force and the
	// background re-encryption (rotation.go).
	rot rotation
	// cluster is what this instance knows of the others on its database
	// (instances.go).
	cluster cluster

	// Test hooks around the refresh commit (crash-safety tests kill the
	// process in them).
	testHookAfterRefresh func()
	testHookAfterPersist func()
}

// New makes a Vault on store, which it owns from then on: Vault.Close
// closes it (New does not, if it fails). It loads users, keys, decrypted
// tokens and quota snapshots into memory and starts the background writer.
func New(store Store, opts Options) (*Vault, error) {
	given := Settings{EncryptionKeys: slices.Clone(opts.EncryptionKeys), Pepper: opts.Pepper, LogRetention: opts.LogRetention, Limits: opts.Limits}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	kr, err := newKeyring(opts.EncryptionKeys)
	if err != nil {
		return nil, err
	}
	v := &Vault{
		store:      store,
		opts:       opts,
		keyring:    kr,
		pepper:     []byte(opts.Pepper),
		users:      map[string]User{},
		emails:     map[string]string{},
		keysByHash: map[[32]byte]*keyEntry{},
		keysByID:   map[string]*keyEntry{},
		tokens:     map[string]map[string]*tokenState{},
		usage:      keypolicy.NewTracker(opts.Now),
		logCh:      make(chan LogRecord, opts.LogBuffer),
		stop:       make(chan struct{}),
	}
	v.rot.applied = given
	v.limits.Store(&opts.Limits)
	v.responseCut.Store(true) // what an earlier run stored may be older than this retention
	v.rot.quit = make(chan struct{})
	if err := v.startCluster(context.Background()); err != nil {
		return nil, err
	}
	if err := v.load(); err != nil {
		v.deregister()
		return nil, err
	}
	v.purge()
	v.bg.Add(1)
	go v.background()
	if v.cluster.reg != nil {
		v.bg.Add(1)
		go v.heartbeats()
	}
	if ch := store.Changes(); ch != nil {
		v.bg.Add(1)
		go v.followChanges(ch)
	}
	return v, nil
}

// load fills the in-memory indexes from the store.
func (v *Vault) load() error {
	ctx := context.Background()
	if err := v.loadUsers(ctx); err != nil {
		return fmt.Errorf("vault: load users: %w", err)
	}
	if err := v.loadKeys(ctx); err != nil {
		return fmt.Errorf("vault: load API keys: %w", err)
	}
	if err := v.loadKeyUsage(ctx); err != nil {
		return fmt.Errorf("vault: rebuild API key usage from the request log: %w", err)
	}
	if err := v.loadTokens(ctx); err != nil {
		return fmt.Errorf("vault: load tokens: %w", err)
	}
	if err := v.loadQuotas(ctx); err != nil {
		return fmt.Errorf("vault: load quota snapshots: %w", err)
	}
	return nil
}

// Close waits for in-flight refreshes, writes pending request logs,
// last-used times and quota snapshots, and closes the store. It is safe to
// call more than once.
func (v *Vault) Close() error {
	v.closeOnce.Do(func() {
		// A re-encryption pass is short writes; let it finish rather than
		// leave bundles half moved to the first key. One still waiting for
		// other instances to hold the key gives up.
		close(v.rot.quit)
		v.rot.reWG.Wait()
		v.life.Lock()
		v.closed = true
		v.life.Unlock()
		// A refresh in flight holds a rotated refresh token that must reach
		// the disk before the file closes.
		v.flights.Wait()
		close(v.stop)
		v.bg.Wait()
		v.deregister()
		v.closeErr = v.store.Close()
	})
	return v.closeErr
}

// background commits request logs, writes key last-used times and quota
// snapshots, and purges expired records, all off the request path.
func (v *Vault) background() {
	defer v.bg.Done()
	flush := time.NewTicker(v.opts.LogFlushInterval)
	defer flush.Stop()
	keys := time.NewTicker(v.opts.KeyFlushInterval)
	defer keys.Stop()
	quotas := time.NewTicker(v.opts.QuotaFlushInterval)
	defer quotas.Stop()
	purge := time.NewTicker(time.Hour)
	defer purge.Stop()
	w := &logWriter{batch: make([]LogRecord, 0, v.opts.LogBatchSize)}
	defer w.stop()
	for {
		select {
		case rec := <-v.logQueue(w):
			w.batch = append(w.batch, rec)
			if len(w.batch) >= v.opts.LogBatchSize && !w.waiting() {
				// Under load, take the backlog into the same commit: a commit
				// costs two fsyncs whatever its size.
				w.batch = v.drainLogs(w.batch, maxBacklogBatches*v.opts.LogBatchSize)
				v.flushLogs(w, false)
			}
		case <-flush.C:
			if !w.waiting() {
				v.flushLogs(w, false)
			}
			v.warnDrops()
		case <-w.retryC:
			v.flushLogs(w, false)
		case <-keys.C:
			v.flushKeyUsage()
		case <-quotas.C:
			v.flushQuotas()
		case <-purge.C:
			v.purge()
		case <-v.stop:
			// Close set closed first, so nothing more arrives: drain it all,
			// with one last attempt for records kept for a retry.
			for {
				w.batch = v.drainLogs(w.batch, maxBacklogBatches*v.opts.LogBatchSize)
				if len(w.batch) == 0 {
					break
				}
				v.flushLogs(w, true)
			}
			v.flushKeyUsage()
			v.flushQuotas()
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
		v.logWarn("vault: purging request logs failed", "error", err)
	} else if n > 0 {
		v.logInfo("vault: purged old request logs", "records", n)
	}
	if n, err := v.purgeResponses(); err != nil {
		v.logWarn("vault: purging expired stored responses failed", "error", err)
	} else if n > 0 {
		v.logInfo("vault: purged expired stored responses", "records", n)
	}
	if n, err := v.purgeAudit(); err != nil {
		v.logWarn("vault: purging old audit entries failed", "error", err)
	} else if n > 0 {
		v.logInfo("vault: purged old audit entries", "records", n)
	}
	if n, err := v.purgeExpiredSecrets(); err != nil {
		v.logWarn("vault: purging expired sessions failed", "error", err)
	} else if n > 0 {
		v.logInfo("vault: purged expired sessions and tokens", "records", n)
	}
}

// now reads the configured clock.
func (v *Vault) now() time.Time { return v.opts.Now() }

// Leveled logging to the configured logger; kv are key/value pairs.
func (v *Vault) logError(msg string, kv ...any) { v.opts.Logger.Error(msg, kv...) }
func (v *Vault) logWarn(msg string, kv ...any)  { v.opts.Logger.Warn(msg, kv...) }
func (v *Vault) logInfo(msg string, kv ...any)  { v.opts.Logger.Info(msg, kv...) }
