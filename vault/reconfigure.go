package vault

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// Changing an open vault's settings: a long-running owner (a Caddy app that
// keeps the vault across config reloads) applies a new config's secrets and
// retention without closing the file.

// ErrKeyStillInUse reports an encryption key that a new key list leaves
// out while some stored token bundle is still sealed with it, or another
// live instance on the database still seals new bundles with it; dropping
// it would make those users' ChatGPT tokens undecryptable.
var ErrKeyStillInUse = errors.New("vault: an encryption key being removed is still in use: it seals stored ChatGPT tokens, or another instance seals new ones with it")

// KeyInUseError details ErrKeyStillInUse: which keys (by KeyID) the new
// list drops, how many token bundles each still seals, and which other
// live instances on the database still seal new bundles with it.
type KeyInUseError struct {
	Bundles   map[string]int      // key id → bundles sealed with it
	Instances map[string][]string // key id → names of instances sealing with it
}

// keyIDs are the ids of the keys in use, sorted.
func (e *KeyInUseError) keyIDs() []string {
	var ids []string
	for id := range e.Bundles {
		ids = append(ids, id)
	}
	for id := range e.Instances {
		if _, ok := e.Bundles[id]; !ok {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// uses describes what still uses the key id.
func (e *KeyInUseError) uses(id string) string {
	var parts []string
	if n := e.Bundles[id]; n > 0 {
		parts = append(parts, fmt.Sprintf("seals %d bundle(s)", n))
	}
	if names := e.Instances[id]; len(names) > 0 {
		parts = append(parts, fmt.Sprintf("is what instance(s) %s seal with", strings.Join(names, ", ")))
	}
	return strings.Join(parts, " and ")
}

// Error names the keys by id and use, never by value.
func (e *KeyInUseError) Error() string {
	ids := e.keyIDs()
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprintf("key %s %s", id, e.uses(id))
	}
	return fmt.Sprintf("%v: %s", ErrKeyStillInUse, strings.Join(parts, ", "))
}

// Is makes errors.Is(err, ErrKeyStillInUse) true.
func (e *KeyInUseError) Is(target error) bool { return target == ErrKeyStillInUse }

// KeyID returns the id stored records name an encryption key by (see
// ParseKey for the accepted forms). It identifies the key without
// revealing it.
func KeyID(encoded string) (string, error) {
	keys, err := parseKeys([]string{encoded})
	if err != nil {
		return "", err
	}
	return keys[0].id, nil
}

// CheckKeys reports whether Open would accept these encryption keys,
// without opening anything. Errors never contain a key.
func CheckKeys(encryptionKeys []string) error {
	if len(encryptionKeys) == 0 {
		return errors.New("vault: at least one 32-byte encryption key is needed")
	}
	_, err := parseKeys(encryptionKeys)
	return err
}

// CheckPepper reports whether Open would accept this pepper.
func CheckPepper(pepper string) error {
	if len(pepper) < minPepperLen {
		return fmt.Errorf("vault: the pepper must be at least %d bytes", minPepperLen)
	}
	return nil
}

// BundlesByKey counts the stored token bundles per encryption key id: of
// every instance on the database.
func (v *Vault) BundlesByKey() (map[string]int, error) {
	if v.cluster.reg != nil {
		return v.cluster.reg.TokensByKey(context.Background())
	}
	all, err := v.store.ListTokens(context.Background())
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, rec := range all {
		out[rec.KeyID]++
	}
	return out, nil
}

// updateTokens is Store.UpdateTokens under the seal lock's read side, so
// SetEncryptionKeys never counts bundles while one is being sealed.
func (v *Vault) updateTokens(ctx context.Context, ref AccountRef, fn func(cur *TokenRecord) (*TokenRecord, error)) error {
	v.sealMu.RLock()
	defer v.sealMu.RUnlock()
	return v.store.UpdateTokens(ctx, ref.UserID, ref.ID, fn)
}

// SetEncryptionKeys replaces the encryption keys: all of them open, and
// keys[0] seals from now on — or, while another live instance on the
// database does not hold it, the first key they all hold (instances.go).
// It refuses with a *KeyInUseError (ErrKeyStillInUse) to drop a key that
// still seals some stored token bundle or that another live instance
// still seals with; run ReencryptAll with the new key first (and the old
// one still listed), and reload the other instances, to free it. Bundles
// sealed with a key that was not configured before either are not its
// concern: nobody here could open them anyway. The check and the swap
// happen in one critical section that every seal of a stored bundle
// (updateTokens) excludes, so no bundle is sealed with a dropped key in
// between.
func (v *Vault) SetEncryptionKeys(keys []string) error {
	if len(keys) == 0 {
		return errors.New("vault: SetEncryptionKeys needs at least one 32-byte key")
	}
	next, err := parseKeys(keys)
	if err != nil {
		return err
	}
	err = v.swapKeys(next)
	if err == nil {
		// Tell the others at once what this instance holds now.
		ctx, cancel := context.WithTimeout(context.Background(), v.opts.InstanceHeartbeat)
		defer cancel()
		if herr := v.heartbeat(ctx); herr != nil {
			v.logWarn("vault: recording this instance's new encryption keys failed; retrying at the next heartbeat", "error", herr)
		}
	}
	return err
}

// swapKeys is SetEncryptionKeys' check and swap, under the seal lock.
func (v *Vault) swapKeys(next []aeadKey) error {
	v.sealMu.Lock()
	defer v.sealMu.Unlock()
	inUse, err := v.keysInUse(next)
	if err != nil {
		return err
	}
	if inUse != nil {
		return inUse
	}
	v.cluster.mu.Lock()
	peers := v.cluster.peers
	v.cluster.mu.Unlock()
	seal, _ := sealKeyFor(ids(next), peers)
	v.keyring.store(next, seal)
	return nil
}

// keysInUse reports the keys in force that next leaves out while a stored
// bundle or another live instance still seals with them (nil if none).
func (v *Vault) keysInUse(next []aeadKey) (*KeyInUseError, error) {
	dropped := map[string]bool{}
	for _, k := range v.keyring.keys() {
		if keyIndex(next, k.id) < 0 {
			dropped[k.id] = true
		}
	}
	if len(dropped) == 0 {
		return nil, nil
	}
	counts, err := v.BundlesByKey()
	if err != nil {
		return nil, fmt.Errorf("counting token bundles per encryption key: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), v.opts.InstanceHeartbeat)
	defer cancel()
	sealing, err := v.peersSealingWith(ctx, dropped)
	if err != nil {
		return nil, fmt.Errorf("reading which instances seal with which encryption key: %w", err)
	}
	e := &KeyInUseError{Bundles: map[string]int{}, Instances: map[string][]string{}}
	for id := range dropped {
		if n := counts[id]; n > 0 {
			e.Bundles[id] = n
		}
		if names := sealing[id]; len(names) > 0 {
			e.Instances[id] = names
		}
	}
	if len(e.Bundles) == 0 && len(e.Instances) == 0 {
		return nil, nil
	}
	return e, nil
}

// pepperState is a pepper set by SetPepper with the MAC states keyed by it.
type pepperState struct {
	pepper []byte
	macs   sync.Pool
}

// SetPepper replaces the pepper API keys are hashed with. Every API key
// created under the old pepper stops verifying at once: the vault keeps
// only their hashes, so they cannot be re-hashed.
func (v *Vault) SetPepper(pepper string) error {
	if err := CheckPepper(pepper); err != nil {
		return err
	}
	// A fresh pool: MAC states keyed by the old pepper must not be reused.
	v.repeppered.Store(&pepperState{pepper: []byte(pepper)})
	return nil
}

// SetLogRetention changes how long request-log records are kept; the
// hourly purge applies it (d <= 0 means DefaultLogRetention).
func (v *Vault) SetLogRetention(d time.Duration) {
	if d <= 0 {
		d = DefaultLogRetention
	}
	v.retention.Store(int64(d))
}

// logRetention is the retention in force.
func (v *Vault) logRetention() time.Duration {
	if d := v.retention.Load(); d > 0 {
		return time.Duration(d)
	}
	return v.opts.LogRetention
}
