package vault_test

import (
	"log/slog"
	"time"

	"github.com/usemysub/caddy-codex-proxy/vault"
	"github.com/usemysub/caddy-codex-proxy/vault/bolt"
)

// vault's own tests (package vault) open their files through this hook:
// they cannot import vault/bolt, which imports vault.
func init() {
	vault.OpenTestStore = func(path string, timeout time.Duration, logger *slog.Logger) (vault.TestStore, error) {
		return bolt.Open(path, bolt.Options{Timeout: timeout, Logger: logger})
	}
}
