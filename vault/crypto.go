package vault

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
)

// keyLen is the AES-256 key size.
const keyLen = 32

// ParseKey decodes a 32-byte encryption key given as 64 hex characters,
// base64url or standard base64 (padding optional). Errors describe the
// problem by length only and never contain the key.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("vault: encryption key is empty; give 32 bytes as base64url, standard base64 or 64 hex characters (e.g. `openssl rand -base64 32`)")
	}
	if isHex(s) {
		if len(s) == 2*keyLen {
			return hex.DecodeString(s)
		}
		// 43 or 44 characters is a base64 key that happens to look like hex.
		if len(s) != 43 && len(s) != 44 {
			return nil, fmt.Errorf("vault: encryption key has %d hex characters, need exactly %d", len(s), 2*keyLen)
		}
	}
	for _, enc := range []*base64.Encoding{
		base64.RawURLEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.StdEncoding,
	} {
		b, err := enc.DecodeString(s)
		if err != nil {
			continue
		}
		if len(b) != keyLen {
			return nil, fmt.Errorf("vault: encryption key decodes to %d bytes, need exactly %d (AES-256)", len(b), keyLen)
		}
		return b, nil
	}
	return nil, fmt.Errorf("vault: encryption key (%d characters) is neither base64url, standard base64 nor hex; give 32 bytes, e.g. `openssl rand -base64 32`", len(s))
}

// isHex reports whether s is made only of hex digits.
func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// aeadKey is one configured encryption key.
type aeadKey struct {
	id   string // first 8 hex of sha256(key): names the key in stored records
	aead cipher.AEAD
}

// keyring holds the configured keys; all decrypt, one seals. The set is
// swapped whole (SetEncryptionKeys, sealWith), so a reader never sees a
// mix.
type keyring struct {
	cur atomic.Pointer[keySet]
}

// keySet is the configured keys with the one that seals. keys[0] is the
// primary; it seals unless another instance on the database cannot open
// it yet (instances.go), and then the first key every live instance holds
// seals instead, so what this instance writes stays readable everywhere.
type keySet struct {
	keys []aeadKey
	seal int // index in keys of the key that seals
}

// keys returns the current set.
func (kr *keyring) keys() []aeadKey { return kr.cur.Load().keys }

// store makes keys the set, sealing with the key sealID names (keys[0] if
// none does).
func (kr *keyring) store(keys []aeadKey, sealID string) {
	kr.cur.Store(&keySet{keys: keys, seal: max(0, keyIndex(keys, sealID))})
}

// sealWith makes the key id seal from now on, if it is configured; it
// reports whether it is.
func (kr *keyring) sealWith(id string) bool {
	for {
		cur := kr.cur.Load()
		i := keyIndex(cur.keys, id)
		if i < 0 {
			return false
		}
		if i == cur.seal || kr.cur.CompareAndSwap(cur, &keySet{keys: cur.keys, seal: i}) {
			return true
		}
	}
}

// keyIndex is the index of the key id in keys, or -1.
func keyIndex(keys []aeadKey, id string) int {
	for i, k := range keys {
		if k.id == id {
			return i
		}
	}
	return -1
}

// ids are the key ids of keys, in order.
func ids(keys []aeadKey) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.id
	}
	return out
}

// newKeyring parses the configured keys.
func newKeyring(encoded []string) (*keyring, error) {
	keys, err := parseKeys(encoded)
	if err != nil {
		return nil, err
	}
	kr := &keyring{}
	kr.store(keys, "")
	return kr, nil
}

// parseKeys parses configured keys into AEADs, dropping duplicates.
func parseKeys(encoded []string) ([]aeadKey, error) {
	var keys []aeadKey
	seen := map[string]bool{}
	for i, s := range encoded {
		raw, err := ParseKey(s)
		if err != nil {
			return nil, fmt.Errorf("encryption key #%d: %w", i+1, err)
		}
		sum := sha256.Sum256(raw)
		id := hex.EncodeToString(sum[:4])
		if seen[id] {
			continue
		}
		seen[id] = true
		block, err := aes.NewCipher(raw)
		if err != nil {
			return nil, fmt.Errorf("vault: encryption key #%d: %w", i+1, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("vault: encryption key #%d: %w", i+1, err)
		}
		keys = append(keys, aeadKey{id: id, aead: aead})
	}
	return keys, nil
}

// primaryID names the first configured key, the one the operator wants
// new ciphertexts sealed with.
func (kr *keyring) primaryID() string { return kr.keys()[0].id }

// sealID names the key new ciphertexts are sealed with: the primary, or
// while some other instance cannot open it yet, a key every one can.
func (kr *keyring) sealID() string {
	cur := kr.cur.Load()
	return cur.keys[cur.seal].id
}

// seal encrypts plaintext with the sealing key and a random 96-bit nonce.
// The associated data binds the ciphertext to context and the key id.
func (kr *keyring) seal(plaintext []byte, context string) (Sealed, error) {
	cur := kr.cur.Load()
	k := cur.keys[cur.seal]
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return Sealed{}, fmt.Errorf("vault: random nonce: %w", err)
	}
	ct := k.aead.Seal(nil, nonce, plaintext, associatedData(context, k.id))
	return Sealed{KeyID: k.id, Nonce: nonce, Ciphertext: ct}, nil
}

// open decrypts s; it fails when the key is unknown, the blob was changed
// or it was sealed for another context.
func (kr *keyring) open(s Sealed, context string) ([]byte, error) {
	for _, k := range kr.keys() {
		if k.id != s.KeyID {
			continue
		}
		if len(s.Nonce) != k.aead.NonceSize() {
			return nil, ErrTokenUndecryptable
		}
		pt, err := k.aead.Open(nil, s.Nonce, s.Ciphertext, associatedData(context, k.id))
		if err != nil {
			return nil, ErrTokenUndecryptable
		}
		return pt, nil
	}
	return nil, ErrTokenUndecryptable
}

// associatedData is what a ciphertext is bound to besides its key.
func associatedData(context, keyID string) []byte {
	return []byte("codex-proxy/vault/v1\x00" + context + "\x00" + keyID)
}
