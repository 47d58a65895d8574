package caddymodule

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/usemysub/caddy-codex-proxy/cli"
	"github.com/usemysub/caddy-codex-proxy/vault/engine"
	"github.com/usemysub/caddy-codex-proxy/vaultconf"
)

// vaultConfigOf resolves h's vault settings the way the app resolves
// them, so that the CLI, outside a running Caddy, opens the same vault
// with the same secrets: same default path, same placeholder expansion.
func vaultConfigOf(h Handler) (vaultconf.Config, error) {
	repl := caddy.NewReplacer()
	path := h.Vault
	if path == "" {
		path = filepath.Join(caddy.AppDataDir(), defaultVaultDir, "vault.db")
	}
	expanded := repl.ReplaceAll(path, "")
	if strings.TrimSpace(expanded) == "" {
		return vaultconf.Config{}, fmt.Errorf("vault path %q expands to nothing; set the environment variables it names", h.Vault)
	}
	location := strings.TrimSpace(expanded)
	if !engine.IsDSN(location) {
		abs, err := filepath.Abs(expanded)
		if err != nil {
			return vaultconf.Config{}, fmt.Errorf("vault path: %w", err)
		}
		location = abs
	}
	vc := vaultconf.Config{Path: location, LogRetention: time.Duration(h.LogRetention), Limits: h.Limits}
	if vc.LogRetention <= 0 {
		vc.LogRetention = time.Duration(DefaultLogRetention)
	}
	for _, k := range h.EncryptionKeys {
		if strings.TrimSpace(k) != "" {
			vc.KeysSet = true
		}
		if k = strings.TrimSpace(repl.ReplaceAll(k, "")); k != "" {
			vc.EncryptionKeys = append(vc.EncryptionKeys, k)
		}
	}
	vc.PepperSet = strings.TrimSpace(h.APIKeyPepper) != ""
	vc.Pepper = strings.TrimSpace(repl.ReplaceAll(h.APIKeyPepper, ""))
	return vc, nil
}

// vaultConfigsFromJSON resolves every codex_proxy handler of an adapted
// Caddy config and returns one vault setting per distinct vault.
func vaultConfigsFromJSON(cfg []byte) ([]vaultconf.Config, error) {
	raw, err := cli.HandlersIn(cfg, "codex_proxy")
	if err != nil {
		return nil, err
	}
	var vcs []vaultconf.Config
	for _, b := range raw {
		var h Handler
		if err := json.Unmarshal(b, &h); err != nil {
			return nil, fmt.Errorf("reading a codex_proxy handler: %w", err)
		}
		vc, err := vaultConfigOf(h)
		if err != nil {
			return nil, err
		}
		vcs = append(vcs, vc)
	}
	return vaultconf.Distinct(vcs)
}
