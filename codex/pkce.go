package codex

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// PKCE is a proof-key pair for the authorization code flow (docs/protocol.md#pkce).
type PKCE struct {
	// Verifier is kept secret until the code exchange.
	Verifier string
	// Challenge goes into the authorize URL.
	Challenge string
}

// NewPKCE returns a fresh S256 pair: the verifier is 64 random bytes,
// base64url without padding, as the official client makes it.
func NewPKCE() (PKCE, error) {
	b := make([]byte, 64)
	if _, err := rand.Read(b); err != nil {
		return PKCE{}, err
	}
	v := base64.RawURLEncoding.EncodeToString(b)
	return PKCE{Verifier: v, Challenge: S256Challenge(v)}, nil
}

// S256Challenge derives the code challenge of a verifier.
func S256Challenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// NewState returns a random OAuth state: 32 bytes, base64url without
// padding (docs/protocol.md#authorize).
func NewState() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
