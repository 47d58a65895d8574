package codex

import (
	"context"
	"sync"
	"time"
)

// Cache timings.
const (
	// DefaultModelTTL is how long a fetched catalog is served.
	DefaultModelTTL = 10 * time.Minute
	// modelErrorTTL keeps a failed fetch from being retried on every
	// request while the upstream is down.
	modelErrorTTL = 30 * time.Second
)

// ModelFetcher fetches one account's catalog; (*Client).Models is one.
type ModelFetcher func(ctx context.Context, ts TokenSource) ([]RemoteModel, error)

// ModelCache caches catalogs per key (the account id, since catalogs differ
// by plan, docs/protocol.md#catalog-per-plan). Concurrent misses for one key share a single fetch. It is
// safe for concurrent use.
type ModelCache struct {
	fetch    ModelFetcher
	ttl      time.Duration
	fallback []RemoteModel
	now      func() time.Time

	mu      sync.Mutex
	entries map[string]*modelEntry
}

type modelEntry struct {
	models  []RemoteModel // last good catalog; nil if never fetched
	expires time.Time     // when to fetch again
	err     error         // last fetch error, while expires holds
	wait    chan struct{} // non-nil while a fetch is in flight
}

// NewModelCache returns a cache calling fetch on misses. ttl ≤ 0 means
// DefaultModelTTL. fallback is served when a key has no good catalog and
// the fetch fails.
func NewModelCache(fetch ModelFetcher, ttl time.Duration, fallback []RemoteModel) *ModelCache {
	if ttl <= 0 {
		ttl = DefaultModelTTL
	}
	return &ModelCache{fetch: fetch, ttl: ttl, fallback: fallback, now: time.Now, entries: map[string]*modelEntry{}}
}

// Get returns the catalog for key, fetching it with ts when missing or
// stale. When the fetch fails it returns the last good catalog for key, or
// the fallback, together with the fetch error so the caller can log it;
// models is nil only when there is neither. The returned slice is shared:
// do not modify it.
func (m *ModelCache) Get(ctx context.Context, key string, ts TokenSource) ([]RemoteModel, error) {
	for {
		m.mu.Lock()
		e := m.entries[key]
		if e == nil {
			e = &modelEntry{}
			m.entries[key] = e
		}
		if e.wait == nil && m.now().Before(e.expires) {
			models, err := e.models, e.err
			m.mu.Unlock()
			return m.orFallback(models, err)
		}
		if e.wait != nil {
			wait := e.wait
			m.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				m.mu.Lock()
				models := e.models
				m.mu.Unlock()
				return m.orFallback(models, ctx.Err())
			}
		}
		e.wait = make(chan struct{})
		m.mu.Unlock()
		return m.refresh(ctx, key, e, ts)
	}
}

// refresh runs the fetch for e. It is detached from the caller's
// cancellation so one impatient caller does not fail everyone waiting.
func (m *ModelCache) refresh(ctx context.Context, key string, e *modelEntry, ts TokenSource) ([]RemoteModel, error) {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), modelsTimeout)
	models, err := m.fetch(fctx, ts)
	cancel()

	m.mu.Lock()
	if err == nil {
		e.models, e.err, e.expires = models, nil, m.now().Add(m.ttl)
	} else {
		e.err, e.expires = err, m.now().Add(min(modelErrorTTL, m.ttl))
	}
	close(e.wait)
	e.wait = nil
	models, err = e.models, e.err
	m.mu.Unlock()
	return m.orFallback(models, err)
}

func (m *ModelCache) orFallback(models []RemoteModel, err error) ([]RemoteModel, error) {
	if models == nil {
		models = m.fallback
	}
	return models, err
}
