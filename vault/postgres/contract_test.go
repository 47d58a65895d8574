package postgres

import (
	"context"
	"testing"

	"github.com/usemysub/caddy-codex-proxy/internal/pgtest"
	"github.com/usemysub/caddy-codex-proxy/vault"
	"github.com/usemysub/caddy-codex-proxy/vault/storetest"
)

// TestStoreContract runs the Store contract against a real PostgreSQL, a
// fresh database per subtest.
func TestStoreContract(t *testing.T) {
	srv := pgtest.Start(t)
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		dsn := srv.NewDB(t)
		return func() (vault.Store, error) { return Open(context.Background(), dsn, Options{}) }
	})
}
