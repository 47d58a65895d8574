package api

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/usemysub/caddy-codex-proxy/apierror"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// The stored-response endpoints: GET /v1/responses/{id}, GET
// /v1/responses/{id}/input_items and DELETE /v1/responses/{id}, each on
// the key's user's responses only (another user's id is not found).

// responseID is the {id} of /v1/responses/{id}[/input_items].
func responseID(path string) string {
	id := strings.TrimPrefix(strings.TrimSuffix(path, "/"), "/v1/responses/")
	id, _ = strings.CutSuffix(id, "/input_items")
	return id
}

// clientResponse is the stored response id, never a socket's own entry
// (socket_chain.go).
func (h *Handler) clientResponse(req *request, id string) (vault.StoredResponse, error) {
	if isScoped(id) {
		return vault.StoredResponse{}, vault.ErrNotFound
	}
	return h.cfg.Responses.Response(req.user.ID, id)
}

// serveGetResponse answers the stored response object.
func (h *Handler) serveGetResponse(w http.ResponseWriter, r *http.Request, req *request) outcome {
	id := responseID(r.URL.Path)
	if h.cfg.Responses == nil {
		return h.reject(w, errNoStore(id), 0)
	}
	got, err := h.clientResponse(req, id)
	if err != nil {
		return h.reject(w, h.storeError(err, req, apierror.ResponseNotFound(id)), 0)
	}
	w.Header().Set("Cache-Control", "no-store")
	return h.writeJSON(w, got.Response)
}

// serveDeleteResponse forgets a stored response.
func (h *Handler) serveDeleteResponse(w http.ResponseWriter, r *http.Request, req *request) outcome {
	id := responseID(r.URL.Path)
	if h.cfg.Responses == nil {
		return h.reject(w, errNoStore(id), 0)
	}
	if isScoped(id) {
		return h.reject(w, apierror.ResponseNotFound(id), 0)
	}
	if err := h.cfg.Responses.DeleteResponse(req.user.ID, id); err != nil {
		return h.reject(w, h.storeError(err, req, apierror.ResponseNotFound(id)), 0)
	}
	return h.writeJSON(w, struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Deleted bool   `json:"deleted"`
	}{id, "response", true})
}

// inputItemList is a page of input items, as OpenAI pages lists.
type inputItemList struct {
	Object  string            `json:"object"`
	Data    []json.RawMessage `json:"data"`
	FirstID *string           `json:"first_id"`
	LastID  *string           `json:"last_id"`
	HasMore bool              `json:"has_more"`
}

// serveInputItems pages through a stored response's input: limit (1–100,
// default 20), order (desc, the default, or asc) and after (an item id:
// the page starts after it).
func (h *Handler) serveInputItems(w http.ResponseWriter, r *http.Request, req *request) outcome {
	id := responseID(r.URL.Path)
	q := r.URL.Query()
	limit := 20
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			return h.reject(w, apierror.InvalidValue("limit", "limit must be an integer from 1 to 100, not %s", quoteShort(s)), 0)
		}
		limit = n
	}
	order := q.Get("order")
	switch order {
	case "":
		order = "desc"
	case "asc", "desc":
	default:
		return h.reject(w, apierror.InvalidValue("order", "order must be asc or desc, not %s", quoteShort(order)), 0)
	}
	if h.cfg.Responses == nil {
		return h.reject(w, errNoStore(id), 0)
	}
	got, err := h.clientResponse(req, id)
	if err != nil {
		return h.reject(w, h.storeError(err, req, apierror.ResponseNotFound(id)), 0)
	}
	items := append([]json.RawMessage(nil), got.Input...)
	if order == "desc" {
		for i, j := 0, len(items)-1; i < j; i, j = i+1, j-1 {
			items[i], items[j] = items[j], items[i]
		}
	}
	if after := q.Get("after"); after != "" {
		at := -1
		for i, it := range items {
			if _, iid := itemTypeID(it); iid == after {
				at = i
				break
			}
		}
		if at < 0 {
			return h.reject(w, apierror.ItemNotFound("after", after), 0)
		}
		items = items[at+1:]
	}
	page := inputItemList{Object: "list", Data: items}
	if len(items) > limit {
		page.Data, page.HasMore = items[:limit], true
	}
	if page.Data == nil {
		page.Data = []json.RawMessage{}
	}
	if n := len(page.Data); n > 0 {
		_, first := itemTypeID(page.Data[0])
		_, last := itemTypeID(page.Data[n-1])
		page.FirstID, page.LastID = &first, &last
	}
	w.Header().Set("Cache-Control", "no-store")
	return h.writeJSON(w, page)
}
