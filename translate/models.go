package translate

import (
	"slices"
	"strings"
)

// Model describes one upstream model as far as request translation needs it.
type Model struct {
	// ID is the client-facing slug, e.g. "gpt-5.5". It is also the slug sent
	// upstream.
	ID string
	// Efforts lists the supported reasoning efforts ordered low to high. An
	// empty list means "unknown": efforts are passed through unclamped.
	Efforts []string
	// DefaultEffort is sent when the client asks for no effort; "" lets the
	// upstream choose.
	DefaultEffort string
	// Verbosity reports whether the model accepts text.verbosity values other
	// than "medium". Codex models reject them, so verbosity is omitted there.
	Verbosity bool
	// Hidden models resolve normally but are not listed by Catalog.Models.
	Hidden bool
}

// Reasoning effort levels in increasing order. "max" and "ultra" exist on the
// newest model families only; they sort above xhigh so that clamping maps them
// down to the strongest level an older model supports.
var effortOrder = []string{"none", "minimal", "low", "medium", "high", "xhigh", "max", "ultra"}

// effortRank returns the position of effort in effortOrder, or -1.
func effortRank(effort string) int {
	return slices.Index(effortOrder, effort)
}

// effortSuffixes maps model-name suffixes to efforts, longest first so that
// "-extra-high" is not read as "-extra" + "high" (or "-high"). "-max" is
// not one: it ends model names (gpt-5.1-codex-max).
var effortSuffixes = []struct{ suffix, effort string }{
	{"-extra-high", "xhigh"},
	{"-minimal", "minimal"},
	{"-medium", "medium"},
	{"-xhigh", "xhigh"},
	{"-ultra", "ultra"},
	{"-extra", "xhigh"},
	{"-none", "none"},
	{"-high", "high"},
	{"-low", "low"},
}

// normalizeEffort canonicalises a client effort value; ok is false when the
// value is not a known level.
func normalizeEffort(s string) (string, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	switch s {
	case "extra", "extra-high", "extra_high":
		return "xhigh", true
	}
	return s, effortRank(s) >= 0
}

var (
	generalEfforts = []string{"none", "low", "medium", "high", "xhigh"}
	codexEfforts   = []string{"low", "medium", "high", "xhigh"}
)

// DefaultModels returns the built-in model table (mid-2026 ChatGPT plans).
// General models take "none" and verbosity; codex models do neither.
func DefaultModels() []Model {
	return []Model{
		{ID: "gpt-5.5", Efforts: slices.Clone(generalEfforts), Verbosity: true},
		{ID: "gpt-5.4", Efforts: slices.Clone(generalEfforts), Verbosity: true},
		{ID: "gpt-5.4-mini", Efforts: slices.Clone(generalEfforts), Verbosity: true},
		{ID: "gpt-5.3-codex", Efforts: slices.Clone(codexEfforts)},
		{ID: "gpt-5.3-codex-spark", Efforts: slices.Clone(codexEfforts)},
	}
}

// DefaultAliases returns the built-in alias table (alias → model ID).
func DefaultAliases() map[string]string {
	return map[string]string{
		"gpt-5.5-codex": "gpt-5.5",
	}
}

// Catalog is an immutable set of models and aliases. It is safe for
// concurrent reads; With returns a modified copy instead of mutating.
type Catalog struct {
	models  []Model           // in listing order, IDs unique
	byID    map[string]int    // lower-cased ID → index in models
	aliases map[string]string // lower-cased alias → target ID
}

// NewCatalog builds a catalog. A later model with the same ID (compared
// case-insensitively) replaces an earlier one in place.
func NewCatalog(models []Model, aliases map[string]string) *Catalog {
	c := &Catalog{byID: make(map[string]int, len(models)), aliases: make(map[string]string, len(aliases))}
	c.add(models, aliases)
	return c
}

// add merges models and aliases into c; only used while c is unpublished.
func (c *Catalog) add(models []Model, aliases map[string]string) {
	for _, m := range models {
		m.ID = strings.TrimSpace(m.ID)
		if m.ID == "" {
			continue
		}
		m.Efforts = slices.Clone(m.Efforts)
		key := strings.ToLower(m.ID)
		if i, ok := c.byID[key]; ok {
			c.models[i] = m
			continue
		}
		c.byID[key] = len(c.models)
		c.models = append(c.models, m)
	}
	for alias, target := range aliases {
		alias, target = strings.ToLower(strings.TrimSpace(alias)), strings.TrimSpace(target)
		if alias != "" && target != "" {
			c.aliases[alias] = target
		}
	}
}

var defaultCatalog = NewCatalog(DefaultModels(), DefaultAliases())

// DefaultCatalog returns the shared catalog built from DefaultModels and
// DefaultAliases.
func DefaultCatalog() *Catalog { return defaultCatalog }

// With returns a new catalog holding c's models and aliases extended, or
// overridden by ID, with the given ones. c is not modified.
func (c *Catalog) With(models []Model, aliases map[string]string) *Catalog {
	n := &Catalog{
		byID:    make(map[string]int, len(c.byID)+len(models)),
		aliases: make(map[string]string, len(c.aliases)+len(aliases)),
	}
	n.add(c.models, c.aliases)
	n.add(models, aliases)
	return n
}

// Models returns the visible (non-hidden) models in catalog order. The
// result is a copy the caller may modify.
func (c *Catalog) Models() []Model {
	out := make([]Model, 0, len(c.models))
	for _, m := range c.models {
		if !m.Hidden {
			m.Efforts = slices.Clone(m.Efforts)
			out = append(out, m)
		}
	}
	return out
}

// Lookup finds a model by exact ID (case-insensitive); aliases and suffixes
// are not applied.
func (c *Catalog) Lookup(id string) (Model, bool) {
	i, ok := c.byID[strings.ToLower(strings.TrimSpace(id))]
	if !ok {
		return Model{}, false
	}
	m := c.models[i]
	m.Efforts = slices.Clone(m.Efforts)
	return m, true
}

// Resolved is the outcome of Catalog.Resolve.
type Resolved struct {
	// ClientModel is exactly what the client sent; it is echoed back.
	ClientModel string
	// Upstream is the slug to send upstream: provider prefix and effort
	// suffix stripped, alias applied.
	Upstream string
	// Effort is the effort named by the suffix, "" if there was none.
	Effort string
	// Model is the catalog entry, or a bare Model{ID: Upstream} when unknown.
	Model Model
	// Known reports whether Upstream is in the catalog.
	Known bool
}

// Resolve maps a client model name to the upstream slug and effort.
//
// A provider prefix such as "openai/" is removed. A name that is itself in
// the catalog (or an alias) wins over suffix parsing; otherwise an effort
// suffix is split off. Unknown names pass through so that models released
// after this catalog still work: the upstream decides about them.
func (c *Catalog) Resolve(name string) Resolved {
	r := Resolved{ClientModel: name}
	base := strings.TrimSpace(name)
	if i := strings.LastIndexByte(base, '/'); i >= 0 {
		base = base[i+1:]
	}
	if m, ok := c.resolveBase(base); ok {
		r.Upstream, r.Model, r.Known = m.ID, m, true
		return r
	}
	lower := strings.ToLower(base)
	for _, s := range effortSuffixes {
		if len(lower) > len(s.suffix) && strings.HasSuffix(lower, s.suffix) {
			base = base[:len(base)-len(s.suffix)]
			r.Effort = s.effort
			break
		}
	}
	if m, ok := c.resolveBase(base); ok {
		r.Upstream, r.Model, r.Known = m.ID, m, true
		return r
	}
	if target, ok := c.aliases[strings.ToLower(base)]; ok {
		base = target
	}
	r.Upstream = base
	r.Model = Model{ID: base}
	return r
}

// resolveBase looks name up directly or through an alias.
func (c *Catalog) resolveBase(name string) (Model, bool) {
	if m, ok := c.Lookup(name); ok {
		return m, true
	}
	if target, ok := c.aliases[strings.ToLower(name)]; ok {
		return c.Lookup(target)
	}
	return Model{}, false
}

// ClampEffort returns the supported level of m closest to effort: below the
// model's minimum → minimum, above its maximum → maximum, an unsupported
// level in between → the next higher supported one (so "minimal" becomes
// "low"). Efforts of models with no level list, and unrecognised efforts, are
// returned unchanged.
func (c *Catalog) ClampEffort(m Model, effort string) string {
	if effort == "" || len(m.Efforts) == 0 || slices.Contains(m.Efforts, effort) {
		return effort
	}
	r := effortRank(effort)
	if r < 0 {
		return effort
	}
	lowest, highest := "", ""
	lowRank, highRank := len(effortOrder), -1
	next, nextRank := "", len(effortOrder)
	for _, e := range m.Efforts {
		er := effortRank(e)
		if er < 0 {
			continue
		}
		if er < lowRank {
			lowest, lowRank = e, er
		}
		if er > highRank {
			highest, highRank = e, er
		}
		if er > r && er < nextRank {
			next, nextRank = e, er
		}
	}
	switch {
	case highRank < 0:
		return effort // no recognisable levels: nothing to clamp against
	case r < lowRank:
		return lowest
	case r > highRank:
		return highest
	default:
		return next
	}
}
