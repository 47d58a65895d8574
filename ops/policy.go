package ops

import (
	"net/http"
	"slices"
	"time"

	"github.com/usemysub/caddy-codex-proxy/keypolicy"
	"github.com/usemysub/caddy-codex-proxy/translate"
)

// ApplyPolicy applies changes to p and validates the result. A change maps
// a keypolicy field name ("rpm", "tokens-per-day", …) to its text form,
// exactly as the CLI flags take them; only the fields given change. A bad
// value is a 400.
func ApplyPolicy(p keypolicy.Policy, changes map[string]string) (keypolicy.Policy, error) {
	now := time.Now()
	fields := make([]string, 0, len(changes))
	for f := range changes {
		fields = append(fields, f)
	}
	slices.Sort(fields) // the same error for the same input, whatever the map order
	for _, f := range fields {
		var err error
		if p, err = keypolicy.Set(p, f, changes[f], now, resolveModel); err != nil {
			return p, withStatus(http.StatusBadRequest, err)
		}
	}
	if err := p.Validate(now); err != nil {
		return p, withStatus(http.StatusBadRequest, err)
	}
	return p, nil
}

// resolveModel maps an allowlist name to its catalog name, so an alias in
// a policy matches the model requests resolve to.
func resolveModel(name string) string {
	if r := translate.DefaultCatalog().Resolve(name); r.Known {
		return r.Upstream
	}
	return name
}
