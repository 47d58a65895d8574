package dashboard

import (
	"fmt"
	"time"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// cacheView is the overview's prompt-cache card: how much of the input the
// upstream served from its cache over the last 7 days, per model and key.
type cacheView struct {
	vault.CacheStat
	Rate    string // the hit rate as a percentage, "—" without input
	Models  []cacheLine
	Keys    []cacheLine
	Partial bool
}

// cacheLine is one model's or key's figures.
type cacheLine struct {
	Name string
	vault.CacheStat
	Rate string
}

// percent renders a hit rate.
func percent(s vault.CacheStat) string {
	if s.InputTokens == 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f%%", s.HitRate*100)
}

// cacheViewOf reads the user's prompt-cache use since since.
func (d *Dashboard) cacheViewOf(userID string, since time.Time) (cacheView, error) {
	u, err := d.cfg.Vault.CacheUsage(userID, "", since)
	if err != nil {
		return cacheView{}, err
	}
	v := cacheView{CacheStat: u.CacheStat, Rate: percent(u.CacheStat), Partial: u.Partial}
	for _, m := range u.ByModel {
		name := m.Model
		if name == "" {
			name = "—"
		}
		v.Models = append(v.Models, cacheLine{Name: name, CacheStat: m.CacheStat, Rate: percent(m.CacheStat)})
	}
	keys := d.keyNames(userID)
	for _, k := range u.ByKey {
		name := "deleted key"
		if key, ok := keys[k.KeyID]; ok {
			name = key.Label
			if name == "" {
				name = key.Prefix + "…"
			}
		}
		v.Keys = append(v.Keys, cacheLine{Name: name, CacheStat: k.CacheStat, Rate: percent(k.CacheStat)})
	}
	return v, nil
}
