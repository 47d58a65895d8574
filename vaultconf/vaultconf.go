// Package vaultconf is a codex_proxy handler's vault settings once
// resolved (placeholders expanded, the path made absolute): the checks on
// its secrets, the fallback to the secrets generated beside a bbolt vault,
// one setting per vault across a config's handlers, and opening the vault
// outside a running Caddy. The codex_proxy app and the `caddy codex-proxy`
// commands both go through it, so they open a vault alike. It is
// Caddy-free: the Caddy glue resolves a handler's config into a Config.
package vaultconf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/usemysub/caddy-codex-proxy/vault"
	"github.com/usemysub/caddy-codex-proxy/vault/engine"
)

// Config is what it takes to open a codex_proxy vault. The zero value is
// no vault.
type Config struct {
	// Path is the vault file, absolute, or a PostgreSQL DSN as configured
	// (placeholders expanded; it may hold a password: show it with
	// engine.Display).
	Path string
	// EncryptionKeys and Pepper are the expanded secrets; empty means the
	// generated ones beside the vault.
	EncryptionKeys []string
	Pepper         string
	// LogRetention is passed to the vault, which purges older request
	// logs: the CLI must not purge with a shorter retention than Caddy's.
	LogRetention time.Duration
	// Limits bound the stored responses, for the same reason: the CLI
	// opens the vault with the limits Caddy runs with.
	Limits vault.Limits

	// KeysSet and PepperSet say the config names a secret. If it then
	// expands to nothing (an {env.*} unset in this shell), falling back to
	// the generated secrets would mint keys the running Caddy rejects.
	KeysSet, PepperSet bool
}

// errDSNSecrets refuses generated secrets for a PostgreSQL vault.
var errDSNSecrets = errors.New("a PostgreSQL vault needs encryption_key and api_key_pepper in the config, the same on every instance (e.g. {env.TOKEN_ENCRYPTION_KEY} and {env.API_KEY_PEPPER}); there is no directory beside it for generated ones")

// Check checks the configured secrets without reading the generated ones
// beside the vault (those are read when the vault opens), so that
// `caddy validate` and a reload's provisioning touch no file.
func (c Config) Check() error {
	if engine.IsDSN(c.Path) && (!c.KeysSet || !c.PepperSet) {
		// Secrets generated on one machine would not be on the others.
		return errDSNSecrets
	}
	if c.KeysSet && len(c.EncryptionKeys) == 0 {
		return errors.New("encryption_key is set but expands to nothing: set the environment variables it names")
	}
	if c.PepperSet && c.Pepper == "" {
		return errors.New("api_key_pepper is set but expands to nothing: set the environment variables it names")
	}
	if len(c.EncryptionKeys) > 0 {
		if err := vault.CheckKeys(c.EncryptionKeys); err != nil {
			return fmt.Errorf("encryption_key: %w", err)
		}
	}
	if c.Pepper != "" {
		if err := vault.CheckPepper(c.Pepper); err != nil {
			return fmt.Errorf("api_key_pepper: %w", err)
		}
	}
	return c.Limits.Validate()
}

// Settings are the settings to open or reconfigure the vault with:
// Secrets, the log retention and the limits.
func (c Config) Settings() (s vault.Settings, generated bool, err error) {
	keys, pepper, generated, err := c.Secrets()
	if err != nil {
		return vault.Settings{}, false, err
	}
	return vault.Settings{EncryptionKeys: keys, Pepper: pepper, LogRetention: c.LogRetention, Limits: c.Limits}, generated, nil
}

// Widen makes c keep at least what o keeps, for two handlers sharing a
// vault: the longer log retention, the most generous limits. Nothing one
// handler shows is purged for another's shorter setting.
func (c *Config) Widen(o Config) {
	c.LogRetention = max(c.LogRetention, o.LogRetention)
	c.Limits = c.Limits.Widest(o.Limits)
}

// Secrets returns the encryption keys and pepper to open the vault with,
// taking the generated ones beside the vault for what the config leaves
// out, as the app does. generated reports files created just now.
func (c Config) Secrets() (keys []string, pepper string, generated bool, err error) {
	if c.KeysSet && len(c.EncryptionKeys) == 0 {
		return nil, "", false, errors.New("encryption_key is set in the config but expands to nothing here: run this command with the same environment variables as Caddy")
	}
	if c.PepperSet && c.Pepper == "" {
		return nil, "", false, errors.New("api_key_pepper is set in the config but expands to nothing here: run this command with the same environment variables as Caddy")
	}
	keys, pepper = c.EncryptionKeys, c.Pepper
	if len(keys) > 0 && pepper != "" {
		return keys, pepper, false, nil
	}
	if engine.IsDSN(c.Path) {
		// Secrets generated on one machine would not be on the others.
		return nil, "", false, errDSNSecrets
	}
	gk, gp, generated, err := vault.LoadOrCreateSecrets(filepath.Dir(c.Path))
	if err != nil {
		return nil, "", false, fmt.Errorf("reading the generated secrets beside the vault: %w", err)
	}
	if len(keys) == 0 {
		keys = []string{gk}
	}
	if pepper == "" {
		pepper = gp
	}
	return keys, pepper, generated, nil
}

// SameSecrets reports whether two configs would open a vault alike.
func (c Config) SameSecrets(o Config) bool {
	return slices.Equal(c.EncryptionKeys, o.EncryptionKeys) && c.Pepper == o.Pepper &&
		c.KeysSet == o.KeysSet && c.PepperSet == o.PepperSet
}

// Open opens the vault in this process with the config's secrets, or the
// generated ones beside it, as the app would, waiting at most timeout for
// a bbolt file's lock. It says on notes when it generated secrets. A first
// provision before Caddy ever ran should just work: the vault's directory
// is created if missing.
func (c Config) Open(timeout time.Duration, logger *slog.Logger, notes io.Writer) (*vault.Vault, error) {
	s, generated, err := c.Settings()
	if err != nil {
		return nil, err
	}
	if generated {
		fmt.Fprintf(notes, "generated an encryption key and API key pepper in %s; Caddy must run as a user that can read them\n", filepath.Dir(c.Path))
	}
	opts := s.Options()
	opts.OpenTimeout, opts.Logger = timeout, logger
	v, err := engine.Open(context.Background(), c.Path, opts)
	if err != nil {
		return nil, fmt.Errorf("opening the vault %s: %w", engine.Display(c.Path), err)
	}
	return v, nil
}

// GeneratedKey reads the encryption key generated beside a bbolt vault
// without creating one: "" if none is usable; present reports that the
// file exists at all.
func GeneratedKey(vaultPath string) (key string, present bool) {
	b, err := os.ReadFile(filepath.Join(filepath.Dir(vaultPath), vault.EncryptionKeyFile))
	if err != nil {
		return "", !errors.Is(err, os.ErrNotExist)
	}
	k := strings.TrimSpace(string(b))
	if vault.CheckKeys([]string{k}) != nil {
		return "", true
	}
	return k, true
}
