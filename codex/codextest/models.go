package codextest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Model is one catalog entry of the fake.
type Model struct {
	Slug          string
	DisplayName   string
	Efforts       []string
	DefaultEffort string
	// Verbosity allows text.verbosity low/high; otherwise only medium.
	Verbosity bool
	// Hidden sets visibility "hide".
	Hidden            bool
	ParallelToolCalls bool
	ContextWindow     int
	// NoFast makes the model refuse the Fast tier: service_tier priority
	// answers 400 "Unsupported service_tier: priority", as the backend does
	// for a model (or plan) without it. False (the default): offered.
	NoFast bool
	// MaxContextWindow is the catalog's max_context_window; 0: not listed.
	MaxContextWindow int
	// MinClientVersion lists the model only to a client_version at least
	// this (minimal_client_version); "" (the default): to every version.
	MinClientVersion string
	// Accounts is the phased rollout: only these account ids may use the
	// model, the others are refused with "not supported when using Codex
	// with a ChatGPT account" (the catalog still lists it). Nil (the
	// default): every account.
	Accounts []string
}

// DefaultModels is a catalog shaped like the 2026 one (docs/protocol.md#effort): general
// models with verbosity, codex models without, and one hidden model with
// the Nov-2025 effort set.
func DefaultModels() []Model {
	all := []string{"low", "medium", "high", "xhigh"}
	return []Model{
		{Slug: "gpt-5.5", DisplayName: "GPT-5.5", Efforts: all, DefaultEffort: "medium", Verbosity: true, ParallelToolCalls: true, ContextWindow: 272000},
		{Slug: "gpt-5.4", DisplayName: "GPT-5.4", Efforts: all, DefaultEffort: "medium", Verbosity: true, ParallelToolCalls: true, ContextWindow: 272000},
		{Slug: "gpt-5.4-mini", DisplayName: "GPT-5.4 Mini", Efforts: all, DefaultEffort: "medium", Verbosity: true, ParallelToolCalls: true, ContextWindow: 272000, NoFast: true},
		{Slug: "gpt-5.3-codex", DisplayName: "GPT-5.3 Codex", Efforts: all, DefaultEffort: "medium", ParallelToolCalls: true, ContextWindow: 272000},
		{Slug: "gpt-5.1-codex", DisplayName: "GPT-5.1 Codex", Efforts: []string{"low", "medium", "high"}, DefaultEffort: "medium", Hidden: true, ContextWindow: 272000},
		// September 2026: listed only to recent clients, with the ultra effort.
		{Slug: "gpt-6-astra", DisplayName: "GPT-6 Astra", Efforts: append(slices.Clone(all), "ultra"), DefaultEffort: "medium", Verbosity: true,
			ParallelToolCalls: true, ContextWindow: 400000, MaxContextWindow: 1000000, MinClientVersion: "0.160.0"},
	}
}

// model finds a catalog model by slug; the catalog is immutable.
func (s *Server) model(slug string) *Model {
	for i := range s.opts.Models {
		if s.opts.Models[i].Slug == slug {
			return &s.opts.Models[i]
		}
	}
	return nil
}

// catalogJSON renders the /models answer in the backend's shape
// (docs/protocol.md#endpoints) for a client_version: models newer than it
// are not listed.
func (s *Server) catalogJSON(clientVersion string) []byte {
	models := make([]map[string]any, 0, len(s.opts.Models))
	for i, m := range s.opts.Models {
		if m.MinClientVersion != "" && versionLess(clientVersion, m.MinClientVersion) {
			continue
		}
		levels := make([]map[string]any, 0, len(m.Efforts))
		for _, e := range m.Efforts {
			levels = append(levels, map[string]any{"effort": e, "description": e + " reasoning effort"})
		}
		vis := "list"
		if m.Hidden {
			vis = "hide"
		}
		var defVerb any
		if m.Verbosity {
			defVerb = "low"
		}
		tiers := []map[string]any{{"id": "priority", "name": "Fast", "description": "Twice the speed at a higher usage cost"}}
		if m.NoFast {
			tiers = []map[string]any{}
		}
		entry := map[string]any{
			"slug":                         m.Slug,
			"display_name":                 m.DisplayName,
			"description":                  "Fake " + m.DisplayName,
			"default_reasoning_level":      m.DefaultEffort,
			"supported_reasoning_levels":   levels,
			"shell_type":                   "shell_command",
			"visibility":                   vis,
			"supported_in_api":             true,
			"priority":                     i,
			"upgrade":                      nil,
			"base_instructions":            "You are Codex, a coding agent.",
			"support_verbosity":            m.Verbosity,
			"default_verbosity":            defVerb,
			"supports_parallel_tool_calls": m.ParallelToolCalls,
			"context_window":               m.ContextWindow,
			"experimental_supported_tools": []string{},
			"service_tiers":                tiers,
			"default_service_tier":         nil,
		}
		if m.MaxContextWindow > 0 {
			entry["max_context_window"] = m.MaxContextWindow
		}
		if m.MinClientVersion != "" {
			entry["minimal_client_version"] = m.MinClientVersion
		}
		models = append(models, entry)
	}
	b, _ := json.Marshal(map[string]any{"models": models})
	return b
}

func (s *Server) catalogETag(clientVersion string) string {
	sum := sha256.Sum256(s.catalogJSON(clientVersion))
	return `"` + hex.EncodeToString(sum[:8]) + `"`
}

// handleModels serves GET /backend-api/codex/models?client_version=….
func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) {
	s.recordRequest(r, nil)
	if _, ok := s.authenticate(w, r); !ok {
		return
	}
	if r.URL.Query().Get("client_version") == "" {
		// FastAPI's validation shape.
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"detail": []any{map[string]any{
			"type": "missing", "loc": []string{"query", "client_version"}, "msg": "Field required", "input": nil,
		}}})
		return
	}
	v := r.URL.Query().Get("client_version")
	w.Header().Set("ETag", s.catalogETag(v))
	w.Header().Set("Content-Type", "application/json")
	w.Write(s.catalogJSON(v))
}

// versionLess compares dotted client versions numerically ("0.99.0" <
// "0.160.0"); a part that is not a number counts as 0.
func versionLess(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := range max(len(pa), len(pb)) {
		var x, y int
		if i < len(pa) {
			x, _ = strconv.Atoi(pa[i])
		}
		if i < len(pb) {
			y, _ = strconv.Atoi(pb[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}
