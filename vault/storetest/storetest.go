// Package storetest is the contract every vault.Store must meet, as a test
// suite. An engine's tests call Run with a way to open a fresh database:
//
//	func TestContract(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) storetest.Opener {
//			path := filepath.Join(t.TempDir(), "vault.db")
//			return func() (vault.Store, error) { return bolt.Open(path, bolt.Options{}) }
//		})
//	}
//
// The suite covers every Store method: round trips, the not-found and
// uniqueness sentinels (errors.Is), cascades, request-log ordering and
// paging, retention, atomic compare-and-swap and take, the refresh lock
// across goroutines, and persistence across close and reopen.
package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// Opener opens one database. Called again after the store it returned was
// closed, it must open the same database, with everything written before.
type Opener func() (vault.Store, error)

// NewDB makes an empty database for one test. It is called once per
// subtest; cleaning up after t is its job.
type NewDB func(t *testing.T) Opener

// Run runs the whole contract against the engine newDB makes.
func Run(t *testing.T, newDB NewDB) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, h *harness)
	}{
		{"Users", testUsers},
		{"UserUniqueness", testUserUniqueness},
		{"DeleteUserCascade", testDeleteUserCascade},
		{"Keys", testKeys},
		{"KeyUniqueness", testKeyUniqueness},
		{"RevokeAndTouchKeys", testRevokeAndTouch},
		{"KeyPolicy", testKeyPolicy},
		{"Tokens", testTokens},
		{"TokensCompareAndSwapIsAtomic", testTokensConcurrent},
		{"Sessions", testSessions},
		{"TakeIsSingleUse", testTakeConcurrent},
		{"PurgeExpiredSessions", testPurgeSessions},
		{"RequestLogOrderAndPaging", testLogOrder},
		{"RequestLogFilter", testLogFilter},
		{"Usage", testUsage},
		{"RetentionPurge", testPurgeLogs},
		{"KeyUsage", testKeyUsage},
		{"Quotas", testQuotas},
		{"RefreshLockExcludes", testRefreshLock},
		{"Persistence", testPersistence},
		{"Closed", testClosed},
		{"Export", testExport},
		{"CopyAndVerify", testCopy},
		{"DeleteAll", testDeleteAll},
		{"Responses", testResponses},
		{"ResponseCaps", testResponseCaps},
		{"ResponsePurge", testResponsePurge},
		{"Settings", testSettings},
		{"Audit", testAudit},
		{"AuditFilters", testAuditFilters},
		{"AuditPurge", testAuditPurge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &harness{t: t, open: newDB(t), newDB: newDB}
			tc.fn(t, h)
		})
	}
}

// harness opens and closes the database of one subtest.
type harness struct {
	t    *testing.T
	open Opener
	// newDB makes another empty database, for tests that copy.
	newDB NewDB
}

// store opens the database; the store is closed when the test ends unless
// the test closes it first (then close returns its error).
func (h *harness) store() vault.Store {
	h.t.Helper()
	s, err := h.open()
	if err != nil {
		h.t.Fatalf("open store: %v", err)
	}
	h.t.Cleanup(func() { closeOnce(s) })
	return s
}

// closed tracks stores the suite closed, so cleanup does not close twice.
var (
	closedMu sync.Mutex
	closed   = map[vault.Store]bool{}
)

// closeOnce closes s unless it was closed already.
func closeOnce(s vault.Store) error {
	closedMu.Lock()
	done := closed[s]
	closed[s] = true
	closedMu.Unlock()
	if done {
		return nil
	}
	return s.Close()
}

// ctx is the context of every call; the contract has no deadlines.
var ctx = context.Background()

// Fixed, microsecond-precise UTC times: a server engine may keep
// microseconds only.
var (
	t0   = time.Date(2026, 3, 10, 12, 0, 0, 123456000, time.UTC)
	day  = 24 * time.Hour
	tick = time.Millisecond
)

// user makes a user record.
func user(id, email string) vault.User {
	return vault.User{ID: id, Email: email, Name: "Name of " + id, Created: t0}
}

// key makes a key record of user with a hash derived from id.
func key(id, userID string) vault.KeyRecord {
	return vault.KeyRecord{
		Key:  vault.Key{ID: id, UserID: userID, Prefix: "cpk_" + id, Label: "label " + id, Created: t0},
		Hash: hash(id),
	}
}

// hash is a 32-byte stand-in for an HMAC.
func hash(s string) []byte {
	return bytes.Repeat([]byte(s+"#"), 32)[:32]
}

// tokens makes a sealed-looking token record; the store must keep the
// bytes as they are.
func tokens(version uint64, ct string) vault.TokenRecord {
	return vault.TokenRecord{
		Sealed: vault.Sealed{KeyID: "0a1b2c3d", Nonce: []byte("twelve-bytes"), Ciphertext: []byte(ct)},
		TokenInfo: vault.TokenInfo{
			AccountID: "acc-1", PlanType: "plus", Email: "chatgpt@example.com",
			Expiry: t0.Add(time.Hour), LastRefresh: t0, Version: version, Updated: t0,
			Label: "personal", Position: 1, Linked: t0,
		},
	}
}

// mustUser stores user(id, email).
func mustUser(t *testing.T, s vault.Store, id, email string) vault.User {
	t.Helper()
	u := user(id, email)
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatalf("CreateUser(%s): %v", id, err)
	}
	return u
}

// must fails the test on err.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantErr fails unless errors.Is(err, target).
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

// same fails unless got and want have the same JSON form (times are UTC,
// so equal times marshal equally).
func same(t *testing.T, what string, got, want any) {
	t.Helper()
	g, err := json.Marshal(got)
	must(t, err)
	w, err := json.Marshal(want)
	must(t, err)
	if !bytes.Equal(g, w) {
		t.Fatalf("%s:\n got %s\nwant %s", what, g, w)
	}
}

// ids lists the RequestIDs of records, for compact comparisons.
func ids(recs []vault.LogRecord) string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.RequestID
	}
	return fmt.Sprint(out)
}
