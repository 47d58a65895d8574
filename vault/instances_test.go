package vault

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeRegistry is an InstanceRegistry over a real bbolt store: the vault
// under test registers in it, and the test plays the other instances by
// writing their records.
type fakeRegistry struct {
	TestStore
	mu    sync.Mutex
	insts map[string]Instance
}

func (r *fakeRegistry) Heartbeat(ctx context.Context, in Instance, window time.Duration) ([]Instance, error) {
	r.mu.Lock()
	in.Seen = time.Now()
	r.insts[in.ID] = in
	r.mu.Unlock()
	return r.LiveInstances(ctx, window)
}

func (r *fakeRegistry) LiveInstances(_ context.Context, window time.Duration) ([]Instance, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Instance
	for _, in := range r.insts {
		if time.Since(in.Seen) <= window {
			out = append(out, in)
		}
	}
	return out, nil
}

func (r *fakeRegistry) Deregister(_ context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.insts, id)
	return nil
}

func (r *fakeRegistry) TokensByKey(ctx context.Context) (map[string]int, error) {
	all, err := r.ListTokens(ctx)
	out := map[string]int{}
	for _, rec := range all {
		out[rec.KeyID]++
	}
	return out, err
}

// peer records another instance holding keys (by id), sealing with the
// first, seen now.
func (r *fakeRegistry) peer(name string, keyIDs ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.insts[name] = Instance{ID: name, Name: name, KeyIDs: keyIDs, SealKeyID: keyIDs[0], Seen: time.Now()}
}

// stale makes the instance's last heartbeat long past (killed).
func (r *fakeRegistry) stale(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	in := r.insts[name]
	in.Seen = time.Now().Add(-time.Hour)
	r.insts[name] = in
}

// names are the registered instances.
func (r *fakeRegistry) names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, in := range r.insts {
		out = append(out, in.Name)
	}
	slices.Sort(out)
	return out
}

// heartbeatEvery is the tests' heartbeat: 3 missed ones are 60 ms.
const heartbeatEvery = 20 * time.Millisecond

// newRegisteredVault opens a vault on a bbolt store wrapped in reg, with
// peers already registered, named "a".
func newRegisteredVault(t *testing.T, logs *syncBuffer, peers func(*fakeRegistry)) (*Vault, *fakeRegistry) {
	t.Helper()
	opts := testOptions(newClock())
	opts.InstanceHeartbeat = heartbeatEvery
	opts.InstanceName = "a"
	opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	o, _ := opts.withDefaults()
	st, err := OpenTestStore(filepath.Join(t.TempDir(), "vault.db"), o.OpenTimeout, o.Logger)
	if err != nil {
		t.Fatal(err)
	}
	reg := &fakeRegistry{TestStore: st, insts: map[string]Instance{}}
	if peers != nil {
		peers(reg)
	}
	v, err := New(reg, opts)
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v, reg
}

// keepAlive heartbeats the peer (by its current record) until the test
// ends or stop is closed.
func keepAlive(t *testing.T, reg *fakeRegistry, name string) (stop func()) {
	done := make(chan struct{})
	var once sync.Once
	go func() {
		tk := time.NewTicker(heartbeatEvery)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case <-tk.C:
				reg.mu.Lock()
				if in, ok := reg.insts[name]; ok {
					in.Seen = time.Now()
					reg.insts[name] = in
				}
				reg.mu.Unlock()
			}
		}
	}()
	stop = func() { once.Do(func() { close(done) }) }
	t.Cleanup(stop)
	return stop
}

// TestRollingRotationWaitsForEveryInstance: an instance given [K2 K1]
// while another live instance holds only K1 keeps sealing with K1 and does
// not re-encrypt, logging what it waits for; dropping K1 is refused while
// the other seals with it or a bundle is sealed with it. Once the other
// holds K2, new bundles are sealed with K2, everything is re-encrypted,
// and K1 can go.
func TestRollingRotationWaitsForEveryInstance(t *testing.T) {
	logs := &syncBuffer{}
	id1, _ := KeyID(testKey1)
	id2, _ := KeyID(testKey2)
	v, reg := newRegisteredVault(t, logs, func(r *fakeRegistry) { r.peer("b", id1) })
	keepAlive(t, reg, "b")
	u := mustUser(t, v, "a@x.io")
	if err := v.PutTokens(u.ID, bundle("rt-a", t0.Add(2*time.Hour))); err != nil {
		t.Fatal(err)
	}
	base := v.Settings()
	rotate := base
	rotate.EncryptionKeys = []string{testKey2, testKey1}
	if err := v.Reconfigure(rotate); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the message saying what re-encryption waits for", func() bool {
		return strings.Contains(logs.String(), "waits until every live instance holds it") &&
			strings.Contains(logs.String(), "instances_without_it=b")
	})
	// A write now (a link or a refresh) must stay readable by b.
	u2 := mustUser(t, v, "c@x.io")
	if err := v.PutTokens(u2.ID, bundle("rt-c", t0.Add(2*time.Hour))); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * heartbeatEvery)
	if got, _ := v.BundlesByKey(); got[id1] != 2 || got[id2] != 0 {
		t.Fatalf("bundles by key while b holds only K1: %v", got)
	}
	drop := []string{testKey2}
	err := v.CheckKeyRemoval(drop)
	if !errors.Is(err, ErrKeyStillInUse) || !strings.Contains(err.Error(), "instance(s) b seal new logins with") ||
		!strings.Contains(err.Error(), "still encrypts 2 linked ChatGPT account(s)") || strings.Contains(err.Error(), testKey1) {
		t.Fatalf("dropping K1 while b seals with it: %v", err)
	}

	// b is reloaded with [K2 K1].
	reg.peer("b", id2, id1)
	waitFor(t, "re-encryption once b holds K2", func() bool { got, _ := v.BundlesByKey(); return got[id2] == 2 && got[id1] == 0 })
	waitFor(t, "the re-encrypted message", func() bool { return strings.Contains(logs.String(), reencryptedMsg) })
	if v.keyring.sealID() != id2 {
		t.Fatalf("seals with %s, want K2 %s", v.keyring.sealID(), id2)
	}

	// No bundle is sealed with K1 any more, but a live instance that
	// still seals with it (listed first there) keeps it in use.
	reg.peer("b", id1, id2)
	err = v.CheckKeyRemoval(drop)
	if !errors.Is(err, ErrKeyStillInUse) || !strings.Contains(err.Error(), "instance(s) b seal new logins with") ||
		strings.Contains(err.Error(), "linked ChatGPT account") {
		t.Fatalf("dropping K1 while b seals with it and no bundle does: %v", err)
	}
	next := rotate
	next.EncryptionKeys = drop
	if err := v.Reconfigure(next); !errors.Is(err, ErrKeyStillInUse) {
		t.Fatalf("reconfigure dropping K1 while b seals with it: %v", err)
	}
	reg.peer("b", id2, id1)
	if err := v.CheckKeyRemoval(drop); err != nil {
		t.Fatalf("check once nothing uses K1: %v", err)
	}
	if err := v.Reconfigure(next); err != nil {
		t.Fatalf("dropping K1 once nothing uses it: %v", err)
	}
	waitFor(t, "a's record to show the new keys", func() bool {
		live, _ := reg.LiveInstances(context.Background(), time.Minute)
		i := slices.IndexFunc(live, func(in Instance) bool { return in.Name == "a" })
		return i >= 0 && slices.Equal(live[i].KeyIDs, []string{id2}) && live[i].SealKeyID == id2
	})
}

// TestDeadInstanceStopsCounting: an instance that stops heartbeating
// (killed) no longer holds back re-encryption after 3 missed heartbeats,
// and a closed vault removes its own record.
func TestDeadInstanceStopsCounting(t *testing.T) {
	logs := &syncBuffer{}
	id1, _ := KeyID(testKey1)
	id2, _ := KeyID(testKey2)
	v, reg := newRegisteredVault(t, logs, func(r *fakeRegistry) { r.peer("b", id1) })
	stop := keepAlive(t, reg, "b")
	u := mustUser(t, v, "a@x.io")
	if err := v.PutTokens(u.ID, bundle("rt-a", t0.Add(2*time.Hour))); err != nil {
		t.Fatal(err)
	}
	s := v.Settings()
	s.EncryptionKeys = []string{testKey2, testKey1}
	if err := v.Reconfigure(s); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * heartbeatEvery)
	if got, _ := v.BundlesByKey(); got[id1] != 1 {
		t.Fatalf("re-encrypted while b is alive without K2: %v", got)
	}
	stop()
	reg.stale("b")
	waitFor(t, "re-encryption once b is gone", func() bool { got, _ := v.BundlesByKey(); return got[id2] == 1 })
	if got := reg.names(); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("registered: %v", got)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if got := reg.names(); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("registered after a's Close: %v", got)
	}
}

// TestCloseWhileWaitingForInstances: Close does not hang on a
// re-encryption that waits for another instance.
func TestCloseWhileWaitingForInstances(t *testing.T) {
	id1, _ := KeyID(testKey1)
	v, reg := newRegisteredVault(t, &syncBuffer{}, func(r *fakeRegistry) { r.peer("b", id1) })
	keepAlive(t, reg, "b")
	s := v.Settings()
	s.EncryptionKeys = []string{testKey2, testKey1}
	if err := v.Reconfigure(s); err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- v.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs while re-encryption waits for b")
	}
}

// TestSealKeyFor: the first own key every peer holds seals.
func TestSealKeyFor(t *testing.T) {
	peer := func(ids ...string) Instance { return Instance{KeyIDs: ids} }
	for _, tc := range []struct {
		name  string
		own   []string
		peers []Instance
		want  string
		ok    bool
	}{
		{"alone", []string{"k2", "k1"}, nil, "k2", true},
		{"peer without the new key", []string{"k2", "k1"}, []Instance{peer("k1")}, "k1", true},
		{"peer with both", []string{"k2", "k1"}, []Instance{peer("k1", "k2")}, "k2", true},
		{"one of two peers lags", []string{"k2", "k1"}, []Instance{peer("k2", "k1"), peer("k1")}, "k1", true},
		{"no common key", []string{"k2"}, []Instance{peer("k1")}, "k2", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := sealKeyFor(tc.own, tc.peers)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("sealKeyFor = %s, %t; want %s, %t", got, ok, tc.want, tc.ok)
			}
		})
	}
}
