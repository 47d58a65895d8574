package vault

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/usemysub/caddy-codex-proxy/keypolicy"
)

// flakyStore is a notifying store whose re-reads fail the way a server
// engine's do when a query times out or its connection broke (an error
// wrapping ErrUnavailable), as many times as the test says.
type flakyStore struct {
	*notifyingStore
	// getKey fails GetKey while it is above zero, counting down; keyDown
	// fails it for one key id whatever the count.
	getKey  atomic.Int32
	keyDown atomic.Pointer[string]
	// listAll fails ListAllKeys while above zero, counting down.
	listAll atomic.Int32
	// afterListAll, if set, runs once after a ListAllKeys read succeeded,
	// before the vault applies it.
	afterListAll atomic.Pointer[func()]
}

var errReread = fmt.Errorf("postgres: get key: canceling statement due to statement timeout: %w", ErrUnavailable)

func (s *flakyStore) GetKey(ctx context.Context, id string) (KeyRecord, error) {
	if p := s.keyDown.Load(); p != nil && *p == id {
		return KeyRecord{}, errReread
	}
	if s.getKey.Add(-1) >= 0 {
		return KeyRecord{}, errReread
	}
	return s.notifyingStore.GetKey(ctx, id)
}

func (s *flakyStore) ListAllKeys(ctx context.Context) ([]KeyRecord, error) {
	if s.listAll.Add(-1) >= 0 {
		return nil, errReread
	}
	recs, err := s.notifyingStore.ListAllKeys(ctx)
	if hook := s.afterListAll.Swap(nil); hook != nil && err == nil {
		(*hook)()
	}
	return recs, err
}

// flakyCluster is clusterVault on a flakyStore; mod adjusts the options
// (periodic resyncs are off unless it turns them on).
func flakyCluster(t *testing.T, mod func(*Options)) (*Vault, TestStore, *flakyStore, func(Change)) {
	t.Helper()
	bs, err := OpenTestStore(filepath.Join(t.TempDir(), "vault.db"), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	fs := &flakyStore{notifyingStore: &notifyingStore{TestStore: bs, ch: make(chan Change)}}
	opts := testOptions(newClock())
	opts.ResyncInterval = -1
	if mod != nil {
		mod(&opts)
	}
	v, err := New(fs, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	notify := func(c Change) {
		fs.ch <- c
		fs.ch <- Change{} // taken once c has been handled
	}
	return v, bs, fs, notify
}

// refused reports whether the vault now rejects plain.
func refused(v *Vault, plain string) func() bool {
	return func() bool { _, _, err := v.VerifyKey(plain); return errors.Is(err, ErrKeyInvalid) }
}

// TestFailedRereadIsRetried: another instance revokes a key and the
// re-read fails twice; the vault retries and the key stops working within
// a second, with the failures counted and logged at WARN with the ids.
func TestFailedRereadIsRetried(t *testing.T) {
	logger, logs := observedLogger()
	v, other, fs, notify := flakyCluster(t, func(o *Options) { o.Logger = logger })
	u := mustUser(t, v, "alice@example.com")
	plain, k, err := v.CreateKey(u.ID, "laptop")
	if err != nil {
		t.Fatal(err)
	}
	if err := other.RevokeKey(context.Background(), u.ID, k.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	fs.getKey.Store(2)
	start := time.Now()
	notify(Change{Kind: ChangeKey, UserID: u.ID, KeyID: k.ID})
	if _, _, err := v.VerifyKey(plain); err != nil {
		t.Fatalf("the failed re-read applied anyway (%v): the test no longer exercises the retry", err)
	}
	waitFor(t, "the revoke to apply after failed re-reads", refused(v, plain))
	if took := time.Since(start); took > time.Second {
		t.Errorf("revoked after %s, want within 1 s", took)
	}
	waitFor(t, "the stats to settle", func() bool { return v.ChangeStats().Pending == 0 })
	st := v.ChangeStats()
	if st.RereadsFailed != 2 || st.Retries != 2 || st.Applied != 1 {
		t.Errorf("stats = %+v, want 2 failed re-reads, 2 retries, 1 applied", st)
	}
	var warned bool
	for _, e := range logs.All() {
		if !strings.Contains(e.Message, "re-reading a change from another instance failed") {
			continue
		}
		warned = true
		m := e.ContextMap()
		if e.Level != zapcore.WarnLevel || m["key_id"] != k.ID || m["user_id"] != u.ID || m["change"] != "key" || m["error"] == nil || m["retry_in"] == nil {
			t.Errorf("failure logged as %v %v", e.Level, m)
		}
		if strings.Contains(fmt.Sprint(m), plain) {
			t.Errorf("log entry carries the key: %v", m)
		}
	}
	if !warned {
		t.Error("the failed re-read was not logged")
	}
}

// TestRetryDoesNotHoldUpOtherChanges: while one key's re-read keeps
// failing, a revoke of another key applies at once; the first applies once
// its record can be read again.
func TestRetryDoesNotHoldUpOtherChanges(t *testing.T) {
	v, other, fs, notify := flakyCluster(t, nil)
	ctx := context.Background()
	u := mustUser(t, v, "alice@example.com")
	plain1, k1, _ := v.CreateKey(u.ID, "one")
	plain2, k2, _ := v.CreateKey(u.ID, "two")
	for _, id := range []string{k1.ID, k2.ID} {
		if err := other.RevokeKey(ctx, u.ID, id, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	down := k1.ID
	fs.keyDown.Store(&down)
	notify(Change{Kind: ChangeKey, UserID: u.ID, KeyID: k1.ID})
	start := time.Now()
	notify(Change{Kind: ChangeKey, UserID: u.ID, KeyID: k2.ID})
	if !refused(v, plain2)() {
		t.Fatal("a revoke waited behind another key's failing re-read")
	}
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Errorf("the second change took %s", took)
	}
	if refused(v, plain1)() {
		t.Fatal("key one revoked though its re-read fails")
	}
	if p := v.ChangeStats().Pending; p != 1 {
		t.Errorf("pending = %d, want 1", p)
	}
	time.Sleep(600 * time.Millisecond) // a few retries fail
	fs.keyDown.Store(nil)
	waitFor(t, "key one's retry to apply", refused(v, plain1))
}

// TestLaterChangeSupersedesRetry: a change for a record whose retry is
// pending applies at once and the retry is dropped.
func TestLaterChangeSupersedesRetry(t *testing.T) {
	v, other, fs, notify := flakyCluster(t, nil)
	u := mustUser(t, v, "alice@example.com")
	plain, k, _ := v.CreateKey(u.ID, "laptop")
	fs.getKey.Store(1)
	notify(Change{Kind: ChangeKey, UserID: u.ID, KeyID: k.ID}) // say, a policy edit
	if p := v.ChangeStats().Pending; p != 1 {
		t.Fatalf("pending = %d after a failed re-read, want 1", p)
	}
	if err := other.RevokeKey(context.Background(), u.ID, k.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	notify(Change{Kind: ChangeKey, UserID: u.ID, KeyID: k.ID})
	if !refused(v, plain)() {
		t.Fatal("the later change did not apply at once")
	}
	time.Sleep(400 * time.Millisecond) // past the first retry's time
	if st := v.ChangeStats(); st.Pending != 0 || st.Retries != 0 || st.Applied != 1 {
		t.Errorf("stats = %+v, want the retry superseded", st)
	}
}

// TestFullReloadIsRetried: the reload after a listener reconnect
// (ChangeAll) fails three times and is retried until it catches the revoke
// that was never announced.
func TestFullReloadIsRetried(t *testing.T) {
	v, other, fs, notify := flakyCluster(t, nil)
	u := mustUser(t, v, "alice@example.com")
	plain, k, _ := v.CreateKey(u.ID, "laptop")
	if err := other.RevokeKey(context.Background(), u.ID, k.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	fs.listAll.Store(3)
	notify(Change{Kind: ChangeAll})
	waitFor(t, "the reload to be retried until it applies", refused(v, plain))
	waitFor(t, "the stats to settle", func() bool { return v.ChangeStats().Resyncs == 1 })
	if st := v.ChangeStats(); st.ResyncsFailed != 3 || st.Retries != 3 || st.Pending != 0 {
		t.Errorf("stats = %+v, want 3 failed reloads, 3 retries", st)
	}
}

// TestPeriodicResync: writes that were never announced (a lost
// notification) are in effect within the resync interval, and a resync
// keeps what is in flight: a concurrency slot held stays held.
func TestPeriodicResync(t *testing.T) {
	v, other, _, _ := flakyCluster(t, func(o *Options) { o.ResyncInterval = 50 * time.Millisecond })
	ctx := context.Background()
	alice, bob := mustUser(t, v, "alice@example.com"), mustUser(t, v, "bob@example.com")
	plainA, keyA, _ := v.CreateKey(alice.ID, "")
	plainB, _, _ := v.CreateKey(bob.ID, "")
	plainC, keyC, err := v.CreateKeyWithPolicy(alice.ID, "one at a time", keypolicy.Policy{Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	kc, _, err := v.VerifyKey(plainC)
	if err != nil {
		t.Fatal(err)
	}
	release, refusal := v.AdmitKey(kc)
	if refusal != nil {
		t.Fatalf("first request refused: %+v", refusal)
	}
	defer release()

	if err := other.RevokeKey(ctx, alice.ID, keyA.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	disabled := bob
	disabled.Disabled = true
	if err := other.UpdateUser(ctx, disabled); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waitFor(t, "the resync to catch the unannounced revoke", refused(v, plainA))
	waitFor(t, "the resync to catch the unannounced disable", func() bool {
		_, _, err := v.VerifyKey(plainB)
		return errors.Is(err, ErrUserDisabled)
	})
	if took := time.Since(start); took > time.Second {
		t.Errorf("caught after %s with a 50 ms interval", took)
	}
	n := v.ChangeStats().Resyncs
	waitFor(t, "more resyncs", func() bool { return v.ChangeStats().Resyncs >= n+3 })
	if _, refusal := v.AdmitKey(kc); refusal == nil {
		t.Fatal("a resync dropped the request in flight: a second concurrent request was admitted")
	}
	if got, _, err := v.VerifyKey(plainC); err != nil || got.ID != keyC.ID {
		t.Fatalf("an untouched key after resyncs: %+v, %v", got, err)
	}
}

// TestResyncKeepsLocalWrites: a key revoked here and one created here
// while a resync was reading are not undone by what it read.
func TestResyncKeepsLocalWrites(t *testing.T) {
	v, _, fs, notify := flakyCluster(t, nil)
	u := mustUser(t, v, "alice@example.com")
	plain, k, _ := v.CreateKey(u.ID, "revoked mid-read")
	var created string
	var once sync.Once
	hook := func() {
		once.Do(func() {
			if err := v.RevokeKey(u.ID, k.ID); err != nil {
				t.Error(err)
			}
			var err error
			if created, _, err = v.CreateKey(u.ID, "created mid-read"); err != nil {
				t.Error(err)
			}
		})
	}
	fs.afterListAll.Store(&hook)
	notify(Change{Kind: ChangeAll})
	if created == "" {
		t.Fatal("the hook did not run: the test no longer exercises the overlap")
	}
	if !refused(v, plain)() {
		t.Error("a resync made a key revoked here valid again")
	}
	if _, _, err := v.VerifyKey(created); err != nil {
		t.Errorf("a resync lost a key created here: %v", err)
	}
	if st := v.ChangeStats(); st.Resyncs != 1 || st.ResyncsFailed != 0 {
		t.Errorf("stats = %+v, want one resync (read again after the overlap)", st)
	}
}
