package postgres

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/internal/pgtest"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// testKey2 is the key a rotation moves to.
var testKey2 = base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat("n", 32)))

// rotationHeartbeat is the instances' heartbeat in the rotation tests.
const rotationHeartbeat = 50 * time.Millisecond

// refreshLoad forces refreshes of every user on every instance until
// stopped, and counts the ones that fail.
type refreshLoad struct {
	stop   chan struct{}
	wg     sync.WaitGroup
	ok     atomic.Int64
	mu     sync.Mutex
	failed []string
}

func startRefreshLoad(insts map[string]instance, users []string) *refreshLoad {
	l := &refreshLoad{stop: make(chan struct{})}
	for name, inst := range insts {
		for _, u := range users {
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				for {
					select {
					case <-l.stop:
						return
					case <-time.After(15 * time.Millisecond):
					}
					if _, _, err := inst.v.AccessToken(context.Background(), u, true); err != nil {
						l.mu.Lock()
						l.failed = append(l.failed, fmt.Sprintf("%s: %v", name, err))
						l.mu.Unlock()
						continue
					}
					l.ok.Add(1)
				}
			}()
		}
	}
	return l
}

// end stops the load and fails the test if any refresh failed.
func (l *refreshLoad) end(t *testing.T) {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	if len(l.failed) > 0 {
		t.Fatalf("%d refresh(es) failed (of %d), first: %s", len(l.failed), int64(len(l.failed))+l.ok.Load(), l.failed[0])
	}
	if l.ok.Load() == 0 {
		t.Fatal("no refresh ran")
	}
}

// TestRollingKeyRotation: three instances on one database rotate from K1
// to K2 one reload at a time, while refreshes run on all of them. A given
// [K2 K1] while B and C hold only K1 keeps sealing with K1 and does not
// re-encrypt, so B's and C's refreshes keep working; re-encryption runs
// once all three hold K2. Dropping K1 is refused while a record is sealed
// with it or a live instance seals with it (one still listing K1 first),
// and accepted once neither holds.
func TestRollingKeyRotation(t *testing.T) {
	dsn := pgtest.Start(t).NewDB(t)
	ep := newEndpoint("rt-0")
	const nUsers = 3
	for i := 1; i < nUsers; i++ {
		ep.valid[fmt.Sprintf("rt-0-%d", i)] = true
	}
	open := func(name string, keys ...string) instance {
		return openInstance(t, dsn, func(o *vault.Options) {
			o.Refresher = ep
			o.InstanceName = name
			o.InstanceHeartbeat = rotationHeartbeat
			o.EncryptionKeys = keys
		})
	}
	a, b, c := open("a", testKey), open("b", testKey), open("c", testKey)
	var users []string
	for i := range nUsers {
		u, err := a.v.CreateUser(fmt.Sprintf("u%d@example.com", i), "")
		if err != nil {
			t.Fatal(err)
		}
		rt := "rt-0"
		if i > 0 {
			rt = fmt.Sprintf("rt-0-%d", i)
		}
		if err := a.v.PutTokens(u.ID, bundle(rt, time.Now().Add(time.Hour))); err != nil {
			t.Fatal(err)
		}
		users = append(users, u.ID)
	}
	for _, inst := range []instance{b, c} {
		eventually(t, 2*time.Second, "every instance serves every user", func() bool {
			for _, u := range users {
				if _, _, err := inst.v.AccessToken(context.Background(), u, false); err != nil {
					return false
				}
			}
			return true
		})
	}
	id1, _ := vault.KeyID(testKey)
	id2, _ := vault.KeyID(testKey2)
	byKey := func() map[string]int {
		got, err := a.v.BundlesByKey()
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	reload := func(inst instance, keys ...string) error {
		s := inst.v.Settings()
		s.EncryptionKeys = keys
		if err := inst.v.CheckKeyRemoval(keys); err != nil {
			return err
		}
		return inst.v.Reconfigure(s)
	}

	load := startRefreshLoad(map[string]instance{"a": a, "b": b, "c": c}, users)
	settle := func() { time.Sleep(6 * rotationHeartbeat) }

	// 1. A gets [K2 K1]: it keeps sealing with K1, nothing is re-encrypted.
	if err := reload(a, testKey2, testKey); err != nil {
		t.Fatal(err)
	}
	settle()
	if got := byKey(); got[id1] != nUsers || got[id2] != 0 {
		t.Fatalf("with B and C on [K1], bundles by key: %v", got)
	}
	err := a.v.CheckKeyRemoval([]string{testKey2})
	if !errors.Is(err, vault.ErrKeyStillInUse) || !strings.Contains(err.Error(), fmt.Sprintf("still encrypts %d linked ChatGPT account(s)", nUsers)) ||
		!strings.Contains(err.Error(), "instance(s) b, c seal new logins with") {
		t.Fatalf("dropping K1 on A while B and C seal with it: %v", err)
	}

	// 2. B gets [K2 K1]: C still holds only K1.
	if err := reload(b, testKey2, testKey); err != nil {
		t.Fatal(err)
	}
	settle()
	if got := byKey(); got[id1] != nUsers || got[id2] != 0 {
		t.Fatalf("with C on [K1], bundles by key: %v", got)
	}

	// 3. C gets [K2 K1]: every instance holds K2, re-encryption runs.
	if err := reload(c, testKey2, testKey); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "re-encryption to K2", func() bool { got := byKey(); return got[id2] == nUsers && got[id1] == 0 })
	settle()
	if got := byKey(); got[id1] != 0 {
		t.Fatalf("after re-encryption, a refresh sealed with K1: %v", got)
	}

	// 4. A fourth instance still listing K1 first seals with it: K1 stays
	// in use until it is gone (a clean shutdown deregisters it).
	d := open("d", testKey, testKey2)
	err = a.v.CheckKeyRemoval([]string{testKey2})
	if !errors.Is(err, vault.ErrKeyStillInUse) || !strings.Contains(err.Error(), "instance(s) d seal new logins with") {
		t.Fatalf("dropping K1 while D seals with it: %v", err)
	}
	if err := reload(a, testKey2); !errors.Is(err, vault.ErrKeyStillInUse) {
		t.Fatalf("reload dropping K1 while D seals with it: %v", err)
	}
	if err := d.v.Close(); err != nil {
		t.Fatal(err)
	}

	// 5. K1 goes, one instance at a time; refreshes keep working.
	for _, inst := range []instance{a, b, c} {
		if err := reload(inst, testKey2); err != nil {
			t.Fatalf("dropping K1: %v", err)
		}
		settle()
	}
	load.end(t)
	if got := byKey(); got[id2] != nUsers || len(got) != 1 {
		t.Fatalf("bundles by key at the end: %v", got)
	}
	if n := ep.reused(); n != 0 {
		t.Fatalf("a spent refresh token was presented %d times", n)
	}
}

// TestKilledInstanceStopsCounting: an instance that stops heartbeating
// without deregistering (killed, cut off) holds back re-encryption only
// until it has missed 3 heartbeats.
func TestKilledInstanceStopsCounting(t *testing.T) {
	dsn := pgtest.Start(t).NewDB(t)
	open := func(name string, keys ...string) instance {
		return openInstance(t, dsn, func(o *vault.Options) {
			o.InstanceName = name
			o.InstanceHeartbeat = rotationHeartbeat
			o.EncryptionKeys = keys
		})
	}
	a := open("a", testKey)
	u, err := a.v.CreateUser("u@example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.v.PutTokens(u.ID, bundle("rt-0", time.Now().Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	b := open("b", testKey)
	s := a.v.Settings()
	s.EncryptionKeys = []string{testKey2, testKey}
	if err := a.v.Reconfigure(s); err != nil {
		t.Fatal(err)
	}
	id2, _ := vault.KeyID(testKey2)
	time.Sleep(6 * rotationHeartbeat)
	if got, _ := a.v.BundlesByKey(); got[id2] != 0 {
		t.Fatalf("re-encrypted while B holds only K1: %v", got)
	}
	// B dies: its store goes (no more heartbeats) but its record stays.
	b.s.Close()
	took := eventually(t, 5*time.Second, "re-encryption once B is gone", func() bool { got, _ := a.v.BundlesByKey(); return got[id2] == 1 })
	if took < 2*rotationHeartbeat {
		t.Fatalf("B stopped counting after %s, before missing 3 heartbeats", took)
	}
}
