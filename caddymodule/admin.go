package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/usemysub/caddy-codex-proxy/vault"
	"github.com/usemysub/caddy-codex-proxy/vault/engine"
)

func init() {
	caddy.RegisterModule(adminAPI{})
}

// adminAPI is the admin.api.codex_proxy module: it manages users and API
// keys in the vaults the running Caddy has open. The `caddy codex-proxy`
// commands use it while Caddy runs, because then Caddy holds the vault's
// file lock and the commands cannot open the file themselves.
//
// Routes (JSON in and out; errors are {"error": "..."}):
//
//	GET    /codex_proxy/vaults                   paths of the open vaults
//	GET    /codex_proxy/users                    all users
//	POST   /codex_proxy/users                    create or update a user: {"email", "name", "auth_json"}
//	GET    /codex_proxy/users/{email}            one user
//	POST   /codex_proxy/users/{email}/disable    disable a user: their keys (403) and dashboard sign-in are refused; nothing is deleted
//	POST   /codex_proxy/users/{email}/enable     enable a user again: their existing keys and sign-in work again
//	GET    /codex_proxy/keys?email=              a user's keys
//	POST   /codex_proxy/keys                     create a key: {"email", "label", "policy"}; the answer holds the key, once
//	POST   /codex_proxy/keys/{id}/policy         change a key's policy: {"email", "policy": {"rpm": "60", …}}
//	POST   /codex_proxy/keys/{id}/reset-usage?email=  set a key's usage counters back to zero
//	DELETE /codex_proxy/keys/{id}?email=         revoke a key
//	POST   /codex_proxy/keys/{id}/revoke?email=  revoke a key
//	…      /codex_proxy/accounts…                a user's linked ChatGPT accounts (serveAccounts)
//	GET    /codex_proxy/backup                   a consistent copy of the open bbolt vault file (admin_backup.go)
//
// With several vaults open (several sites), every route except /vaults
// needs ?vault=<path>; with one, that one is used.
//
// The local admin endpoint has no authentication: anyone who can reach it
// can mint keys, as they can already replace the whole config.
type adminAPI struct {
	// pool holds the open vaults; nil means the handlers' shared pool.
	// Tests set their own.
	pool *caddy.UsagePool
}

// adminPrefix is where the routes live on the admin endpoint.
const adminPrefix = "/codex_proxy/"

// maxAdminBody bounds request bodies: an auth.json is at most 1 MiB.
const maxAdminBody = 2 << 20

// errVaultGone is what acquire's constructor fails with: the vault was
// closed between listing and use.
var errVaultGone = errors.New("the vault was closed by a config change; try again")

// CaddyModule returns the Caddy module information.
func (adminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.codex_proxy",
		New: func() caddy.Module { return new(adminAPI) },
	}
}

// Routes returns the one subtree route; serve dispatches within it.
func (a adminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{
		Pattern: adminPrefix,
		Handler: caddy.AdminHandlerFunc(a.serve),
	}}
}

// vaultPool returns the pool the vaults are found in.
func (a adminAPI) vaultPool() *caddy.UsagePool {
	if a.pool != nil {
		return a.pool
	}
	return vaults
}

// serve routes a request under /codex_proxy/.
func (a adminAPI) serve(w http.ResponseWriter, r *http.Request) error {
	seg, err := pathSegments(r.URL)
	if err != nil {
		return apiErr(http.StatusBadRequest, err)
	}
	q := r.URL.Query()
	switch {
	case len(seg) == 1 && seg[0] == "vaults":
		if err := allow(w, r, http.MethodGet); err != nil {
			return err
		}
		return writeAdminJSON(w, http.StatusOK, vaultsResult{Vaults: a.openVaults()})

	case len(seg) == 1 && seg[0] == "backup":
		return a.backup(w, r)

	case len(seg) == 1 && seg[0] == "users":
		switch r.Method {
		case http.MethodGet:
			return a.with(w, r, func(v *vault.Vault) (int, any, error) {
				res, err := listUsers(v)
				return http.StatusOK, res, err
			})
		case http.MethodPost:
			var req userRequest
			if err := decodeBody(w, r, &req); err != nil {
				return err
			}
			return a.with(w, r, func(v *vault.Vault) (int, any, error) {
				res, err := upsertUser(v, req)
				if res.Created {
					return http.StatusCreated, res, err
				}
				return http.StatusOK, res, err
			})
		}
		return allow(w, r, http.MethodGet, http.MethodPost)

	case len(seg) == 2 && seg[0] == "users":
		if err := allow(w, r, http.MethodGet); err != nil {
			return err
		}
		return a.with(w, r, func(v *vault.Vault) (int, any, error) {
			res, err := getUser(v, seg[1])
			return http.StatusOK, res, err
		})

	case len(seg) == 3 && seg[0] == "users" && (seg[2] == "disable" || seg[2] == "enable"):
		if err := allow(w, r, http.MethodPost); err != nil {
			return err
		}
		return a.with(w, r, func(v *vault.Vault) (int, any, error) {
			res, err := setUserEnabled(v, seg[1], seg[2] == "enable")
			return http.StatusOK, res, err
		})

	case len(seg) == 1 && seg[0] == "keys":
		switch r.Method {
		case http.MethodGet:
			return a.with(w, r, func(v *vault.Vault) (int, any, error) {
				res, err := listKeys(v, q.Get("email"))
				return http.StatusOK, res, err
			})
		case http.MethodPost:
			var req keyRequest
			if err := decodeBody(w, r, &req); err != nil {
				return err
			}
			return a.with(w, r, func(v *vault.Vault) (int, any, error) {
				res, err := createKey(v, req)
				return http.StatusCreated, res, err
			})
		}
		return allow(w, r, http.MethodGet, http.MethodPost)

	case seg[0] == "keys" && (len(seg) == 2 && r.Method == http.MethodDelete ||
		len(seg) == 3 && seg[2] == "revoke" && r.Method == http.MethodPost):
		return a.with(w, r, func(v *vault.Vault) (int, any, error) {
			res, err := revokeKey(v, q.Get("email"), seg[1])
			return http.StatusOK, res, err
		})

	case seg[0] == "keys" && len(seg) == 3 && seg[2] == "policy":
		if err := allow(w, r, http.MethodPost); err != nil {
			return err
		}
		var req keyUpdateRequest
		if err := decodeBody(w, r, &req); err != nil {
			return err
		}
		return a.with(w, r, func(v *vault.Vault) (int, any, error) {
			res, err := updateKeyPolicy(v, seg[1], req)
			return http.StatusOK, res, err
		})
	case seg[0] == "keys" && len(seg) == 3 && seg[2] == "reset-usage":
		if err := allow(w, r, http.MethodPost); err != nil {
			return err
		}
		return a.with(w, r, func(v *vault.Vault) (int, any, error) {
			res, err := resetKeyUsage(v, q.Get("email"), seg[1])
			return http.StatusOK, res, err
		})

	case seg[0] == "accounts":
		return a.serveAccounts(w, r, seg, q)
	case seg[0] == "keys" && len(seg) == 2:
		return allow(w, r, http.MethodDelete)
	case seg[0] == "keys" && len(seg) == 3 && seg[2] == "revoke":
		return allow(w, r, http.MethodPost)
	}
	return apiErr(http.StatusNotFound, fmt.Errorf("no codex_proxy admin route %s %s", r.Method, r.URL.Path))
}

// with runs fn on the vault the request selects and writes its answer.
func (a adminAPI) with(w http.ResponseWriter, r *http.Request, fn func(*vault.Vault) (int, any, error)) error {
	v, release, err := a.acquire(r.URL.Query().Get("vault"))
	if err != nil {
		return err
	}
	defer release()
	status, res, err := fn(v)
	if err != nil {
		return err
	}
	if _, ok := res.(createdKey); ok {
		w.Header().Set("Cache-Control", "no-store") // the body holds a key
	}
	return writeAdminJSON(w, status, res)
}

// openVaults lists the paths of the open vaults, sorted.
func (a adminAPI) openVaults() []string {
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

// acquire picks the vault named by want (a path), or the only open one,
// and holds a reference on it so a config unload cannot close it mid-use;
// release drops the reference.
func (a adminAPI) acquire(want string) (v *vault.Vault, release func(), err error) {
	paths := a.openVaults()
	var key string
	switch {
	case want != "":
		if key, err = filepath.Abs(want); err != nil {
			return nil, nil, apiErr(http.StatusBadRequest, err)
		}
		if !slices.Contains(paths, key) {
			return nil, nil, apiErr(http.StatusNotFound, fmt.Errorf("no codex_proxy vault %s is open in this Caddy (open: %s)", key, listOrNone(paths)))
		}
	case len(paths) == 1:
		key = paths[0]
	case len(paths) == 0:
		return nil, nil, apiErr(http.StatusNotFound, errors.New("no codex_proxy vault is open: the running config has no codex_proxy handler"))
	default:
		return nil, nil, apiErr(http.StatusBadRequest, fmt.Errorf("several codex_proxy vaults are open; choose one with ?vault=<path>: %s", strings.Join(paths, ", ")))
	}
	pool := a.vaultPool()
	// LoadOrNew on an existing key only adds a reference. If the vault was
	// closed since openVaults, the constructor fails and nothing is opened:
	// only the codex_proxy app opens vaults, with the config's secrets.
	val, _, err := pool.LoadOrNew(key, func() (caddy.Destructor, error) { return nil, errVaultGone })
	if err != nil {
		return nil, nil, apiErr(http.StatusServiceUnavailable, err)
	}
	pv, ok := val.(*pooledVault)
	if !ok {
		_, _ = pool.Delete(key)
		return nil, nil, apiErr(http.StatusInternalServerError, fmt.Errorf("pool entry %s is not a vault", key))
	}
	return pv.Vault, func() { _, _ = pool.Delete(key) }, nil
}

// listOrNone joins paths for a message.
func listOrNone(paths []string) string {
	if len(paths) == 0 {
		return "none"
	}
	return strings.Join(paths, ", ")
}

// pathSegments splits the path after /codex_proxy/ into unescaped
// segments, so an email or id may hold escaped slashes.
func pathSegments(u *url.URL) ([]string, error) {
	rest := strings.Trim(strings.TrimPrefix(u.EscapedPath(), adminPrefix), "/")
	seg := strings.Split(rest, "/")
	for i, s := range seg {
		var err error
		if seg[i], err = url.PathUnescape(s); err != nil {
			return nil, fmt.Errorf("bad path segment %q: %v", s, err)
		}
	}
	return seg, nil
}

// allow answers 405 unless r uses one of methods.
func allow(w http.ResponseWriter, r *http.Request, methods ...string) error {
	if slices.Contains(methods, r.Method) {
		return nil
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	return apiErr(http.StatusMethodNotAllowed, fmt.Errorf("method %s not allowed; use %s", r.Method, strings.Join(methods, " or ")))
}

// decodeBody reads a JSON body into dst, rejecting unknown fields so a
// misspelt option is not silently ignored.
func decodeBody(w http.ResponseWriter, r *http.Request, dst any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAdminBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return apiErr(http.StatusRequestEntityTooLarge, fmt.Errorf("request body is larger than %d bytes", tooBig.Limit))
		}
		// Decoder errors name fields and offsets, never values.
		return apiErr(http.StatusBadRequest, fmt.Errorf("reading the request body: %v", err))
	}
	return nil
}

// writeAdminJSON writes v as the JSON answer.
func writeAdminJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return apiErr(http.StatusInternalServerError, err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// A failed write means the client left; the status is already sent, so
	// there is no error answer left to give.
	_, _ = w.Write(append(b, '\n'))
	return nil
}

// Interface guards
var _ caddy.AdminRouter = (*adminAPI)(nil)
