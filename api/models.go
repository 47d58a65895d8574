package api

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/usemysub/caddy-codex-proxy/apierror"
	"github.com/usemysub/caddy-codex-proxy/codex"
	"github.com/usemysub/caddy-codex-proxy/translate"
)

// serveModels lists the user's models in OpenAI list format (GET
// /v1/models), or one of them (GET /v1/models/{id}): the catalog the
// upstream reports for the user's plan, or the static catalog.
func (h *Handler) serveModels(w http.ResponseWriter, r *http.Request, req *request) outcome {
	if r.Header.Get("Anthropic-Version") != "" {
		return h.serveClaudeModels(w, r, req)
	}
	one := strings.TrimPrefix(strings.TrimPrefix(strings.TrimSuffix(r.URL.Path, "/"), "/v1/models"), "/")
	var upstream []string
	live := map[string]codex.RemoteModel{}
	if h.cfg.Models != nil {
		remote, err := h.cfg.Models.Get(r.Context(), req.user.ID, h.userTokens(req.user.ID))
		if err == nil {
			upstream = make([]string, 0, len(remote))
			for _, m := range remote {
				live[m.Slug] = m
				if !m.Hidden {
					upstream = append(upstream, m.Slug)
				}
			}
		} else if c := h.log.Check(zap.DebugLevel, "model catalog unavailable, using the static one"); c != nil {
			c.Write(zap.String("user_id", req.user.ID), zap.Error(err))
		}
	}
	// A key limited to some models sees only those.
	list := slices.DeleteFunc(h.cfg.Catalog.ModelList(upstream), func(m translate.ModelObject) bool {
		return !req.key.Policy.AllowsModel(m.ID)
	})
	for i := range list {
		if m, ok := live[list[i].ID]; ok {
			describeModel(&list[i], m)
		}
	}
	if one == "" {
		return h.writeJSON(w, map[string]any{"object": "list", "data": list})
	}
	for _, m := range list {
		if m.ID == one {
			return h.writeJSON(w, m)
		}
	}
	return h.reject(w, apierror.ModelNotFound(one), 0)
}

// describeModel adds what the live catalog says of a model to its entry.
func describeModel(o *translate.ModelObject, m codex.RemoteModel) {
	o.ContextWindow, o.MaxContextWindow = m.ContextWindow, m.MaxContextWindow
	o.ReasoningEfforts, o.DefaultReasoningEffort = m.Efforts, m.DefaultEffort
	o.ServiceTiers, o.DefaultServiceTier = m.ServiceTiers, m.DefaultServiceTier
}

// writeJSON answers 200 with v as JSON.
func (h *Handler) writeJSON(w http.ResponseWriter, v any) outcome {
	b, err := json.Marshal(v)
	if err != nil {
		h.log.Error("encoding a response failed", zap.Error(err))
		return h.reject(w, apierror.Internal("encoding the response failed"), 0)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	return outcome{status: http.StatusOK}
}
