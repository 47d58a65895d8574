package codextest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
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

// catalogJSON renders the /models answer in the backend's shape (docs/protocol.md#endpoints).
func (s *Server) catalogJSON() []byte {
	models := make([]map[string]any, 0, len(s.opts.Models))
	for i, m := range s.opts.Models {
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
		models = append(models, map[string]any{
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
		})
	}
	b, _ := json.Marshal(map[string]any{"models": models})
	return b
}

func (s *Server) catalogETag() string {
	sum := sha256.Sum256(s.catalogJSON())
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
	w.Header().Set("ETag", s.catalogETag())
	w.Header().Set("Content-Type", "application/json")
	w.Write(s.catalogJSON())
}
