package api

import (
	"context"

	"github.com/usemysub/caddy-codex-proxy/apierror"
)

// rolloutRefusal turns the upstream's "model is not supported" (e, a 404
// model_not_found) into a 400 model_not_supported naming a model the
// account has, when the account's own catalog lists the refused model:
// the backend rolls new models out to accounts in phases and lists them
// before it serves them. A model the catalog does not list stays e.
func (h *Handler) rolloutRefusal(ctx context.Context, req *request, e *apierror.Error) *apierror.Error {
	if h.cfg.Models == nil || req.mapped == nil {
		return e
	}
	remote, err := h.cfg.Models.Get(ctx, req.user.ID, h.userTokens(req.user.ID))
	if err != nil {
		return e
	}
	refused, listed, suggestion := req.mapped.UpstreamModel, false, ""
	for _, m := range remote {
		switch {
		case m.Slug == refused:
			listed = true
		case suggestion == "" && !m.Hidden && req.key.Policy.AllowsModel(m.Slug):
			suggestion = m.Slug
		}
	}
	if !listed {
		return e
	}
	return apierror.ModelNotSupported(req.mapped.ClientModel, suggestion)
}
