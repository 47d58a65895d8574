package caddymodule

// vaultlive.go holds what a pooled vault needs to follow config reloads: the
// configs (apps) holding it in start order, the settings in force, a
// refresher and logger that can be switched, and the background
// re-encryption after a key change.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/usemysub/caddy-codex-proxy/codex"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// liveSettings are the settings a vault runs with, secrets resolved.
type liveSettings struct {
	keys      []string
	pepper    string
	retention time.Duration
	issuer    string
	logger    *zap.Logger
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

	mu      sync.Mutex // serialises attach, detach and checkKeys
	holders []holder
	applied liveSettings

	refresher atomic.Pointer[refresher]
	logger    atomic.Pointer[zap.Logger]
	slogger   atomic.Pointer[slog.Logger] // logger, bridged for the vault

	reMu      sync.Mutex
	reRunning bool
	reAgain   bool
	reWG      sync.WaitGroup
}

// openPooledVault opens the vault at path with s, for the pool.
func openPooledVault(path string, s liveSettings) (*pooledVault, error) {
	l := &liveVault{}
	l.setLogger(s.logger)
	l.refresher.Store(&refresher{oauth: &codex.OAuth{Issuer: s.issuer}})
	// Opening is bounded; the open vault then lives for the process.
	ctx, cancel := context.WithTimeout(context.Background(), vaultOpenTimeout)
	defer cancel()
	v, err := openVaultAt(ctx, path, vault.Options{
		EncryptionKeys: s.keys,
		Pepper:         s.pepper,
		LogRetention:   s.retention,
		Refresher:      liveRefresher{l},
		Logger:         slog.New(liveHandler{l}),
	})
	if err != nil {
		return nil, err
	}
	l.v = v
	l.applied = s
	liveVaults.add(v)
	return &pooledVault{Vault: v, path: path, live: l}, nil
}

// liveRefresher sends refreshes to the refresher of the settings in force.
type liveRefresher struct{ l *liveVault }

// Refresh implements vault.Refresher.
func (r liveRefresher) Refresh(ctx context.Context, refreshToken string) (vault.RefreshedTokens, error) {
	return r.l.refresher.Load().Refresh(ctx, refreshToken)
}

// setLogger makes zl the logger in force for the vault's own messages.
func (l *liveVault) setLogger(zl *zap.Logger) {
	l.logger.Store(zl)
	l.slogger.Store(slogOf(zl))
}

// liveHandler sends the vault's log records to the logger in force, so a
// reload that changes where logs go takes the vault's messages along.
type liveHandler struct{ l *liveVault }

func (h liveHandler) current() slog.Handler { return h.l.slogger.Load().Handler() }

// Enabled implements slog.Handler.
func (h liveHandler) Enabled(ctx context.Context, lvl slog.Level) bool {
	return h.current().Enabled(ctx, lvl)
}

// Handle implements slog.Handler.
func (h liveHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.current().Handle(ctx, r)
}

// WithAttrs implements slog.Handler; the result keeps the logger in force
// now (the vault logs with key/value pairs, not derived loggers).
func (h liveHandler) WithAttrs(as []slog.Attr) slog.Handler { return h.current().WithAttrs(as) }

// WithGroup implements slog.Handler, like WithAttrs.
func (h liveHandler) WithGroup(name string) slog.Handler { return h.current().WithGroup(name) }

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

// apply changes the open vault to s; l.mu is held. With keepKeys (a
// rollback), keys in force stay listed after s's so nothing they seal is
// lost; re-encryption then moves the bundles back to s's first key.
func (l *liveVault) apply(s liveSettings, keepKeys bool) error {
	if err := vault.CheckKeys(s.keys); err != nil {
		return fmt.Errorf("encryption_key: %v", err)
	}
	if err := vault.CheckPepper(s.pepper); err != nil {
		return fmt.Errorf("api_key_pepper: %v", err)
	}
	cur := l.applied
	if keepKeys {
		for _, k := range cur.keys {
			if !slices.Contains(s.keys, k) {
				s.keys = append(slices.Clip(s.keys), k)
			}
		}
	}
	if !slices.Equal(s.keys, cur.keys) {
		if err := l.v.SetEncryptionKeys(s.keys); err != nil {
			var inUse *vault.KeyInUseError
			if errors.As(err, &inUse) {
				return keysInUseError(cur.keys, inUse)
			}
			return fmt.Errorf("encryption_key: %v", err)
		}
		id, _ := vault.KeyID(s.keys[0])
		s.logger.Info("encryption keys changed; new token bundles are sealed with the first one",
			zap.String("first_key_id", id), zap.Int("keys", len(s.keys)))
	}
	if s.pepper != cur.pepper {
		_ = l.v.SetPepper(s.pepper) // checked above
		s.logger.Warn("api_key_pepper changed: every API key created before no longer works; issue new keys")
	}
	if s.retention != cur.retention {
		l.v.SetLogRetention(s.retention)
		s.logger.Info("log_retention changed", zap.Duration("log_retention", s.retention))
	}
	if s.issuer != cur.issuer {
		s.logger.Info("oauth_issuer changed: logins refresh at the new issuer", zap.String("oauth_issuer", s.issuer))
	}
	l.refresher.Store(&refresher{oauth: &codex.OAuth{Issuer: s.issuer}})
	l.setLogger(s.logger)
	l.applied = s
	if len(s.keys) > 1 {
		// A rotation in progress: re-seal what an older key still holds,
		// off the request path, so the older key can be dropped next.
		l.reencrypt()
	}
	return nil
}

// checkKeys reports, without changing anything, whether the vault could
// switch to next: no key it drops may still seal a bundle.
func (l *liveVault) checkKeys(next []string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	keep := map[string]bool{}
	for _, k := range next {
		if id, err := vault.KeyID(k); err == nil {
			keep[id] = true
		}
	}
	counts, err := l.v.BundlesByKey()
	if err != nil {
		return fmt.Errorf("counting token bundles per encryption key: %v", err)
	}
	inUse := map[string]int{}
	for _, k := range l.applied.keys {
		if id, _ := vault.KeyID(k); !keep[id] && counts[id] > 0 {
			inUse[id] = counts[id]
		}
	}
	if len(inUse) == 0 {
		return nil
	}
	return keysInUseError(l.applied.keys, &vault.KeyInUseError{Bundles: inUse})
}

// keysInUseError explains a refused key removal, naming keys by their
// place in the running config and their id, never their value.
func keysInUseError(running []string, e *vault.KeyInUseError) error {
	var parts []string
	for i, k := range running {
		id, _ := vault.KeyID(k)
		if n, ok := e.Bundles[id]; ok {
			parts = append(parts, fmt.Sprintf("encryption_key #%d of the running config (id %s) still encrypts %d linked ChatGPT account(s)", i+1, id, n))
		}
	}
	return fmt.Errorf("%w: %s; list the new key first and keep this one after it until Caddy logs %q, then remove it; the running config is unchanged",
		vault.ErrKeyStillInUse, strings.Join(parts, "; "), reencryptedMsg)
}

// reencryptedMsg is logged when every bundle is under the first key.
const reencryptedMsg = "token bundles re-encrypted with the first encryption_key; the others can be removed"

// reencrypt runs vault.ReencryptAll in the background, once more if asked
// again meanwhile. Requests do not wait for it: tokens are served from
// memory and a re-seal is one short write transaction.
func (l *liveVault) reencrypt() {
	l.reMu.Lock()
	defer l.reMu.Unlock()
	if l.reRunning {
		l.reAgain = true
		return
	}
	l.reRunning = true
	l.reWG.Add(1)
	go func() {
		defer l.reWG.Done()
		for {
			n, err := l.v.ReencryptAll()
			logger := l.logger.Load()
			switch {
			case errors.Is(err, vault.ErrClosed):
			case err != nil:
				logger.Error("re-encrypting token bundles with the first encryption_key failed; keep the other keys configured", zap.Error(err))
			default:
				logger.Info(reencryptedMsg, zap.Int("reencrypted", n))
			}
			l.reMu.Lock()
			if !l.reAgain || errors.Is(err, vault.ErrClosed) {
				l.reRunning = false
				l.reMu.Unlock()
				return
			}
			l.reAgain = false
			l.reMu.Unlock()
		}
	}()
}

// close waits for background work, then closes the vault.
func (l *liveVault) close() error {
	l.reWG.Wait()
	return l.v.Close()
}
