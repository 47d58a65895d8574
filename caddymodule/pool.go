package caddymodule

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/usemysub/caddy-codex-proxy/codex"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// vaults shares one open vault per file across config reloads: during a
// reload the old and new configs live side by side, and bbolt allows one
// opener per file. The codex_proxy app (app.go) takes and releases them.
var vaults = caddy.NewUsagePool()

// pooledVault closes the vault when the last config using it is cleaned up.
// refreshes points at the metrics of the newest config, since the vault
// (and the refreshes it runs) outlives each config's registry.
type pooledVault struct {
	*vault.Vault
	refreshes *atomic.Pointer[metrics]
	path      string     // its key in vaults
	live      *liveVault // follows config reloads (vaultlive.go)
}

// Destruct implements caddy.Destructor.
func (p *pooledVault) Destruct() error {
	if p.live != nil {
		return p.live.close()
	}
	return p.Vault.Close()
}

// refresher adapts the OAuth client to the vault's Refresher and counts
// each attempt by outcome.
type refresher struct {
	oauth   *codex.OAuth
	metrics *atomic.Pointer[metrics]
}

// Refresh exchanges a refresh token; codex.RefreshError tells the vault
// whether the failure is permanent.
func (r refresher) Refresh(ctx context.Context, refreshToken string) (vault.RefreshedTokens, error) {
	t, err := r.oauth.Refresh(ctx, refreshToken)
	if m := r.metrics.Load(); m != nil {
		m.refreshed(refreshOutcome(err))
	}
	if err != nil {
		return vault.RefreshedTokens{}, err
	}
	return vault.RefreshedTokens{IDToken: t.IDToken, AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, ExpiresIn: t.ExpiresIn}, nil
}

// refreshOutcome names a refresh result for the metrics.
func refreshOutcome(err error) string {
	var perm interface{ Permanent() bool }
	switch {
	case err == nil:
		return "success"
	case errors.As(err, &perm) && perm.Permanent():
		return "permanent_failure"
	default:
		return "transient_failure"
	}
}

// zapLogFunc adapts a zap logger to the vault's key-value log function.
func zapLogFunc(l *zap.Logger) func(msg string, kv ...any) {
	return func(msg string, kv ...any) { l.Sugar().Infow(msg, kv...) }
}

// Names of the generated secret files beside the vault.
const (
	encryptionKeyFile = "encryption.key"
	pepperFile        = "api_key_pepper"
)

// loadOrCreateSecrets returns the encryption key and pepper stored in dir,
// generating them (0600) on first use so a first run needs no setup.
func loadOrCreateSecrets(dir string) (key, pepper string, generated bool, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", false, err
	}
	key, g1, err := loadOrCreate(filepath.Join(dir, encryptionKeyFile))
	if err != nil {
		return "", "", false, err
	}
	pepper, g2, err := loadOrCreate(filepath.Join(dir, pepperFile))
	if err != nil {
		return "", "", false, err
	}
	return key, pepper, g1 || g2, nil
}

func loadOrCreate(path string) (string, bool, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if s := strings.TrimSpace(string(b)); s != "" {
			return s, false, nil
		}
		return "", false, fmt.Errorf("%s is empty", path)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", false, err
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", false, err
	}
	s := base64.RawURLEncoding.EncodeToString(raw[:])
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) { // another process won the race
			return loadOrCreate(path)
		}
		return "", false, err
	}
	if _, err := f.WriteString(s + "\n"); err != nil {
		f.Close()
		return "", false, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", false, err
	}
	return s, true, f.Close()
}
