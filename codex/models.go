package codex

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/usemysub/caddy-codex-proxy/apierror"
)

// maxModelsBody bounds the catalog size; the real one is a few hundred KiB
// because it embeds per-model instructions.
const maxModelsBody = 16 << 20

// modelsTimeout bounds a catalog fetch; it is a small unary call.
const modelsTimeout = 30 * time.Second

// RemoteModel is one entry of the account's model catalog (docs/protocol.md#endpoints).
type RemoteModel struct {
	// Slug is the model id sent as "model".
	Slug string
	// DisplayName is the human name; the slug when the catalog has none.
	DisplayName string
	// Efforts lists the accepted reasoning.effort values, in catalog order.
	Efforts []string
	// DefaultEffort is the effort used when the request names none.
	DefaultEffort string
	// Verbosity reports whether text.verbosity other than medium is accepted.
	Verbosity bool
	// Hidden is true when the catalog does not list the model in pickers
	// (visibility other than "list"); it is still usable.
	Hidden bool
	// ContextWindow is the model's context window in tokens, and
	// MaxContextWindow the largest it can be raised to; 0 when the catalog
	// does not say.
	ContextWindow, MaxContextWindow int
	// ServiceTiers are the tiers the model offers beyond the default
	// ("priority", the Fast tier); nil when the catalog does not say.
	// DefaultServiceTier is the one used when a request names none; ""
	// when the catalog does not say.
	ServiceTiers       []string
	DefaultServiceTier string
	// MinClientVersion is the oldest client version the catalog offers
	// the model to (minimal_client_version); "" when it does not say.
	MinClientVersion string
}

// SupportsEffort reports whether effort is one of m.Efforts.
func (m RemoteModel) SupportsEffort(effort string) bool {
	for _, e := range m.Efforts {
		if e == effort {
			return true
		}
	}
	return false
}

// Models fetches the model catalog of the account behind ts:
// GET {upstream}/models?client_version=… (docs/protocol.md#endpoints). Errors are *UpstreamError.
func (c *Client) Models(ctx context.Context, ts TokenSource) ([]RemoteModel, error) {
	ctx, cancel := context.WithTimeout(ctx, modelsTimeout)
	defer cancel()
	s, err := c.send(ctx, ts, call{
		method: http.MethodGet,
		path:   "/models",
		query:  url.Values{"client_version": {c.version}},
		accept: "application/json",
	})
	if err != nil {
		return nil, err
	}
	defer s.cancel(context.Canceled)
	defer s.resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(s.resp.Body, maxModelsBody))
	if err != nil {
		return nil, &UpstreamError{Err: &apierror.Error{Status: http.StatusBadGateway, Code: CodeUpstreamError,
			Message: "Reading the model catalog from the Codex upstream failed."}, Cause: err}
	}
	models, err := ParseModels(body)
	if err != nil {
		return nil, &UpstreamError{Err: &apierror.Error{Status: http.StatusBadGateway, Code: CodeUpstreamError,
			Message: "The Codex upstream returned an unreadable model catalog."}, Cause: err}
	}
	return models, nil
}

// ErrNoModels reports a catalog without a single usable model.
var ErrNoModels = errors.New("codex: model catalog has no models")

// ParseModels decodes a /models answer, {"models":[…]}. Entries that do not
// decode or lack a slug are skipped, so one schema change in one entry does
// not lose the whole catalog.
func ParseModels(body []byte) ([]RemoteModel, error) {
	var doc struct {
		Models []json.RawMessage `json:"models"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(body), &doc); err != nil {
		return nil, err
	}
	out := make([]RemoteModel, 0, len(doc.Models))
	seen := make(map[string]bool, len(doc.Models))
	for _, raw := range doc.Models {
		var m struct {
			Slug          string            `json:"slug"`
			DisplayName   string            `json:"display_name"`
			DefaultEffort string            `json:"default_reasoning_level"`
			Levels        []json.RawMessage `json:"supported_reasoning_levels"`
			Verbosity     bool              `json:"support_verbosity"`
			Visibility    string            `json:"visibility"`
			ContextWindow int               `json:"context_window"`
			MaxContext    int               `json:"max_context_window"`
			Tiers         []json.RawMessage `json:"service_tiers"`
			DefaultTier   *string           `json:"default_service_tier"`
			MinClient     string            `json:"minimal_client_version"`
		}
		if json.Unmarshal(raw, &m) != nil || m.Slug == "" || seen[m.Slug] {
			continue
		}
		seen[m.Slug] = true
		rm := RemoteModel{
			Slug:             m.Slug,
			DisplayName:      orDefault(m.DisplayName, m.Slug),
			DefaultEffort:    m.DefaultEffort,
			Verbosity:        m.Verbosity,
			Hidden:           m.Visibility != "" && m.Visibility != "list",
			MinClientVersion: headerToken(m.MinClient),
		}
		if m.ContextWindow > 0 {
			rm.ContextWindow = m.ContextWindow
		}
		if m.MaxContext > 0 {
			rm.MaxContextWindow = m.MaxContext
		}
		if m.DefaultTier != nil {
			rm.DefaultServiceTier = headerToken(*m.DefaultTier)
		}
		for _, t := range m.Tiers {
			// Tiers are strings or objects naming one ({"id": "priority", …}).
			var obj struct {
				ID   string `json:"id"`
				Slug string `json:"slug"`
				Tier string `json:"tier"`
			}
			tier := rawString(t)
			if tier == "" && json.Unmarshal(t, &obj) == nil {
				tier = firstNonEmpty(obj.ID, obj.Slug, obj.Tier)
			}
			if tier = headerToken(tier); tier != "" && len(rm.ServiceTiers) < 8 {
				rm.ServiceTiers = append(rm.ServiceTiers, tier)
			}
		}
		for _, l := range m.Levels {
			// Levels are objects {effort, description}; tolerate bare strings.
			var lv struct {
				Effort string `json:"effort"`
			}
			if e := rawString(l); e != "" {
				rm.Efforts = append(rm.Efforts, e)
			} else if json.Unmarshal(l, &lv) == nil && lv.Effort != "" {
				rm.Efforts = append(rm.Efforts, lv.Effort)
			}
		}
		out = append(out, rm)
	}
	if len(out) == 0 {
		return nil, ErrNoModels
	}
	return out, nil
}
