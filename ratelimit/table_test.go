package ratelimit

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a clock tests move by hand.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func newTable(t testing.TB, capacity int) (*Table, *clock) {
	t.Helper()
	c := &clock{}
	c.ns.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return New(Config{Capacity: capacity, Now: c.now}), c
}

func TestWindow(t *testing.T) {
	tbl, c := newTable(t, 0)
	k := AddrKey(1, "192.0.2.1")
	steps := []struct {
		advance time.Duration
		allowed bool
		count   int
		retry   time.Duration
	}{
		{0, true, 1, time.Minute},
		{10 * time.Second, true, 2, 50 * time.Second},
		{0, true, 3, 50 * time.Second},
		{0, false, 3, 50 * time.Second}, // over: refused, not counted
		{49 * time.Second, false, 3, time.Second},
		{time.Second, true, 1, time.Minute}, // the window ended: a new one opens
	}
	for i, s := range steps {
		c.advance(s.advance)
		got := tbl.Hit(k, 3, time.Minute)
		if got.Allowed != s.allowed || got.Count != s.count || got.RetryAfter != s.retry {
			t.Fatalf("step %d: got %+v, want allowed=%v count=%d retry=%v", i, got, s.allowed, s.count, s.retry)
		}
	}
	if p := tbl.Peek(k, 1); p.Allowed || p.Count != 1 {
		t.Fatalf("peek at the limit: %+v", p)
	}
	if p := tbl.Peek(AddrKey(1, "192.0.2.99"), 1); !p.Allowed || p.Count != 0 {
		t.Fatalf("peek of an unseen key: %+v", p)
	}
	if got := tbl.Hit(k, 3, time.Minute); got.Count != 2 {
		t.Fatalf("peek counted: %+v", got)
	}
}

func TestAddrKey(t *testing.T) {
	tests := []struct {
		a, b string
		same bool
	}{
		{"192.0.2.1", "192.0.2.1", true},
		{"192.0.2.1", "192.0.2.2", false},                 // IPv4: per address
		{"::ffff:192.0.2.1", "192.0.2.1", true},           // IPv4-mapped is IPv4
		{"::ffff:192.0.2.1", "::ffff:192.0.2.2", false},   // … still per address
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff::9", true}, // one /64
		{"2001:db8:1:2::1", "2001:db8:1:3::1", false},     // the next /64
		{"fe80::1%eth0", "fe80::2", true},                 // zones ignored
		{"[2001:db8::1]:443", "2001:db8::2", true},        // ports ignored
		{"192.0.2.1:5000", "192.0.2.1", true},
		{"::", "0.0.0.0", false}, // v6 ::/64 is not the v4 space
		{"::1", "::ffff:0.0.0.1", false},
		{"@", "@", true}, // no IP (Unix socket): by digest
		{"@", "pipe", false},
	}
	for _, tt := range tests {
		if got := AddrKey(1, tt.a) == AddrKey(1, tt.b); got != tt.same {
			t.Errorf("AddrKey(%q) == AddrKey(%q): %v, want %v (%v, %v)", tt.a, tt.b, got, tt.same, AddrKey(1, tt.a), AddrKey(1, tt.b))
		}
	}
	if AddrKey(1, "192.0.2.1") == AddrKey(2, "192.0.2.1") {
		t.Error("scopes share a key")
	}
	if StringKey(1, "a@example.com") == StringKey(1, "b@example.com") || StringKey(1, "A@x") != StringKey(1, strings.ToUpper("a")+"@x") {
		t.Error("string keys")
	}
	if s := AddrKey(1, "2001:db8:1:2::1").String(); s != "2001:db8:1:2::/64" {
		t.Errorf("String() = %s", s)
	}
}

// TestGroupedCounts checks the grouping through the table: a client that
// rotates through its /64 shares one count.
func TestGroupedCounts(t *testing.T) {
	tbl, _ := newTable(t, 0)
	for i := range 5 {
		if r := tbl.Hit(AddrKey(1, fmt.Sprintf("2001:db8:7:7::%x", i+1)), 5, time.Minute); !r.Allowed {
			t.Fatalf("attempt %d refused", i)
		}
	}
	if r := tbl.Hit(AddrKey(1, "2001:db8:7:7:abcd::1"), 5, time.Minute); r.Allowed {
		t.Fatal("a sixth address in the same /64 was allowed")
	}
	if r := tbl.Hit(AddrKey(1, "::ffff:198.51.100.7"), 1, time.Minute); !r.Allowed {
		t.Fatal("first mapped attempt refused")
	}
	if r := tbl.Hit(AddrKey(1, "198.51.100.7"), 1, time.Minute); r.Allowed {
		t.Fatal("the same IPv4 address, unmapped, has its own count")
	}
}

// TestEvictionIsBounded floods a small table with far more addresses than
// it holds: its size does not change, nothing is allocated per event, and
// an address already over its limit stays blocked, since one-off keys are
// evicted first.
func TestEvictionIsBounded(t *testing.T) {
	tbl, _ := newTable(t, 512)
	if tbl.Capacity() != 512 {
		t.Fatalf("capacity %d", tbl.Capacity())
	}
	blocked := AddrKey(1, "203.0.113.9")
	for range 3 {
		tbl.Hit(blocked, 3, time.Hour)
	}
	var n uint32
	allocs := testing.AllocsPerRun(100000, func() {
		n++
		tbl.Hit(AddrKeyOf(1, netip.AddrFrom4([4]byte{10, byte(n >> 16), byte(n >> 8), byte(n)})), 3, time.Hour)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per event", allocs)
	}
	if tbl.Capacity() != 512 {
		t.Fatalf("capacity grew to %d", tbl.Capacity())
	}
	if r := tbl.Hit(blocked, 3, time.Hour); r.Allowed {
		t.Fatal("the flood evicted a blocked address")
	}
	// A fresh address after the flood is counted from one.
	if r := tbl.Hit(AddrKey(1, "198.51.100.1"), 3, time.Hour); !r.Allowed || r.Count != 1 {
		t.Fatalf("fresh address: %+v", r)
	}
}

// sameBucket returns n distinct address keys that land in one bucket.
func sameBucket(tbl *Table, n int) []Key {
	var keys []Key
	var want uint64
	for i := 0; len(keys) < n; i++ {
		k := AddrKeyOf(1, netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
		h := tbl.hash(k)
		b := h>>(64-shardBits)<<32 | h&tbl.bucketMask
		if len(keys) == 0 {
			want = b
		}
		if b == want {
			keys = append(keys, k)
		}
	}
	return keys
}

// TestBucketEviction: a full bucket reuses slots whose window ended before
// evicting a live key, and evicts the fewest events first.
func TestBucketEviction(t *testing.T) {
	tbl, c := newTable(t, 512)
	keys := sameBucket(tbl, 3*ways)
	old, fresh, flood := keys[:ways], keys[ways:2*ways], keys[2*ways:]
	for _, k := range old {
		for range 5 {
			tbl.Hit(k, 5, 10*time.Second)
		}
	}
	c.advance(10 * time.Second)
	for _, k := range fresh {
		tbl.Hit(k, 1, time.Minute)
	}
	for i, k := range fresh {
		if r := tbl.Peek(k, 1); r.Allowed {
			t.Fatalf("fresh key %d was evicted while expired slots were free", i)
		}
	}
	// fresh[0] reaches a higher count; a flood of one-off keys evicts the
	// others (fewest events), never it.
	tbl.Hit(fresh[0], 3, time.Minute)
	tbl.Hit(fresh[0], 3, time.Minute)
	for range 10 {
		for _, k := range flood {
			tbl.Hit(k, 3, time.Minute)
		}
	}
	if r := tbl.Peek(fresh[0], 3); r.Allowed || r.Count != 3 {
		t.Fatalf("the busiest key was evicted: %+v", r)
	}
	if r := tbl.Peek(fresh[1], 1); !r.Allowed {
		t.Fatal("a one-off key survived a bucket full of newer one-off keys")
	}
}

// TestConcurrentHits: under contention exactly limit events are allowed
// per key, and distinct keys do not disturb each other (run with -race).
func TestConcurrentHits(t *testing.T) {
	tbl, _ := newTable(t, 0)
	const limit, workers, per = 50, 8, 200
	var allowed [4]atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				j := (w + i) % len(allowed)
				if tbl.Hit(AddrKey(1, fmt.Sprintf("2001:db8:%d::%d", j, w)), limit, time.Hour).Allowed {
					allowed[j].Add(1)
				}
			}
		})
	}
	wg.Wait()
	for j := range allowed {
		if n := allowed[j].Load(); n != limit {
			t.Errorf("key %d: %d events allowed, want %d", j, n, limit)
		}
	}
}

func TestCapacityRounding(t *testing.T) {
	for _, tt := range []struct{ in, want int }{{0, DefaultCapacity}, {1, 512}, {512, 512}, {513, 1024}, {100000, 131072}} {
		if got := New(Config{Capacity: tt.in}).Capacity(); got != tt.want {
			t.Errorf("Capacity %d → %d, want %d", tt.in, got, tt.want)
		}
	}
	if b := New(Config{}).Bytes(); b < DefaultCapacity*32 || b > DefaultCapacity*32+8192 {
		t.Errorf("Bytes() = %d", b)
	}
}

func TestSeconds(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want int64
	}{{0, 1}, {time.Nanosecond, 1}, {time.Second, 1}, {time.Second + 1, 2}, {59500 * time.Millisecond, 60}, {time.Minute, 60}} {
		if got := Seconds(tt.d); got != tt.want {
			t.Errorf("Seconds(%v) = %d, want %d", tt.d, got, tt.want)
		}
	}
}
