package vault_test

import (
	"path/filepath"
	"testing"

	"github.com/usemysub/caddy-codex-proxy/vault"
	"github.com/usemysub/caddy-codex-proxy/vault/storetest"
)

// TestBoltStoreContract runs the Store contract against the bbolt engine.
func TestBoltStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		path := filepath.Join(t.TempDir(), "vault.db")
		return func() (vault.Store, error) { return vault.OpenBoltStore(path, vault.BoltOptions{}) }
	})
}
