// Package ratelimit counts events per key in fixed windows, in a table of
// fixed size: memory is allocated once, and one event costs a hash and a
// scan of one small bucket under the lock of one shard, however many keys
// are seen. It does not import Caddy; caddymodule keeps one table across
// config reloads and hands it to the dashboard.
//
// A full bucket forgets the key with the fewest events first, so a flood of
// distinct keys evicts one-off keys rather than a key that is already over
// its limit. Forgetting fails open: an evicted key starts again from zero.
package ratelimit

import (
	"math/bits"
	"math/rand/v2"
	"sync"
	"time"
	"unsafe"
)

// DefaultCapacity is the number of keys a table tracks when Config leaves
// it zero: 65,536 keys in 2 MiB.
const DefaultCapacity = 1 << 16

const (
	shardBits = 6 // 64 shards, each with its own lock
	numShards = 1 << shardBits
	ways      = 8 // keys per bucket, scanned linearly
)

// Config configures a Table.
type Config struct {
	// Capacity is how many keys the table holds at once; rounded up to a
	// power of two of at least 512. DefaultCapacity when zero.
	Capacity int
	// Now is the clock (time.Now when nil); tests swap it.
	Now func() time.Time
}

// Result is the outcome of one Hit or Peek.
type Result struct {
	// Allowed is false when the key had already reached its limit in the
	// current window; the refused event was not counted.
	Allowed bool
	// Count is the number of events counted in the current window.
	Count int
	// RetryAfter is how long until the window ends (zero when no window is
	// open).
	RetryAfter time.Duration
}

// Table counts events per Key in fixed windows. It is safe for concurrent
// use; the zero value is not usable, call New.
type Table struct {
	now          func() time.Time
	epoch        time.Time
	seed0, seed1 uint64
	bucketMask   uint64 // buckets per shard - 1
	shards       [numShards]shard
}

// shard is one lock and its buckets, padded so neighbouring locks do not
// share a cache line.
type shard struct {
	mu    sync.Mutex
	slots []slot // len = buckets per shard * ways
	_     [64 - 8 - 24]byte
}

// slot is one tracked key: 32 bytes.
type slot struct {
	key   Key
	count uint32
	end   int64 // window end, nanoseconds since the table's epoch; 0 = free
}

// New allocates a table of cfg.Capacity keys.
func New(cfg Config) *Table {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	capacity := cfg.Capacity
	if capacity <= 0 {
		capacity = DefaultCapacity
	}
	perShard := max(1, (capacity+numShards*ways-1)/(numShards*ways))
	buckets := 1 << bits.Len(uint(perShard-1)) // next power of two
	t := &Table{
		now:        cfg.Now,
		epoch:      cfg.Now(),
		seed0:      rand.Uint64(),
		seed1:      rand.Uint64(),
		bucketMask: uint64(buckets - 1),
	}
	for i := range t.shards {
		t.shards[i].slots = make([]slot, buckets*ways)
	}
	return t
}

// Capacity is how many keys the table holds at once.
func (t *Table) Capacity() int { return numShards * ways * int(t.bucketMask+1) }

// Bytes is the table's fixed memory: its slots and shard headers.
func (t *Table) Bytes() int {
	return int(unsafe.Sizeof(*t)) + t.Capacity()*int(unsafe.Sizeof(slot{}))
}

// Hit counts one event for k unless k already reached limit events in its
// window, which opens on k's first event and lasts window. A refused event
// is not counted, so a client that keeps trying does not extend its own
// block. A limit below 1 counts as 1.
func (t *Table) Hit(k Key, limit int, window time.Duration) Result {
	return t.do(k, limit, window, true)
}

// Peek reports what Hit would answer without counting anything.
func (t *Table) Peek(k Key, limit int) Result {
	return t.do(k, limit, 0, false)
}

func (t *Table) do(k Key, limit int, window time.Duration, count bool) Result {
	limit = max(limit, 1)
	now := int64(t.now().Sub(t.epoch))
	h := t.hash(k)
	s := &t.shards[h>>(64-shardBits)]
	base := int(h&t.bucketMask) * ways

	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.slots[base : base+ways : base+ways]
	victim := 0
	for i := range b {
		e := &b[i]
		if e.end <= now { // free or expired: the best victim
			if b[victim].end > now || e.end < b[victim].end {
				victim = i
			}
			continue
		}
		if e.key == k {
			res := Result{Count: int(e.count), RetryAfter: time.Duration(e.end - now)}
			if int(e.count) >= limit {
				return res
			}
			res.Allowed = true
			if count {
				e.count++
				res.Count++
			}
			return res
		}
		// Among live keys evict the fewest events, then the oldest window.
		if v := &b[victim]; v.end > now && (e.count < v.count || e.count == v.count && e.end < v.end) {
			victim = i
		}
	}
	if !count {
		return Result{Allowed: true}
	}
	b[victim] = slot{key: k, count: 1, end: now + int64(max(window, 1))}
	return Result{Allowed: true, Count: 1, RetryAfter: max(window, 1)}
}

// hash mixes the key with the table's random seeds, so nobody outside can
// aim keys at one bucket.
func (t *Table) hash(k Key) uint64 {
	lo, hi := k.words()
	h := mix(lo ^ t.seed0)
	return mix(h ^ hi ^ t.seed1 ^ uint64(k.scope)<<8 ^ uint64(k.kind))
}

// mix is the 64-bit finalizer of MurmurHash3.
func mix(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}
