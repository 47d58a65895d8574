package ratelimit

import (
	"net/netip"
	"runtime"
	"testing"
	"time"
)

// BenchmarkFlood records failed attempts from 1,000,000 distinct addresses
// (IPv4 and IPv6 /64s, cycling) in a default table. Reported: ns and
// bytes per attempt, the table's fixed size ("table-bytes"), and how much
// the live heap grew over the run ("heap-growth-bytes"), which stays near
// zero however many addresses go by.
func BenchmarkFlood(b *testing.B) {
	const distinct = 1_000_000
	tbl := New(Config{})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		n := uint32(i % distinct)
		var a netip.Addr
		if n&1 == 0 {
			a = netip.AddrFrom4([4]byte{10, byte(n >> 16), byte(n >> 8), byte(n)})
		} else {
			a = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n), 15: 1})
		}
		tbl.Hit(AddrKeyOf(1, a), 20, time.Minute)
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(tbl.Bytes()), "table-bytes")
	b.ReportMetric(float64(tbl.Capacity()), "table-keys")
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)), "heap-growth-bytes")
	runtime.KeepAlive(tbl)
}

// BenchmarkFailedAttempt is one failed attempt as the API records it: the
// client address parsed from its string, then counted.
func BenchmarkFailedAttempt(b *testing.B) {
	tbl := New(Config{})
	addrs := []string{"192.0.2.1", "2001:db8:1:2::1", "::ffff:198.51.100.7", "203.0.113.200"}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		tbl.Hit(AddrKey(1, addrs[i%len(addrs)]), 20, time.Minute)
	}
}

// BenchmarkFailedAttemptParallel is the same from every core at once, on
// distinct addresses (the per-shard locks at work).
func BenchmarkFailedAttemptParallel(b *testing.B) {
	tbl := New(Config{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var n uint32
		for pb.Next() {
			n++
			tbl.Hit(AddrKeyOf(1, netip.AddrFrom4([4]byte{10, byte(n >> 16), byte(n >> 8), byte(n)})), 20, time.Minute)
		}
	})
}
