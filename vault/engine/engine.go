// Package engine picks a vault's storage engine from where it lives: a
// postgres:// or postgresql:// DSN opens the PostgreSQL engine
// (vault/postgres), anything else is the path of a bbolt file. It is the
// one place that knows both engines; vault itself knows neither.
package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/usemysub/caddy-codex-proxy/vault"
	"github.com/usemysub/caddy-codex-proxy/vault/bolt"
	"github.com/usemysub/caddy-codex-proxy/vault/postgres"
)

// IsDSN reports whether a vault location names a PostgreSQL database (a
// postgres:// or postgresql:// URL) rather than a bbolt file.
func IsDSN(location string) bool {
	l := strings.ToLower(strings.TrimSpace(location))
	return strings.HasPrefix(l, "postgres://") || strings.HasPrefix(l, "postgresql://")
}

// Display is a vault location fit for logs, errors and the admin API: a
// DSN loses its password.
func Display(location string) string {
	if IsDSN(location) {
		return postgres.RedactDSN(location)
	}
	return location
}

// Open opens the vault at location with the engine its form selects:
// PostgreSQL for a DSN, bbolt for a file path (its directory is created,
// 0700, if missing). ctx bounds connecting to PostgreSQL; a bbolt file
// waits opts.OpenTimeout for its lock, and fails with vault.ErrLocked if
// another process holds it.
func Open(ctx context.Context, location string, opts vault.Options) (*vault.Vault, error) {
	if !IsDSN(location) {
		if err := os.MkdirAll(filepath.Dir(location), 0o700); err != nil {
			return nil, fmt.Errorf("vault directory: %w", err)
		}
		return openBolt(location, opts)
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

// openBolt opens a vault on the bbolt file at path. The options are
// checked before the file lock is taken, so a bad key leaves it free.
func openBolt(path string, opts vault.Options) (*vault.Vault, error) {
	if err := opts.Check(); err != nil {
		return nil, err
	}
	store, err := bolt.Open(path, bolt.Options{Timeout: opts.OpenTimeout, Logger: opts.Logger})
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

// OpenStore opens the bare store at location, with no Vault above it: what
// copying between engines (vault migrate, vault backup) works on. A bbolt
// file waits timeout for its lock; PostgreSQL queries may take a minute
// (a copy moves whole tables).
func OpenStore(ctx context.Context, location string, timeout time.Duration) (vault.Store, error) {
	if IsDSN(location) {
		s, err := postgres.Open(ctx, location, postgres.Options{QueryTimeout: time.Minute})
		if err != nil {
			return nil, fmt.Errorf("opening %s: %w", Display(location), err)
		}
		return s, nil
	}
	return bolt.Open(location, bolt.Options{Timeout: timeout})
}
