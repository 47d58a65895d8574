package caddymodule

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/usemysub/caddy-codex-proxy/vault"
	"github.com/usemysub/caddy-codex-proxy/vault/postgres"
)

// isVaultDSN reports whether a vault location names a PostgreSQL database
// (a postgres:// or postgresql:// URL) rather than a bbolt file.
func isVaultDSN(location string) bool {
	l := strings.ToLower(strings.TrimSpace(location))
	return strings.HasPrefix(l, "postgres://") || strings.HasPrefix(l, "postgresql://")
}

// vaultDisplay is a vault location fit for logs, errors and the admin
// API: a DSN loses its password.
func vaultDisplay(location string) string {
	if isVaultDSN(location) {
		return postgres.RedactDSN(location)
	}
	return location
}

// openVaultAt opens the vault at location with the engine its form
// selects: PostgreSQL for a DSN, bbolt for a file path (its directory is
// created if missing). ctx bounds opening only.
func openVaultAt(ctx context.Context, location string, opts vault.Options) (*vault.Vault, error) {
	if !isVaultDSN(location) {
		if err := os.MkdirAll(filepath.Dir(location), 0o700); err != nil {
			return nil, fmt.Errorf("vault directory: %v", err)
		}
		return vault.Open(location, opts)
	}
	store, err := postgres.Open(ctx, location, postgres.Options{Logger: opts.Logger})
	if err != nil {
		return nil, err
	}
	v, err := vault.New(store, opts)
	if err != nil {
		store.Close()
		return nil, err
	}
	return v, nil
}

// vaultOpenTimeout bounds opening a vault when the codex_proxy app starts:
// connecting to PostgreSQL and applying its migrations, or waiting for a
// bbolt file's lock.
const vaultOpenTimeout = 30 * time.Second
