package vaultconf

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/usemysub/caddy-codex-proxy/vault/engine"
)

// Distinct merges the Configs of a config's handlers into one per vault,
// in config order. Handlers sharing a vault must agree on its secrets;
// the longest retentions and largest caps win (Config.Widen), so nothing
// a handler keeps is purged.
func Distinct(cs []Config) ([]Config, error) {
	var out []Config
	for _, c := range cs {
		i := slices.IndexFunc(out, func(o Config) bool { return o.Path == c.Path })
		switch {
		case i < 0:
			out = append(out, c)
		case !out[i].SameSecrets(c):
			// Caddy would open the shared vault with whichever handler it
			// provisions first; guessing here could mint unusable keys.
			return nil, fmt.Errorf("two codex_proxy handlers use the vault %s with different encryption keys or peppers", engine.Display(c.Path))
		default:
			out[i].Widen(c)
		}
	}
	return out, nil
}

// Select picks the vault a command acts on: the only one, or the one
// named by want (--vault, placeholders expanded; a relative path is taken
// from the working directory; a DSN may be named as configured or as
// engine.Display shows it, its password masked).
func Select(cs []Config, want string) (Config, error) {
	shown := make([]string, len(cs))
	for i, c := range cs {
		shown[i] = engine.Display(c.Path)
	}
	if want != "" {
		loc := strings.TrimSpace(want)
		if !engine.IsDSN(loc) {
			abs, err := filepath.Abs(loc)
			if err != nil {
				return Config{}, err
			}
			loc = abs
		}
		for i, c := range cs {
			if c.Path == loc || shown[i] == engine.Display(loc) {
				return c, nil
			}
		}
		return Config{}, fmt.Errorf("no codex_proxy handler in the config uses the vault %s; it has: %s", engine.Display(loc), strings.Join(shown, ", "))
	}
	switch len(cs) {
	case 0:
		return Config{}, errors.New("the config has no codex_proxy handler")
	case 1:
		return cs[0], nil
	default:
		return Config{}, fmt.Errorf("the config has several codex_proxy vaults; choose one with --vault: %s", strings.Join(shown, ", "))
	}
}
