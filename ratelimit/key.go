package ratelimit

import (
	"crypto/sha256"
	"encoding/binary"
	"net/netip"
	"strings"
)

// Scope separates the kinds of keys one table holds (a per-address count
// and a per-email count never meet). Callers define their own values.
type Scope uint8

// Key identifies what is counted. Keys are compared in full, so two
// addresses never share a count, whatever their hashes.
type Key struct {
	scope Scope
	kind  uint8
	id    [16]byte
}

const (
	kindAddr   = 1
	kindDigest = 2
)

// AddrKey is the key of a client address, as Caddy's client_ip gives it:
// IPv4 counts per address (IPv4-mapped IPv6 is IPv4), IPv6 per /64, since
// one subscriber usually holds a whole /64 and could otherwise spread over
// 2^64 keys. A zone or a port is ignored; a string that is no IP address
// (a Unix socket peer) is keyed by its digest.
func AddrKey(scope Scope, addr string) Key {
	if a, err := netip.ParseAddr(addr); err == nil {
		return AddrKeyOf(scope, a)
	}
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return AddrKeyOf(scope, ap.Addr())
	}
	if a, err := netip.ParseAddr(strings.Trim(addr, "[]")); err == nil {
		return AddrKeyOf(scope, a)
	}
	return StringKey(scope, addr)
}

// AddrKeyOf is AddrKey for a parsed address.
func AddrKeyOf(scope Scope, a netip.Addr) Key {
	a = a.Unmap().WithZone("")
	k := Key{scope: scope, kind: kindAddr, id: a.As16()}
	if a.Is6() {
		clear(k.id[8:]) // the /64
	}
	return k
}

// StringKey is the key of any string (an email address): the first 128
// bits of its SHA-256, so the table holds no personal data and two strings
// share a count only with negligible probability.
func StringKey(scope Scope, s string) Key {
	sum := sha256.Sum256([]byte(s))
	k := Key{scope: scope, kind: kindDigest}
	copy(k.id[:], sum[:16])
	return k
}

// String shows an address key as its address or prefix, for tests and
// debugging; digests show as such.
func (k Key) String() string {
	if k.kind != kindAddr {
		return "digest"
	}
	a := netip.AddrFrom16(k.id).Unmap()
	if a.Is4() {
		return a.String()
	}
	return netip.PrefixFrom(a, 64).String()
}

func (k Key) words() (lo, hi uint64) {
	return binary.LittleEndian.Uint64(k.id[:8]), binary.LittleEndian.Uint64(k.id[8:])
}
