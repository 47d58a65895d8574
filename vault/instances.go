package vault

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// Key rotation on a cluster. Instances sharing a database must be able to
// open every token bundle any of them seals, and a rolling reload gives
// them different key lists for a while. On an InstanceRegistry each
// instance therefore records the key ids it holds and the one it seals
// with, and heartbeats; from the live instances it derives:
//   - the key it seals with: its first key every live instance holds, so
//     an instance given [K2 K1] keeps sealing with K1 until the others
//     hold K2 too (a refresh it commits stays readable by them);
//   - when re-encryption to a new first key may start: once it seals with
//     it, i.e. every live instance holds it (rotation.go);
//   - whether a key may be dropped: not while a live instance seals with
//     it (nor while a stored bundle is sealed with it).
// Without a registry (bbolt: one process) the instance is alone and the
// first key seals at once.

// InstanceRegistry is what a Store shared by several instances implements
// so that they can rotate encryption keys one at a time. Liveness is
// judged by the store's clock, so clock skew between instances does not
// matter. The bbolt engine does not implement it: one process.
type InstanceRegistry interface {
	// Heartbeat records inst as seen now, replacing what was recorded for
	// inst.ID, and returns every instance seen within the last window,
	// inst included.
	Heartbeat(ctx context.Context, inst Instance, window time.Duration) ([]Instance, error)
	// LiveInstances returns every instance seen within the last window.
	LiveInstances(ctx context.Context, window time.Duration) ([]Instance, error)
	// Deregister forgets the instance id (a clean shutdown); an unknown id
	// is not an error.
	Deregister(ctx context.Context, id string) error
	// TokensByKey counts the stored token bundles of every instance by the
	// id of the key that seals them.
	TokensByKey(ctx context.Context) (map[string]int, error)
}

// Instance is one vault's record in an InstanceRegistry. It names keys by
// id (KeyID), never by value.
type Instance struct {
	// ID is random, chosen when the vault opens.
	ID string
	// Name tells an operator which process it is: host name and pid.
	Name string
	// KeyIDs are the ids of the keys the instance holds, first key first.
	KeyIDs []string
	// SealKeyID is the id of the key it seals new bundles with.
	SealKeyID string
	// Seen is when it last heartbeat, by the store's clock (set by the
	// store; ignored by Heartbeat).
	Seen time.Time
}

// DefaultInstanceHeartbeat is Options.InstanceHeartbeat's default.
const DefaultInstanceHeartbeat = 10 * time.Second

// missedHeartbeats is how many heartbeats an instance may miss before it
// stops counting as live (killed, or cut off from the database).
const missedHeartbeats = 3

// cluster is the vault's view of the other instances on its database.
type cluster struct {
	reg  InstanceRegistry // nil: a single process
	id   string
	name string

	mu     sync.Mutex
	peers  []Instance // live instances other than this one, at the last heartbeat
	warned string     // the last peer-key warning logged, not to repeat it
	failed bool       // the last heartbeat failed (logged once per outage)
}

// window is how long an instance counts as live after its last heartbeat.
func (v *Vault) window() time.Duration {
	return missedHeartbeats * v.opts.InstanceHeartbeat
}

// startCluster registers this instance, before the vault seals anything,
// so it seals with a key every live instance holds from the start.
func (v *Vault) startCluster(ctx context.Context) error {
	reg, ok := v.store.(InstanceRegistry)
	if !ok {
		return nil
	}
	c := &v.cluster
	c.reg = reg
	c.id = randomID()
	c.name = v.opts.InstanceName
	if err := v.heartbeat(ctx); err != nil {
		return fmt.Errorf("vault: registering this instance's encryption keys: %w", err)
	}
	return nil
}

// heartbeat records this instance, re-reads the live ones and seals with
// the first key they all hold. When that changes the key this instance
// seals with, it records the change at once.
func (v *Vault) heartbeat(ctx context.Context) error {
	c := &v.cluster
	if c.reg == nil {
		return nil
	}
	for range 2 {
		seal := v.keyring.sealID()
		live, err := c.reg.Heartbeat(ctx, v.self(), v.window())
		if err != nil {
			return err
		}
		var peers []Instance
		for _, in := range live {
			if in.ID != c.id {
				peers = append(peers, in)
			}
		}
		c.mu.Lock()
		c.peers = peers
		c.mu.Unlock()
		v.chooseSealKey(peers)
		if v.keyring.sealID() == seal {
			return nil
		}
	}
	return nil
}

// self is this instance's record as of now.
func (v *Vault) self() Instance {
	return Instance{ID: v.cluster.id, Name: v.cluster.name, KeyIDs: ids(v.keyring.keys()), SealKeyID: v.keyring.sealID()}
}

// chooseSealKey makes this instance seal with its first key that every
// peer holds, and warns when a peer seals with a key it cannot open.
func (v *Vault) chooseSealKey(peers []Instance) {
	keys := v.keyring.keys()
	id, ok := sealKeyFor(ids(keys), peers)
	if !ok {
		v.warnPeers("no encryption_key of this instance is held by every other instance on the database; new logins are sealed with the first one, which some instances cannot open: give every instance the same keys", peers)
	}
	if prev := v.keyring.sealID(); v.keyring.sealWith(id) && prev != id {
		if id == keys[0].id {
			v.logInfo("every live instance holds the first encryption_key; new token bundles are sealed with it", "key_id", id)
		} else {
			v.logInfo("another instance does not hold the first encryption_key yet; new token bundles are sealed with a key every instance holds", "key_id", id, "first_key_id", keys[0].id)
		}
	}
	var foreign []string
	for _, p := range peers {
		if p.SealKeyID != "" && !slices.Contains(ids(keys), p.SealKeyID) {
			foreign = append(foreign, fmt.Sprintf("%s (seals with key id %s)", p.Name, p.SealKeyID))
		}
	}
	if len(foreign) > 0 {
		v.warnPeers("other instances seal ChatGPT logins with a key this instance does not hold; it cannot refresh those logins: list their key in encryption_key", foreign)
	}
}

// warnPeers logs msg once for a given detail.
func (v *Vault) warnPeers(msg string, detail any) {
	c := &v.cluster
	key := fmt.Sprint(msg, detail)
	c.mu.Lock()
	repeat := c.warned == key
	c.warned = key
	c.mu.Unlock()
	if !repeat {
		v.logWarn(msg, "instances", fmt.Sprint(detail))
	}
}

// sealKeyFor is the first of keyIDs that every peer holds; if there is
// none, keyIDs[0] and false.
func sealKeyFor(keyIDs []string, peers []Instance) (string, bool) {
	for _, id := range keyIDs {
		if !slices.ContainsFunc(peers, func(p Instance) bool { return !slices.Contains(p.KeyIDs, id) }) {
			return id, true
		}
	}
	return keyIDs[0], false
}

// heartbeats keeps this instance's record alive until Close.
func (v *Vault) heartbeats() {
	defer v.bg.Done()
	t := time.NewTicker(v.opts.InstanceHeartbeat)
	defer t.Stop()
	for {
		select {
		case <-v.stop:
			return
		case <-t.C:
			v.beat()
		}
	}
}

// beat is one heartbeat, its failure logged once per outage: meanwhile
// the instance keeps the key it seals with.
func (v *Vault) beat() {
	ctx, cancel := context.WithTimeout(context.Background(), v.opts.InstanceHeartbeat)
	defer cancel()
	err := v.heartbeat(ctx)
	c := &v.cluster
	c.mu.Lock()
	was := c.failed
	c.failed = err != nil
	c.mu.Unlock()
	switch {
	case err != nil && !was:
		v.logWarn("vault: recording this instance's encryption keys failed; retrying at the next heartbeat", "error", err)
	case err == nil && was:
		v.logInfo("vault: recording this instance's encryption keys works again")
	}
}

// deregister removes this instance's record at Close, so it stops
// counting at once rather than after missed heartbeats.
func (v *Vault) deregister() {
	c := &v.cluster
	if c.reg == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), v.opts.InstanceHeartbeat)
	defer cancel()
	if err := c.reg.Deregister(ctx, c.id); err != nil {
		v.logWarn("vault: removing this instance's record failed; the others stop counting it after missed heartbeats", "error", err)
	}
}

// peersWithout names the live peers that do not hold the key id.
func (v *Vault) peersWithout(id string) []string {
	c := &v.cluster
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, p := range c.peers {
		if !slices.Contains(p.KeyIDs, id) {
			out = append(out, p.Name)
		}
	}
	return out
}

// peersSealingWith reads the live instances other than this one and
// returns, for each of the key ids dropped, the names of those that seal
// with it.
func (v *Vault) peersSealingWith(ctx context.Context, dropped map[string]bool) (map[string][]string, error) {
	c := &v.cluster
	if c.reg == nil || len(dropped) == 0 {
		return nil, nil
	}
	live, err := c.reg.LiveInstances(ctx, v.window())
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, in := range live {
		if in.ID != c.id && dropped[in.SealKeyID] {
			out[in.SealKeyID] = append(out[in.SealKeyID], in.Name)
		}
	}
	for _, names := range out {
		slices.Sort(names)
	}
	return out, nil
}

// randomID is a new instance id.
func randomID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// instanceName is host:pid, for operators.
func instanceName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	return fmt.Sprintf("%s:%d", strings.TrimSpace(host), os.Getpid())
}
