package dashboard

import (
	"sync"
	"time"
)

// maxLimiterKeys bounds the limiter's memory; past it, expired entries are
// swept and, if still full, the table is reset (failing open beats growing
// without bound under a flood of distinct keys).
const maxLimiterKeys = 100000

// limiter counts events per key in fixed windows.
type limiter struct {
	mu      sync.Mutex
	now     func() time.Time
	entries map[string]*window
}

type window struct {
	start time.Time
	count int
}

func newLimiter(now func() time.Time) *limiter {
	return &limiter{now: now, entries: map[string]*window{}}
}

// allow counts one event for every key and reports whether all of them
// are within limit events per period. Nothing is counted when one is over,
// so a blocked client does not extend its own block.
func (l *limiter) allow(period time.Duration, keys map[string]int) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if len(l.entries) > maxLimiterKeys {
		l.sweep(now, period)
		if len(l.entries) > maxLimiterKeys {
			l.entries = map[string]*window{}
		}
	}
	var wait time.Duration
	for k, limit := range keys {
		w := l.entries[k]
		if w == nil || now.Sub(w.start) >= period {
			continue
		}
		if w.count >= limit {
			wait = max(wait, period-now.Sub(w.start))
		}
	}
	if wait > 0 {
		return false, wait
	}
	for k := range keys {
		w := l.entries[k]
		if w == nil || now.Sub(w.start) >= period {
			w = &window{start: now}
			l.entries[k] = w
		}
		w.count++
	}
	return true, 0
}

// sweep drops windows that have ended.
func (l *limiter) sweep(now time.Time, period time.Duration) {
	for k, w := range l.entries {
		if now.Sub(w.start) >= period {
			delete(l.entries, k)
		}
	}
}
