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
// out while some stored token bundle is still sealed with it; dropping it
// would make those users' ChatGPT tokens undecryptable.
var ErrKeyStillInUse = errors.New("vault: an encryption key being removed still encrypts stored ChatGPT tokens")

// KeyInUseError details ErrKeyStillInUse: which keys (by KeyID) the new
// list drops and how many token bundles each still seals.
type KeyInUseError struct {
	Bundles map[string]int // key id → bundles sealed with it
}

// Error names the keys by id and count, never by value.
func (e *KeyInUseError) Error() string {
	ids := make([]string, 0, len(e.Bundles))
	for id := range e.Bundles {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprintf("key %s seals %d bundle(s)", id, e.Bundles[id])
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

// BundlesByKey counts the stored token bundles per encryption key id.
func (v *Vault) BundlesByKey() (map[string]int, error) {
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

// SetEncryptionKeys replaces the encryption keys: keys[0] seals from now
// on, all of them open. It refuses with a *KeyInUseError (ErrKeyStillInUse)
// to drop a key that still seals some token bundle; run ReencryptAll with
// the new key first (and the old one still listed) to free it. Bundles
// sealed with a key that was not configured before either are not its
// concern: nobody could open them anyway. The check and the swap happen in
// one critical section that every seal of a stored bundle (updateTokens)
// excludes, so no bundle is sealed with a dropped key in between.
func (v *Vault) SetEncryptionKeys(keys []string) error {
	if len(keys) == 0 {
		return errors.New("vault: SetEncryptionKeys needs at least one 32-byte key")
	}
	next, err := parseKeys(keys)
	if err != nil {
		return err
	}
	v.sealMu.Lock()
	defer v.sealMu.Unlock()
	counts, err := v.BundlesByKey()
	if err != nil {
		return err
	}
	kept := map[string]bool{}
	for _, k := range next {
		kept[k.id] = true
	}
	inUse := map[string]int{}
	for _, k := range v.keyring.keys() {
		if n := counts[k.id]; !kept[k.id] && n > 0 {
			inUse[k.id] = n
		}
	}
	if len(inUse) > 0 {
		return &KeyInUseError{Bundles: inUse}
	}
	v.keyring.cur.Store(&next)
	return nil
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
