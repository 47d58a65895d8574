package ops

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// AdminPrefix is where the admin routes live on Caddy's admin endpoint.
const AdminPrefix = "/codex_proxy/"

// MaxAdminBody bounds request bodies: an auth.json is at most 1 MiB.
const MaxAdminBody = 2 << 20

// Vaults is where the admin API finds the vaults the running Caddy has
// open; caddymodule implements it over its pool.
type Vaults interface {
	// Paths lists the open vaults as they are shown, sorted.
	Paths() []string
	// Acquire holds the vault at path (one of Paths) open until release is
	// called, so a config unload cannot close it under a request.
	Acquire(path string) (v *vault.Vault, release func(), err error)
}

// AdminHandler serves the admin API of the vaults in a [Vaults], each
// route decoding its request, calling [Local] and encoding the answer.
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
//	GET    /codex_proxy/accounts?email=          a user's linked ChatGPT accounts and routing policy
//	POST   /codex_proxy/accounts                 link one more: {"email", "auth_json", "label"}
//	DELETE /codex_proxy/accounts/{id}?email=     unlink one
//	POST   /codex_proxy/accounts/order           order of preference: {"email", "ids": [...]}
//	POST   /codex_proxy/accounts/policy          routing policy: {"email", "policy": "prefer-order"|"most-remaining"}
//	GET    /codex_proxy/signup                   the sign-up policy override, if any: {"override": {"mode", "domains", "set", "by"}}
//	POST   /codex_proxy/signup                   set it for every instance on the vault: {"mode", "domains"}, or {"clear": true}
//	DELETE /codex_proxy/signup                   clear it: each site's Caddyfile `signup` applies again
//	GET    /codex_proxy/audit?since=&until=&email=&action=&actor=&before=&limit=  audit entries, newest first, and the next page's before
//	GET    /codex_proxy/backup                   a consistent copy of the open bbolt vault file
//
// With several vaults open (several sites), every route except /vaults
// needs ?vault=<path>; with one, that one is used.
type AdminHandler struct {
	mux    *http.ServeMux
	vaults Vaults
	log    *slog.Logger
}

// NewAdminHandler routes the admin API over vs; log receives what cannot
// be answered any more (a backup that fails mid-stream).
func NewAdminHandler(vs Vaults, log *slog.Logger) *AdminHandler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &AdminHandler{mux: http.NewServeMux(), vaults: vs, log: log}
	p := strings.TrimSuffix(AdminPrefix, "/")
	a.handle("GET "+p+"/vaults", func(w http.ResponseWriter, r *http.Request) error {
		return writeJSON(w, http.StatusOK, VaultsResult{Vaults: vs.Paths()})
	})
	a.handle("GET "+p+"/backup", a.backup)

	a.route("GET "+p+"/users", func(ctx context.Context, s Service, r *http.Request) (int, any, error) {
		res, err := s.ListUsers(ctx)
		return http.StatusOK, res, err
	})
	a.handle("POST "+p+"/users", func(w http.ResponseWriter, r *http.Request) error {
		var req UserRequest
		if err := decodeBody(w, r, &req); err != nil {
			return err
		}
		return a.with(w, r, func(ctx context.Context, s Service, _ *http.Request) (int, any, error) {
			res, err := s.UpsertUser(ctx, req)
			if res.Created {
				return http.StatusCreated, res, err
			}
			return http.StatusOK, res, err
		})
	})
	a.route("GET "+p+"/users/{email}", func(ctx context.Context, s Service, r *http.Request) (int, any, error) {
		res, err := s.GetUser(ctx, r.PathValue("email"))
		return http.StatusOK, res, err
	})
	for action, enabled := range map[string]bool{"disable": false, "enable": true} {
		a.route("POST "+p+"/users/{email}/"+action, func(ctx context.Context, s Service, r *http.Request) (int, any, error) {
			res, err := s.SetUserEnabled(ctx, r.PathValue("email"), enabled)
			return http.StatusOK, res, err
		})
	}

	a.route("GET "+p+"/audit", func(ctx context.Context, s Service, r *http.Request) (int, any, error) {
		req, err := ParseAuditRequest(r.URL.Query(), time.Now())
		if err != nil {
			return 0, nil, err
		}
		res, err := s.ListAudit(ctx, req)
		return http.StatusOK, res, err
	})

	a.route("GET "+p+"/keys", func(ctx context.Context, s Service, r *http.Request) (int, any, error) {
		res, err := s.ListKeys(ctx, r.URL.Query().Get("email"))
		return http.StatusOK, res, err
	})
	a.handle("POST "+p+"/keys", func(w http.ResponseWriter, r *http.Request) error {
		var req KeyRequest
		if err := decodeBody(w, r, &req); err != nil {
			return err
		}
		return a.with(w, r, func(ctx context.Context, s Service, _ *http.Request) (int, any, error) {
			res, err := s.CreateKey(ctx, req)
			if err == nil {
				w.Header().Set("Cache-Control", "no-store") // the body holds a key
			}
			return http.StatusCreated, res, err
		})
	})
	revoke := func(ctx context.Context, s Service, r *http.Request) (int, any, error) {
		res, err := s.RevokeKey(ctx, r.URL.Query().Get("email"), r.PathValue("id"))
		return http.StatusOK, res, err
	}
	a.route("DELETE "+p+"/keys/{id}", revoke)
	a.route("POST "+p+"/keys/{id}/revoke", revoke)
	a.handle("POST "+p+"/keys/{id}/policy", func(w http.ResponseWriter, r *http.Request) error {
		var req KeyUpdateRequest
		if err := decodeBody(w, r, &req); err != nil {
			return err
		}
		return a.with(w, r, func(ctx context.Context, s Service, r *http.Request) (int, any, error) {
			res, err := s.UpdateKeyPolicy(ctx, r.PathValue("id"), req)
			return http.StatusOK, res, err
		})
	})
	a.route("POST "+p+"/keys/{id}/reset-usage", func(ctx context.Context, s Service, r *http.Request) (int, any, error) {
		res, err := s.ResetKeyUsage(ctx, r.URL.Query().Get("email"), r.PathValue("id"))
		return http.StatusOK, res, err
	})

	a.route("GET "+p+"/accounts", func(ctx context.Context, s Service, r *http.Request) (int, any, error) {
		res, err := s.ListAccounts(ctx, r.URL.Query().Get("email"))
		return http.StatusOK, res, err
	})
	a.handle("POST "+p+"/accounts", func(w http.ResponseWriter, r *http.Request) error {
		var req AccountAddRequest
		if err := decodeBody(w, r, &req); err != nil {
			return err
		}
		return a.with(w, r, func(ctx context.Context, s Service, _ *http.Request) (int, any, error) {
			res, err := s.AddAccount(ctx, req)
			return http.StatusCreated, res, err
		})
	})
	a.route("DELETE "+p+"/accounts/{id}", func(ctx context.Context, s Service, r *http.Request) (int, any, error) {
		res, err := s.RemoveAccount(ctx, r.URL.Query().Get("email"), r.PathValue("id"))
		return http.StatusOK, res, err
	})
	a.handle("POST "+p+"/accounts/order", func(w http.ResponseWriter, r *http.Request) error {
		var req AccountOrderRequest
		if err := decodeBody(w, r, &req); err != nil {
			return err
		}
		return a.with(w, r, func(ctx context.Context, s Service, _ *http.Request) (int, any, error) {
			res, err := s.OrderAccounts(ctx, req)
			return http.StatusOK, res, err
		})
	})
	a.handle("POST "+p+"/accounts/policy", func(w http.ResponseWriter, r *http.Request) error {
		var req AccountPolicyRequest
		if err := decodeBody(w, r, &req); err != nil {
			return err
		}
		return a.with(w, r, func(ctx context.Context, s Service, _ *http.Request) (int, any, error) {
			res, err := s.SetAccountPolicy(ctx, req)
			return http.StatusOK, res, err
		})
	})
	a.route("GET "+p+"/signup", func(ctx context.Context, s Service, r *http.Request) (int, any, error) {
		res, err := s.GetSignup(ctx)
		return http.StatusOK, res, err
	})
	a.handle("POST "+p+"/signup", func(w http.ResponseWriter, r *http.Request) error {
		var req SignupRequest
		if err := decodeBody(w, r, &req); err != nil {
			return err
		}
		return a.with(w, r, func(ctx context.Context, s Service, _ *http.Request) (int, any, error) {
			res, err := s.SetSignup(ctx, req)
			return http.StatusOK, res, err
		})
	})
	a.route("DELETE "+p+"/signup", func(ctx context.Context, s Service, r *http.Request) (int, any, error) {
		res, err := s.SetSignup(ctx, SignupRequest{Clear: true})
		return http.StatusOK, res, err
	})
	return a
}

// errSlot carries a route's error out of the ServeMux, whose handlers
// return nothing, to ServeAdmin.
type errSlot struct{}

// handle registers a route whose error ServeAdmin answers.
func (a *AdminHandler) handle(pattern string, fn func(http.ResponseWriter, *http.Request) error) {
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if slot, ok := r.Context().Value(errSlot{}).(*error); ok {
			*slot = fn(w, r)
		}
	})
}

// route registers a route that needs no request body.
func (a *AdminHandler) route(pattern string, fn func(context.Context, Service, *http.Request) (int, any, error)) {
	a.handle(pattern, func(w http.ResponseWriter, r *http.Request) error { return a.with(w, r, fn) })
}

// with runs fn on the vault the request selects and writes its answer.
func (a *AdminHandler) with(w http.ResponseWriter, r *http.Request, fn func(context.Context, Service, *http.Request) (int, any, error)) error {
	v, release, err := AcquireVault(a.vaults, r.URL.Query().Get("vault"))
	if err != nil {
		return err
	}
	defer release()
	status, res, err := fn(adminActor(r), Local(v), r)
	if err != nil {
		return err
	}
	return writeJSON(w, status, res)
}

// ServeAdmin serves one admin request. Instead of writing an error answer
// it returns the error (an *Error, or one [StatusOf] maps), so Caddy's
// admin server can log and render it like its own; a 405 has its Allow
// header set already.
func (a *AdminHandler) ServeAdmin(w http.ResponseWriter, r *http.Request) error {
	if p := r.URL.Path; len(p) > len(AdminPrefix) && strings.HasSuffix(p, "/") {
		// The routes have always taken a trailing slash (users/ is users);
		// ServeMux patterns would not, so drop it first.
		r = r.Clone(r.Context())
		r.URL.Path = strings.TrimRight(p, "/")
		r.URL.RawPath = strings.TrimRight(r.URL.RawPath, "/") // keeps an escaped "/" in an email
	}
	if _, pattern := a.mux.Handler(r); pattern == "" {
		// ServeMux decided 404 or 405; learn which, and answer in JSON.
		probe := &headerProbe{header: http.Header{}}
		a.mux.ServeHTTP(probe, r)
		if probe.status == http.StatusMethodNotAllowed {
			allow := probe.header.Get("Allow")
			w.Header().Set("Allow", allow)
			return errorf(http.StatusMethodNotAllowed, "method %s not allowed; use %s", r.Method, strings.ReplaceAll(allow, ", ", " or "))
		}
		return errorf(http.StatusNotFound, "no codex_proxy admin route %s %s", r.Method, r.URL.Path)
	}
	var err error
	a.mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), errSlot{}, &err)))
	return err
}

// ServeHTTP serves the admin API on its own, rendering errors as Caddy's
// admin server does: {"error": "..."} with the error's status.
func (a *AdminHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	err := a.ServeAdmin(w, r)
	if err == nil {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(StatusOf(err))
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

// headerProbe records the status and headers ServeMux's own 404 and 405
// answers would send, and drops their plain-text bodies.
type headerProbe struct {
	header http.Header
	status int
}

func (p *headerProbe) Header() http.Header         { return p.header }
func (p *headerProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *headerProbe) WriteHeader(status int)      { p.status = status }

// AcquireVault picks the vault named by want (a path), or the only open
// one, and holds it until release is called.
func AcquireVault(vs Vaults, want string) (v *vault.Vault, release func(), err error) {
	paths := vs.Paths()
	var key string
	switch {
	case want != "":
		if key, err = filepath.Abs(want); err != nil {
			return nil, nil, withStatus(http.StatusBadRequest, err)
		}
		if !slices.Contains(paths, key) {
			return nil, nil, errorf(http.StatusNotFound, "no codex_proxy vault %s is open in this Caddy (open: %s)", key, ListOrNone(paths))
		}
	case len(paths) == 1:
		key = paths[0]
	case len(paths) == 0:
		return nil, nil, errorf(http.StatusNotFound, "no codex_proxy vault is open: the running config has no codex_proxy handler")
	default:
		return nil, nil, errorf(http.StatusBadRequest, "several codex_proxy vaults are open; choose one with ?vault=<path>: %s", strings.Join(paths, ", "))
	}
	return vs.Acquire(key)
}

// ListOrNone joins paths for a message.
func ListOrNone(paths []string) string {
	if len(paths) == 0 {
		return "none"
	}
	return strings.Join(paths, ", ")
}

// decodeBody reads a JSON body into dst, rejecting unknown fields so a
// misspelt option is not silently ignored.
func decodeBody(w http.ResponseWriter, r *http.Request, dst any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxAdminBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return errorf(http.StatusRequestEntityTooLarge, "request body is larger than %d bytes", tooBig.Limit)
		}
		// Decoder errors name fields and offsets, never values.
		return errorf(http.StatusBadRequest, "reading the request body: %w", err)
	}
	return nil
}

// writeJSON writes v as the JSON answer.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return withStatus(http.StatusInternalServerError, err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// A failed write means the client left; the status is already sent, so
	// there is no error answer left to give.
	_, _ = w.Write(append(b, '\n'))
	return nil
}

// adminActor is the request's context with its caller as the actor: the
// admin API, with the OS user the caller named (OperatorHeader, as the
// CLI sends it) and its address.
func adminActor(r *http.Request) context.Context {
	osUser := strings.TrimSpace(r.Header.Get(OperatorHeader))
	if len(osUser) > 64 || strings.ContainsFunc(osUser, func(c rune) bool { return c < ' ' || c == 0x7f }) {
		osUser = "(unreadable)"
	}
	return WithActor(r.Context(), Actor{Via: ViaAdminAPI, OSUser: osUser, Source: r.RemoteAddr, CLI: r.Header.Get(ClientHeader) == ClientCLI})
}
