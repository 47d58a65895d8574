package bolt_test

import (
	"path/filepath"
	"testing"

	"github.com/usemysub/caddy-codex-proxy/vault"
	"github.com/usemysub/caddy-codex-proxy/vault/bolt"
	"github.com/usemysub/caddy-codex-proxy/vault/storetest"
)

// TestStoreContract runs the Store contract against the bbolt engine.
func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		path := filepath.Join(t.TempDir(), "vault.db")
		return func() (vault.Store, error) { return bolt.Open(path, bolt.Options{}) }
	})
}
