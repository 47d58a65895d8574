package caddymodule

import (
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/caddyserver/caddy/v2"

	"github.com/usemysub/caddy-codex-proxy/ops"
	"github.com/usemysub/caddy-codex-proxy/vault"
	"github.com/usemysub/caddy-codex-proxy/vault/engine"
)

func init() {
	caddy.RegisterModule(adminAPI{})
}

// adminAPI is the admin.api.codex_proxy module: it serves ops'
// admin API (routes in ops.AdminHandler) over the vaults the running
// Caddy has open. The `caddy codex-proxy` commands use it while Caddy
// runs, because then Caddy holds the vault's file lock and the commands
// cannot open the file themselves.
//
// The local admin endpoint has no authentication: anyone who can reach it
// can mint keys, as they can already replace the whole config.
type adminAPI struct {
	// pool holds the open vaults; nil means the handlers' shared pool.
	// Tests set their own.
	pool *caddy.UsagePool
}

// errVaultGone is what Acquire's constructor fails with: the vault was
// closed between listing and use.
var errVaultGone = errors.New("the vault was closed by a config change; try again")

// CaddyModule returns the Caddy module information.
func (adminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.codex_proxy",
		New: func() caddy.Module { return new(adminAPI) },
	}
}

// Routes returns the one subtree route; ops.AdminHandler routes within
// it, and its errors go back to Caddy's admin server, which logs them and
// answers {"error": "..."}.
func (a adminAPI) Routes() []caddy.AdminRoute {
	h := ops.NewAdminHandler(a, slogOf(caddy.Log().Named("admin.api.codex_proxy")))
	return []caddy.AdminRoute{{
		Pattern: ops.AdminPrefix,
		Handler: caddy.AdminHandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			if err := h.ServeAdmin(w, r); err != nil {
				return caddy.APIError{HTTPStatus: ops.StatusOf(err), Err: err}
			}
			return nil
		}),
	}}
}

// vaultPool returns the pool the vaults are found in.
func (a adminAPI) vaultPool() *caddy.UsagePool {
	if a.pool != nil {
		return a.pool
	}
	return vaults
}

// Paths lists the open vaults, sorted (ops.Vaults).
func (a adminAPI) Paths() []string {
	paths := []string{}
	a.vaultPool().Range(func(key, val any) bool {
		p, ok := key.(string)
		if _, isVault := val.(*pooledVault); ok && isVault {
			paths = append(paths, engine.Display(p))
		}
		return true
	})
	slices.Sort(paths)
	return paths
}

// Acquire holds a reference on the pooled vault at key so a config unload
// cannot close it mid-use; release drops the reference (ops.Vaults).
func (a adminAPI) Acquire(key string) (*vault.Vault, func(), error) {
	pool := a.vaultPool()
	// LoadOrNew on an existing key only adds a reference. If the vault was
	// closed since Paths, the constructor fails and nothing is opened:
	// only the codex_proxy app opens vaults, with the config's secrets.
	val, _, err := pool.LoadOrNew(key, func() (caddy.Destructor, error) { return nil, errVaultGone })
	if err != nil {
		return nil, nil, &ops.Error{Status: http.StatusServiceUnavailable, Err: err}
	}
	pv, ok := val.(*pooledVault)
	if !ok {
		_, _ = pool.Delete(key)
		return nil, nil, &ops.Error{Status: http.StatusInternalServerError, Err: fmt.Errorf("pool entry %s is not a vault", key)}
	}
	return pv.Vault, func() { _, _ = pool.Delete(key) }, nil
}

// Interface guards
var (
	_ caddy.AdminRouter = (*adminAPI)(nil)
	_ ops.Vaults        = adminAPI{}
)
