package caddymodule

// app.go holds the codex_proxy app: the owner of the vaults' life. Handlers
// register their vault settings with it during Provision and open nothing,
// so `caddy validate` and provisioning touch no file; Start opens each vault
// (or takes it from the process-wide pool, where a running config keeps it
// open) and applies this config's settings to it; Stop hands the vault back
// to the config that is still running.

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/usemysub/caddy-codex-proxy/vault/engine"
	"github.com/usemysub/caddy-codex-proxy/vaultconf"
)

func init() {
	caddy.RegisterModule(new(App))
}

// vaultReadyWait is how long a request waits for the app to open the vault:
// Caddy starts apps in random order, so the http app may serve first.
var vaultReadyWait = 5 * time.Second

// App is the codex_proxy app. It has no configuration of its own: every
// codex_proxy handler registers its vault settings with it (ctx.App
// creates it when the JSON config has none).
type App struct {
	logger *zap.Logger

	mu     sync.Mutex
	vaults map[string]*appVault // by absolute path
	order  []string             // paths in registration order
	held   []*pooledVault       // taken from the pool by Start; released by Cleanup

	// ready is closed when Start has bound every handler, or failed.
	ready chan struct{}
}

// appVault is what this config's handlers want of one vault.
type appVault struct {
	settings vaultSettings
	handlers []*Handler
}

// vaultSettings are one config's settings for a vault, resolved at
// Provision without touching the disk.
type vaultSettings struct {
	vaultconf.Config
	issuer string      // OAuth issuer the refresher uses
	logger *zap.Logger // the vault's operational log
}

// CaddyModule returns the Caddy module information.
func (*App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "codex_proxy",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision prepares the app; it opens nothing.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	a.vaults = map[string]*appVault{}
	a.ready = make(chan struct{})
	return nil
}

// register records a handler's vault settings. Handlers sharing a vault
// must agree on its secrets and OAuth issuer: there is one vault, and
// guessing which handler wins would lose logins. A vault this process
// already has open is checked against the new keys now, so a reload that
// would strand token bundles fails before anything starts.
func (a *App) register(h *Handler, s vaultSettings) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if av, ok := a.vaults[s.Path]; ok {
		o := av.settings
		switch {
		case !slices.Equal(o.EncryptionKeys, s.EncryptionKeys) || o.KeysSet != s.KeysSet:
			return fmt.Errorf("two codex_proxy handlers use the vault %s with different encryption_key settings; give every site block that names this vault the same keys", s.Path)
		case o.Pepper != s.Pepper || o.PepperSet != s.PepperSet:
			return fmt.Errorf("two codex_proxy handlers use the vault %s with different api_key_pepper settings; give every site block that names this vault the same pepper", s.Path)
		case o.issuer != s.issuer:
			return fmt.Errorf("two codex_proxy handlers use the vault %s with different oauth_issuer settings (%q and %q); one vault refreshes its logins at one issuer", s.Path, av.settings.issuer, s.issuer)
		}
		// Never purge what one of the handlers still shows.
		av.settings.Widen(s.Config)
		av.handlers = append(av.handlers, h)
		return nil
	}
	if pv := openVault(s.Path); pv != nil && pv.live != nil && len(s.EncryptionKeys) > 0 {
		if err := pv.CheckKeyRemoval(s.EncryptionKeys); err != nil {
			return fmt.Errorf("vault %s: %w", s.Path, err)
		}
	}
	a.vaults[s.Path] = &appVault{settings: s, handlers: []*Handler{h}}
	a.order = append(a.order, s.Path)
	return nil
}

// Start opens (or shares) each vault, applies this config's settings and
// binds the handlers. An error leaves the running config untouched: what
// Start took is given back in Cleanup.
func (a *App) Start() error {
	defer close(a.ready)
	for _, path := range a.order {
		av := a.vaults[path]
		pv, err := a.acquire(av.settings)
		if err != nil {
			return err
		}
		for _, h := range av.handlers {
			if err := h.bind(pv); err != nil {
				return err
			}
		}
	}
	return nil
}

// acquire takes the vault from the pool, opening it if no config has it,
// and makes this config's settings the ones it runs with.
func (a *App) acquire(s vaultSettings) (*pooledVault, error) {
	vs, generated, err := s.Settings()
	if err != nil {
		return nil, err
	}
	if len(s.EncryptionKeys) == 0 || s.Pepper == "" {
		s.logger.Warn("no encryption_key or api_key_pepper configured: using secrets generated beside the vault; set real ones with {env.TOKEN_ENCRYPTION_KEY} and {env.API_KEY_PEPPER}",
			zap.String("dir", filepath.Dir(s.Path)), zap.Bool("generated_now", generated))
	}
	want := liveSettings{Settings: vs, issuer: s.issuer, logger: s.logger}
	val, _, err := vaults.LoadOrNew(s.Path, func() (caddy.Destructor, error) {
		return openPooledVault(s.Path, want)
	})
	if err != nil {
		return nil, fmt.Errorf("opening vault %s: %w", engine.Display(s.Path), err)
	}
	pv := val.(*pooledVault)
	a.mu.Lock()
	a.held = append(a.held, pv)
	a.mu.Unlock()
	if err := pv.live.attach(a, want); err != nil {
		return nil, fmt.Errorf("vault %s: %w", engine.Display(s.Path), err)
	}
	return pv, nil
}

// Stop hands each vault back to the config still running, if this one
// was the last to start (a reload that failed after Start).
func (a *App) Stop() error {
	for _, pv := range a.taken() {
		pv.live.detach(a)
	}
	return nil
}

// Cleanup releases the vaults Start took; the pool closes one when no
// config holds it. It also runs after a failed Start, which Stop does not.
func (a *App) Cleanup() error {
	var errs []error
	for _, pv := range a.taken() {
		pv.live.detach(a)
		if _, err := vaults.Delete(pv.path); err != nil {
			errs = append(errs, fmt.Errorf("closing vault %s: %w", pv.path, err))
		}
	}
	a.mu.Lock()
	a.held = nil
	a.mu.Unlock()
	return errors.Join(errs...)
}

// taken returns the vaults Start took.
func (a *App) taken() []*pooledVault {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.held)
}

// await waits, at most vaultReadyWait or until ctx ends, for Start.
func (a *App) await(ctx context.Context) bool {
	select {
	case <-a.ready:
		return true
	default:
	}
	t := time.NewTimer(vaultReadyWait)
	defer t.Stop()
	select {
	case <-a.ready:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// openVault returns the pooled vault at path if this process has it open,
// without taking a reference or opening anything.
func openVault(path string) *pooledVault {
	var found *pooledVault
	vaults.Range(func(key, val any) bool {
		if k, _ := key.(string); k == path {
			found, _ = val.(*pooledVault)
			return false
		}
		return true
	})
	return found
}

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
