package vault

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"hash"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/usemysub/caddy-codex-proxy/keypolicy"
)

// API key format: "cpk_" + base64url(32 random bytes), no padding.
const (
	keyPrefix      = "cpk_"
	keyRandomBytes = 32
	keyDisplayLen  = 12 // characters of the plaintext shown in dashboards
	maxKeyInputLen = 256
	maxLabelLen    = 100
	// lastUsedEvery is the resolution of Key.LastUsed: a key used all day
	// costs one write a minute, not one per request.
	lastUsedEvery = time.Minute
)

// Key is an API key's metadata. The plaintext is shown once, at creation;
// the vault keeps only its HMAC.
type Key struct {
	ID       string    `json:"id"`
	UserID   string    `json:"user_id"`
	Prefix   string    `json:"prefix"` // first characters, to tell keys apart
	Label    string    `json:"label"`
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"last_used"` // zero if never used
	Disabled bool      `json:"disabled"`
	// Policy limits what the key may do; the zero value limits nothing.
	Policy keypolicy.Policy `json:"policy,omitzero"`
	// UsageReset is when the owner last reset the key's usage counters;
	// requests before it do not count against the key's budgets.
	UsageReset time.Time `json:"usage_reset,omitzero"`
}

// keyEntry is an active key in the in-memory index.
type keyEntry struct {
	key      Key // LastUsed here is ignored; see lastUsed
	hash     [32]byte
	lastUsed atomic.Int64 // unix nanoseconds, 0 = never
	dirty    atomic.Bool  // lastUsed not yet written
}

// dummyHash is compared against when no key matches, so a miss costs the
// same as a hit.
var dummyHash [32]byte

// CreateKey makes a new API key for the user and returns its plaintext,
// which is never stored.
func (v *Vault) CreateKey(userID, label string) (string, Key, error) {
	return v.CreateKeyWithPolicy(userID, label, keypolicy.Policy{})
}

// CreateKeyWithPolicy is CreateKey with a policy, which must be valid
// (keypolicy.Policy.Validate).
func (v *Vault) CreateKeyWithPolicy(userID, label string, policy keypolicy.Policy) (string, Key, error) {
	if err := policy.Validate(v.now()); err != nil {
		return "", Key{}, err
	}
	label = strings.TrimSpace(label)
	if len(label) > maxLabelLen {
		return "", Key{}, fmt.Errorf("vault: key label is longer than %d bytes", maxLabelLen)
	}
	var raw [keyRandomBytes]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", Key{}, fmt.Errorf("vault: random key: %w", err)
	}
	plaintext := keyPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	sum := v.keyHash(plaintext)
	k := Key{
		ID:      uuid.NewString(),
		UserID:  userID,
		Prefix:  plaintext[:keyDisplayLen],
		Label:   label,
		Created: v.now().UTC(),
		Policy:  policy.Clone(),
	}
	v.lockCaches()
	defer v.mu.Unlock()
	if _, ok := v.users[userID]; !ok {
		return "", Key{}, ErrNotFound
	}
	if err := v.store.CreateKey(context.Background(), KeyRecord{Key: k, Hash: sum[:]}); err != nil {
		return "", Key{}, err
	}
	v.indexKey(k, sum)
	return plaintext, k, nil
}

// VerifyKey checks an API key and returns it with its user. It reads only
// memory: no disk access, no write. Unknown and revoked keys both fail with
// ErrKeyInvalid.
func (v *Vault) VerifyKey(plaintext string) (Key, User, error) {
	if len(plaintext) > maxKeyInputLen {
		return Key{}, User{}, ErrKeyInvalid
	}
	sum := v.keyHash(plaintext)
	v.mu.RLock()
	e := v.keysByHash[sum]
	var u User
	var userOK bool
	if e != nil {
		u, userOK = v.users[e.key.UserID]
	}
	v.mu.RUnlock()
	if e == nil {
		hmac.Equal(sum[:], dummyHash[:])
		return Key{}, User{}, ErrKeyInvalid
	}
	// The map lookup found it by hash already; the constant-time compare is
	// what decides.
	if !hmac.Equal(sum[:], e.hash[:]) || !userOK {
		return Key{}, User{}, ErrKeyInvalid
	}
	if u.Disabled {
		return Key{}, User{}, ErrUserDisabled
	}
	k := e.key
	k.LastUsed = v.touchKey(e)
	return k, u, nil
}

// touchKey records a use in memory, at most once per lastUsedEvery; the
// background flusher writes it. It returns the recorded last-used time.
func (v *Vault) touchKey(e *keyEntry) time.Time {
	now := v.now().UnixNano()
	last := e.lastUsed.Load()
	if now-last >= int64(lastUsedEvery) && e.lastUsed.CompareAndSwap(last, now) {
		e.dirty.Store(true)
		v.keysDirty.Store(true)
	}
	return unixNano(e.lastUsed.Load())
}

// RevokeKey disables one of the user's keys. When it returns, VerifyKey
// already rejects the key.
func (v *Vault) RevokeKey(userID, keyID string) error {
	v.lockCaches()
	defer v.mu.Unlock()
	var lastUsed time.Time
	if e, ok := v.keysByID[keyID]; ok {
		lastUsed = unixNano(e.lastUsed.Load())
	}
	if err := v.store.RevokeKey(context.Background(), userID, keyID, lastUsed); err != nil {
		return err
	}
	if e, ok := v.keysByID[keyID]; ok {
		delete(v.keysByHash, e.hash)
		delete(v.keysByID, keyID)
	}
	v.usage.Forget(keyID)
	return nil
}

// ListKeys returns the user's keys, revoked ones included, oldest first.
func (v *Vault) ListKeys(userID string) ([]Key, error) {
	recs, err := v.store.ListKeys(context.Background(), userID)
	if err != nil {
		return nil, err
	}
	out := make([]Key, len(recs))
	v.mu.RLock()
	for i, rec := range recs {
		out[i] = rec.Key
		if e, ok := v.keysByID[out[i].ID]; ok {
			out[i].LastUsed = maxTime(out[i].LastUsed, unixNano(e.lastUsed.Load()))
		}
	}
	v.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// flushKeyUsage writes the last-used times recorded since the last flush.
func (v *Vault) flushKeyUsage() {
	if !v.keysDirty.Swap(false) {
		return
	}
	uses := map[string]time.Time{}
	var touched []*keyEntry
	v.mu.RLock()
	for _, e := range v.keysByID {
		if e.dirty.Swap(false) {
			uses[e.key.ID] = unixNano(e.lastUsed.Load())
			touched = append(touched, e)
		}
	}
	v.mu.RUnlock()
	if len(uses) == 0 {
		return
	}
	if err := v.store.TouchKeys(context.Background(), uses); err != nil {
		// Keep them dirty so the next tick tries again.
		for _, e := range touched {
			e.dirty.Store(true)
		}
		v.keysDirty.Store(true)
		v.logWarn("vault: writing API key last-used times failed", "error", err)
	}
}

// loadKeys builds the in-memory index of active keys.
func (v *Vault) loadKeys(ctx context.Context) error {
	recs, err := v.store.ListAllKeys(ctx)
	if err != nil {
		return err
	}
	for _, rec := range recs {
		v.indexRecord(rec)
	}
	return nil
}

// indexRecord indexes a stored key if it is active, keeping a newer
// in-memory last-used time; v.mu must be held (or v not yet shared).
func (v *Vault) indexRecord(rec KeyRecord) {
	if rec.Disabled || len(rec.Hash) != sha256.Size {
		return
	}
	var sum [32]byte
	copy(sum[:], rec.Hash)
	last := timeNano(rec.LastUsed)
	if old, ok := v.keysByID[rec.ID]; ok {
		last = max(last, old.lastUsed.Load())
	}
	v.indexKey(rec.Key, sum).lastUsed.Store(last)
}

// indexKey adds an active key to the in-memory index; v.mu must be held
// (or v not yet shared).
func (v *Vault) indexKey(k Key, sum [32]byte) *keyEntry {
	e := &keyEntry{key: k, hash: sum}
	e.key.LastUsed = time.Time{}
	v.keysByHash[sum] = e
	v.keysByID[k.ID] = e
	return e
}

// keyHash is the HMAC-SHA-256 of an API key under the pepper.
func (v *Vault) keyHash(plaintext string) [32]byte {
	// Pooled MACs: Reset restores the keyed state, cheaper than hmac.New.
	pepper, macs := v.pepper, &v.macs
	if p := v.repeppered.Load(); p != nil { // SetPepper ran
		pepper, macs = p.pepper, &p.macs
	}
	h, _ := macs.Get().(hash.Hash)
	if h == nil {
		h = hmac.New(sha256.New, pepper)
	}
	h.Reset()
	h.Write([]byte(plaintext))
	var sum [32]byte
	h.Sum(sum[:0])
	macs.Put(h)
	return sum
}

// unixNano converts a stored nanosecond time; 0 is the zero time.
func unixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// timeNano is the inverse of unixNano.
func timeNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// maxTime returns the later of a and b.
func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
