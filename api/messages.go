package api

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/usemysub/caddy-codex-proxy/apierror"
	"github.com/usemysub/caddy-codex-proxy/relay"
	"github.com/usemysub/caddy-codex-proxy/translate"
	"github.com/usemysub/caddy-codex-proxy/translate/anthropic"
)

// Anthropic's Messages API (Claude Code, the Anthropic SDKs) on the same
// pipeline as the OpenAI endpoints: the same authentication, admission,
// routing, relay and record, with the anthropic dialect translating and
// dialectWriter answering every refusal in Anthropic's error shape.

// The routes of the Messages API in logs and metrics.
const (
	routeMessages    = "messages"
	routeCountTokens = "messages_count_tokens"
)

// SessionHeader is Claude Code's session id, the prompt-cache key of its
// requests.
const SessionHeader = "X-Claude-Code-Session-Id"

// anthropicDialect is /v1/messages.
type anthropicDialect struct {
	models  *anthropic.ModelMap
	session string
	count   bool
}

func (d anthropicDialect) parse(body []byte, opts translate.RequestOptions) (*translate.Mapped, error) {
	return anthropic.ToResponses(body, anthropic.Options{RequestOptions: opts, Models: d.models, SessionID: d.session, CountOnly: d.count})
}

func (anthropicDialect) aggregate(m *translate.Mapped, up io.Reader) ([]byte, translate.StreamResult) {
	return anthropic.Aggregate(up, anthropic.OptionsFor(m))
}

func (anthropicDialect) stream(m *translate.Mapped) relay.Translator {
	return anthropic.NewStream(anthropic.OptionsFor(m))
}

// serveMessages is POST /v1/messages.
func (h *Handler) serveMessages(w http.ResponseWriter, r *http.Request, req *request) outcome {
	d := anthropicDialect{models: h.cfg.ClaudeModels, session: r.Header.Get(SessionHeader)}
	return generate(d)(h, w, r, req)
}

// serveCountTokens is POST /v1/messages/count_tokens: the prompt's tokens
// as the proxy estimates them when it charges a request, over the body as
// it would be sent upstream. Nothing goes upstream.
func (h *Handler) serveCountTokens(w http.ResponseWriter, r *http.Request, req *request) outcome {
	body, bad := readBody(w, r, h.cfg.MaxBodySize)
	if bad != nil {
		return h.reject(w, bad, 0)
	}
	d := anthropicDialect{models: h.cfg.ClaudeModels, session: r.Header.Get(SessionHeader), count: true}
	m, err := d.parse(body, translate.RequestOptions{Catalog: h.cfg.Catalog, SystemMode: h.cfg.SystemMode,
		CacheKeySalt: req.user.ID, MaxEffort: req.key.Policy.MaxEffort, Tier: req.key.Policy.ServiceTier,
		ModelTiers: h.cfg.ServiceTiers})
	if out, ok := h.admitMapped(w, req, m, err); !ok {
		return out
	}
	return h.writeJSON(w, map[string]int64{"input_tokens": translate.EstimateTokens(int64(len(m.Body)))})
}

// serveClaudeModels answers GET /v1/models in Anthropic's shape (the
// request carries anthropic-version): the Claude names the proxy maps,
// each with the Codex model and effort it becomes.
func (h *Handler) serveClaudeModels(w http.ResponseWriter, r *http.Request, req *request) outcome {
	one := strings.TrimPrefix(strings.TrimPrefix(strings.TrimSuffix(r.URL.Path, "/"), "/v1/models"), "/")
	type model struct {
		Type        string `json:"type"`
		ID          string `json:"id"`
		DisplayName string `json:"display_name"`
		CreatedAt   string `json:"created_at"`
		CodexModel  string `json:"codex_model"`
		CodexEffort string `json:"codex_effort,omitempty"`
	}
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Format(time.RFC3339)
	list := []model{}
	// The three families, as the map resolves them, and every Claude name
	// a rule spells out without a wildcard.
	ids := []string{"claude-opus", "claude-sonnet", "claude-haiku"}
	for _, rule := range h.cfg.ClaudeModels.All() {
		if p := strings.ToLower(rule.Pattern); strings.HasPrefix(p, "claude") && !strings.Contains(p, "*") && !slices.Contains(ids, p) {
			ids = append(ids, p)
		}
	}
	for _, id := range ids {
		t, _ := h.cfg.ClaudeModels.Resolve(id)
		if !req.key.Policy.AllowsModel(h.cfg.Catalog.Resolve(t.Model).Upstream) {
			continue // not for this key
		}
		name := id + " → " + t.Model
		if t.Effort != "" {
			name += " (" + t.Effort + ")"
		}
		m := model{Type: "model", ID: id, DisplayName: name, CreatedAt: created, CodexModel: t.Model, CodexEffort: t.Effort}
		if one == id {
			return h.writeJSON(w, m)
		}
		list = append(list, m)
	}
	if one != "" {
		return h.reject(w, apierror.ModelNotFound(one), 0)
	}
	res := map[string]any{"data": list, "has_more": false, "first_id": nil, "last_id": nil}
	if len(list) > 0 {
		res["first_id"], res["last_id"] = list[0].ID, list[len(list)-1].ID
	}
	return h.writeJSON(w, res)
}

// dialectWriter wraps w on the Messages routes (and on /v1/models asked by
// an Anthropic client) so that every error written through apierror.Write
// is in Anthropic's shape. Other routes keep w.
func dialectWriter(w http.ResponseWriter, r *http.Request, route string) http.ResponseWriter {
	switch {
	case route == routeMessages, route == routeCountTokens,
		route == "models" && r.Header.Get("Anthropic-Version") != "":
		return anthropicWriter{w}
	}
	return w
}

// anthropicWriter answers errors in Anthropic's shape; Unwrap keeps
// http.ResponseController (flushes, deadlines) reaching the real writer.
type anthropicWriter struct{ http.ResponseWriter }

// WriteAPIError implements apierror.Shaper.
func (a anthropicWriter) WriteAPIError(e *apierror.Error) { anthropic.WriteError(a.ResponseWriter, e) }

// Unwrap returns the wrapped writer.
func (a anthropicWriter) Unwrap() http.ResponseWriter { return a.ResponseWriter }

// Flush flushes the wrapped writer, for code that asserts http.Flusher.
func (a anthropicWriter) Flush() {
	_ = http.NewResponseController(a.ResponseWriter).Flush()
}
