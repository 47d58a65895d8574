package caddymodule

// vaultlive.go holds what a pooled vault needs to follow config reloads: the
// configs (apps) holding it in start order, and a refresher and logger that
// can be switched. The vault applies its own settings (vault.Reconfigure:
// key rotation, the in-use check, background re-encryption).

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/usemysub/caddy-codex-proxy/codex"
	"github.com/usemysub/caddy-codex-proxy/internal/slogswap"
	"github.com/usemysub/caddy-codex-proxy/metrics"
	"github.com/usemysub/caddy-codex-proxy/vault"
	"github.com/usemysub/caddy-codex-proxy/vault/engine"
)

// liveSettings are the settings a vault runs with, secrets resolved.
type liveSettings struct {
	vault.Settings
	issuer string
	logger *zap.Logger
}

// holder is a started config's claim on a vault.
type holder struct {
	app  *App
	want liveSettings
}

// liveVault follows the configs holding one vault. The newest started
// config's settings apply; when it stops while an older one still runs (a
// reload that failed after Start), the older one's apply again.
type liveVault struct {
	v *vault.Vault

	mu      sync.Mutex // serialises attach and detach
	holders []holder
	issuer  string // of the refresher in force

	refresher atomic.Pointer[refresher]
	logger    atomic.Pointer[zap.Logger]
	vaultLog  *slogswap.Handler // logger, bridged for the vault
}

// vaultOpenTimeout bounds opening a vault when the codex_proxy app starts:
// connecting to PostgreSQL and applying its migrations, or waiting for a
// bbolt file's lock.
const vaultOpenTimeout = 30 * time.Second

// openPooledVault opens the vault at path with s, for the pool.
func openPooledVault(path string, s liveSettings) (*pooledVault, error) {
	l := &liveVault{vaultLog: slogswap.New(slog.DiscardHandler)}
	l.setLogger(s.logger)
	l.refresher.Store(&refresher{oauth: &codex.OAuth{Issuer: s.issuer}})
	// Opening is bounded; the open vault then lives for the process.
	ctx, cancel := context.WithTimeout(context.Background(), vaultOpenTimeout)
	defer cancel()
	opts := s.Options()
	opts.Refresher, opts.Logger = liveRefresher{l}, slog.New(l.vaultLog)
	v, err := engine.Open(ctx, path, opts)
	if err != nil {
		return nil, err
	}
	l.v = v
	l.issuer = s.issuer
	metrics.Vaults.Add(v)
	return &pooledVault{Vault: v, path: path, live: l}, nil
}

// liveRefresher sends refreshes to the refresher of the settings in force.
type liveRefresher struct{ l *liveVault }

// Refresh implements vault.Refresher.
func (r liveRefresher) Refresh(ctx context.Context, refreshToken string) (vault.RefreshedTokens, error) {
	return r.l.refresher.Load().Refresh(ctx, refreshToken)
}

// setLogger makes zl the logger in force for the vault's own messages, so a
// reload that changes where logs go takes the vault's messages along.
func (l *liveVault) setLogger(zl *zap.Logger) {
	l.logger.Store(zl)
	l.vaultLog.Set(slogOf(zl).Handler())
}

// attach makes app's settings the ones the vault runs with. It refuses
// settings that would strand data (a dropped key still sealing bundles)
// and then changes nothing.
func (l *liveVault) attach(app *App, want liveSettings) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.apply(want, false); err != nil {
		return err
	}
	l.holders = append(l.holders, holder{app: app, want: want})
	return nil
}

// detach drops app's claim. If app's settings were in force and an older
// config still holds the vault, the older settings apply again, keeping
// any key that still seals bundles so none is lost.
func (l *liveVault) detach(app *App) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := slices.IndexFunc(l.holders, func(h holder) bool { return h.app == app })
	if i < 0 {
		return
	}
	wasNewest := i == len(l.holders)-1
	l.holders = slices.Delete(l.holders, i, i+1)
	if !wasNewest || len(l.holders) == 0 {
		return
	}
	prev := l.holders[len(l.holders)-1].want
	if err := l.apply(prev, true); err != nil {
		prev.logger.Error("restoring the running config's vault settings failed", zap.Error(err))
		return
	}
	prev.logger.Warn("a newer config stopped before the one it was replacing; the vault is back on the running config's settings")
}

// apply makes s the settings in force; l.mu is held. The vault applies
// its own part (Reconfigure, or Restore for a rollback); the refresher
// and the logger follow here. The new logger takes over first so that the
// vault logs its changes to the new config's log.
func (l *liveVault) apply(s liveSettings, restore bool) error {
	prev := l.logger.Load()
	l.setLogger(s.logger)
	reconfigure := l.v.Reconfigure
	if restore {
		reconfigure = l.v.Restore
	}
	if err := reconfigure(s.Settings); err != nil {
		l.setLogger(prev)
		return err
	}
	if s.issuer != l.issuer {
		s.logger.Info("oauth_issuer changed: logins refresh at the new issuer", zap.String("oauth_issuer", s.issuer))
	}
	l.refresher.Store(&refresher{oauth: &codex.OAuth{Issuer: s.issuer}})
	l.issuer = s.issuer
	return nil
}

// close closes the vault, which first lets a re-encryption pass finish.
func (l *liveVault) close() error { return l.v.Close() }
