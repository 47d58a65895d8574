package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/usemysub/caddy-codex-proxy/vault"
	"github.com/usemysub/caddy-codex-proxy/vault/engine"
)

// vaultConfig is what it takes to open a codex_proxy vault outside a
// running Caddy, resolved from a handler's config the way the app
// resolves it: same default path, same placeholder expansion, same
// generated-secret fallback.
type vaultConfig struct {
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

	// keysSet and pepperSet say the config names a secret. If it then
	// expands to nothing (an {env.*} unset in this shell), falling back to
	// the generated secrets would mint keys the running Caddy rejects.
	keysSet, pepperSet bool
}

// vaultConfigOf resolves h's vault settings.
func vaultConfigOf(h Handler) (vaultConfig, error) {
	repl := caddy.NewReplacer()
	path := h.Vault
	if path == "" {
		path = filepath.Join(caddy.AppDataDir(), defaultVaultDir, "vault.db")
	}
	expanded := repl.ReplaceAll(path, "")
	if strings.TrimSpace(expanded) == "" {
		return vaultConfig{}, fmt.Errorf("vault path %q expands to nothing; set the environment variables it names", h.Vault)
	}
	location := strings.TrimSpace(expanded)
	if !engine.IsDSN(location) {
		abs, err := filepath.Abs(expanded)
		if err != nil {
			return vaultConfig{}, fmt.Errorf("vault path: %v", err)
		}
		location = abs
	}
	vc := vaultConfig{Path: location, LogRetention: time.Duration(h.LogRetention)}
	if vc.LogRetention <= 0 {
		vc.LogRetention = time.Duration(DefaultLogRetention)
	}
	for _, k := range h.EncryptionKeys {
		if strings.TrimSpace(k) != "" {
			vc.keysSet = true
		}
		if k = strings.TrimSpace(repl.ReplaceAll(k, "")); k != "" {
			vc.EncryptionKeys = append(vc.EncryptionKeys, k)
		}
	}
	vc.pepperSet = strings.TrimSpace(h.APIKeyPepper) != ""
	vc.Pepper = strings.TrimSpace(repl.ReplaceAll(h.APIKeyPepper, ""))
	return vc, nil
}

// checkSecrets checks the configured secrets without reading the
// generated ones beside the vault (those are read when the vault opens).
func (vc vaultConfig) checkSecrets() error {
	if engine.IsDSN(vc.Path) && (!vc.keysSet || !vc.pepperSet) {
		// Secrets generated on one machine would not be on the others.
		return errors.New("a PostgreSQL vault needs encryption_key and api_key_pepper in the config, the same on every instance (e.g. {env.TOKEN_ENCRYPTION_KEY} and {env.API_KEY_PEPPER}); there is no directory beside it for generated ones")
	}
	if vc.keysSet && len(vc.EncryptionKeys) == 0 {
		return errors.New("encryption_key is set but expands to nothing: set the environment variables it names")
	}
	if vc.pepperSet && vc.Pepper == "" {
		return errors.New("api_key_pepper is set but expands to nothing: set the environment variables it names")
	}
	if len(vc.EncryptionKeys) > 0 {
		if err := vault.CheckKeys(vc.EncryptionKeys); err != nil {
			return fmt.Errorf("encryption_key: %v", err)
		}
	}
	if vc.Pepper != "" {
		if err := vault.CheckPepper(vc.Pepper); err != nil {
			return fmt.Errorf("api_key_pepper: %v", err)
		}
	}
	return nil
}

// secrets returns the encryption keys and pepper to open the vault with,
// taking the generated ones beside the vault for what the config leaves
// out, as the app does. generated reports files created just now.
func (vc vaultConfig) secrets() (keys []string, pepper string, generated bool, err error) {
	if vc.keysSet && len(vc.EncryptionKeys) == 0 {
		return nil, "", false, errors.New("encryption_key is set in the config but expands to nothing here: run this command with the same environment variables as Caddy")
	}
	if vc.pepperSet && vc.Pepper == "" {
		return nil, "", false, errors.New("api_key_pepper is set in the config but expands to nothing here: run this command with the same environment variables as Caddy")
	}
	keys, pepper = vc.EncryptionKeys, vc.Pepper
	if len(keys) > 0 && pepper != "" {
		return keys, pepper, false, nil
	}
	if engine.IsDSN(vc.Path) {
		// Secrets generated on one machine would not be on the others.
		return nil, "", false, errors.New("a PostgreSQL vault needs encryption_key and api_key_pepper in the config, the same on every instance (e.g. {env.TOKEN_ENCRYPTION_KEY} and {env.API_KEY_PEPPER}); there is no directory beside it for generated ones")
	}
	gk, gp, generated, err := vault.LoadOrCreateSecrets(filepath.Dir(vc.Path))
	if err != nil {
		return nil, "", false, fmt.Errorf("reading the generated secrets beside the vault: %v", err)
	}
	if len(keys) == 0 {
		keys = []string{gk}
	}
	if pepper == "" {
		pepper = gp
	}
	return keys, pepper, generated, nil
}

// sameSecrets reports whether two handlers would open a vault alike.
func (vc vaultConfig) sameSecrets(o vaultConfig) bool {
	return slices.Equal(vc.EncryptionKeys, o.EncryptionKeys) && vc.Pepper == o.Pepper &&
		vc.keysSet == o.keysSet && vc.pepperSet == o.pepperSet
}

// vaultConfigsFromJSON finds every codex_proxy handler in an adapted Caddy
// config, wherever it is nested (routes, subroutes, handle blocks), and
// returns one vaultConfig per distinct vault file, in config order.
func vaultConfigsFromJSON(cfg []byte) ([]vaultConfig, error) {
	var root any
	if err := json.Unmarshal(cfg, &root); err != nil {
		return nil, fmt.Errorf("reading the config: %v", err)
	}
	var raw []map[string]any
	collectHandlers(root, &raw)
	var out []vaultConfig
	for _, m := range raw {
		b, err := json.Marshal(m)
		if err != nil {
			return nil, err
		}
		var h Handler
		if err := json.Unmarshal(b, &h); err != nil {
			return nil, fmt.Errorf("reading a codex_proxy handler: %v", err)
		}
		vc, err := vaultConfigOf(h)
		if err != nil {
			return nil, err
		}
		i := slices.IndexFunc(out, func(o vaultConfig) bool { return o.Path == vc.Path })
		switch {
		case i < 0:
			out = append(out, vc)
		case !out[i].sameSecrets(vc):
			// Caddy would open the shared vault with whichever handler it
			// provisions first; guessing here could mint unusable keys.
			return nil, fmt.Errorf("two codex_proxy handlers use the vault %s with different encryption keys or peppers", engine.Display(vc.Path))
		case vc.LogRetention > out[i].LogRetention:
			out[i].LogRetention = vc.LogRetention // never purge what a handler keeps
		}
	}
	return out, nil
}

// collectHandlers walks decoded JSON for objects with "handler":"codex_proxy".
func collectHandlers(node any, out *[]map[string]any) {
	switch n := node.(type) {
	case map[string]any:
		if n["handler"] == "codex_proxy" {
			*out = append(*out, n)
			return
		}
		for _, v := range n {
			collectHandlers(v, out)
		}
	case []any:
		for _, v := range n {
			collectHandlers(v, out)
		}
	}
}

// selectVault picks the vault a command acts on: the only one, or the one
// named by --vault.
func selectVault(vcs []vaultConfig, want string) (vaultConfig, error) {
	paths := make([]string, len(vcs))
	shown := make([]string, len(vcs))
	for i, vc := range vcs {
		paths[i], shown[i] = vc.Path, engine.Display(vc.Path)
	}
	if want != "" {
		loc := strings.TrimSpace(caddy.NewReplacer().ReplaceAll(want, ""))
		if !engine.IsDSN(loc) {
			abs, err := filepath.Abs(loc)
			if err != nil {
				return vaultConfig{}, err
			}
			loc = abs
		}
		// A DSN may be named with or without its password.
		for i := range vcs {
			if paths[i] == loc || shown[i] == engine.Display(loc) {
				return vcs[i], nil
			}
		}
		return vaultConfig{}, fmt.Errorf("no codex_proxy handler in the config uses the vault %s; it has: %s", engine.Display(loc), strings.Join(shown, ", "))
	}
	switch len(vcs) {
	case 0:
		return vaultConfig{}, errors.New("the config has no codex_proxy handler")
	case 1:
		return vcs[0], nil
	default:
		return vaultConfig{}, fmt.Errorf("the config has several codex_proxy vaults; choose one with --vault: %s", strings.Join(shown, ", "))
	}
}
