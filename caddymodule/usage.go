package caddymodule

import (
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/usemysub/caddy-codex-proxy/keypolicy"
	"github.com/usemysub/caddy-codex-proxy/translate"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// usageResponse is the body of GET /v1/usage (docs/key-policies.md#usage-get-v1usage).
type usageResponse struct {
	Object string `json:"object"` // "usage"
	Scope  string `json:"scope"`  // "key" or "user"
	// Key, Policy and Usage are the calling key's (scope=key).
	Key    *keyInfo          `json:"key,omitempty"`
	Policy *keypolicy.Policy `json:"policy,omitempty"`
	Usage  *keypolicy.Status `json:"usage,omitempty"`
	// Keys are all the owner's active keys (scope=user), Total their sums.
	Keys  []usageKey        `json:"keys,omitempty"`
	Total *keypolicy.Status `json:"total,omitempty"`
	// Account is the preferred linked ChatGPT account's latest windows,
	// when the operator exposes them and the upstream has reported them.
	Account *accountQuota `json:"account,omitempty"`
	// Accounts are all the owner's linked accounts in their order, each
	// with its windows (when reported) and whether it is at its limit.
	Accounts []linkedAccount `json:"accounts,omitempty"`
}

// linkedAccount is one of the owner's ChatGPT accounts in /v1/usage.
type linkedAccount struct {
	ID             string        `json:"id"`
	Label          string        `json:"label,omitempty"`
	Position       int           `json:"position"`
	PlanType       string        `json:"plan_type,omitempty"`
	RelinkNeeded   bool          `json:"relink_needed,omitempty"`
	ExhaustedUntil time.Time     `json:"exhausted_until,omitzero"`
	Quota          *accountQuota `json:"quota,omitempty"`
}

// usageKey is one key's policy and counters.
type usageKey struct {
	Key    keyInfo          `json:"key"`
	Policy keypolicy.Policy `json:"policy"`
	Usage  keypolicy.Status `json:"usage"`
}

// keyInfo is what a key holder may see of a key: never its hash.
type keyInfo struct {
	ID       string    `json:"id"`
	Label    string    `json:"label"`
	Prefix   string    `json:"prefix"`
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"last_used,omitzero"`
}

// accountQuota is a ChatGPT account's usage windows as last reported.
type accountQuota struct {
	PlanType string       `json:"plan_type,omitempty"`
	FiveHour *quotaWindow `json:"five_hour,omitempty"`
	Weekly   *quotaWindow `json:"weekly,omitempty"`
	// Seen is when the upstream reported them (they change with every
	// request of any of the owner's keys).
	Seen time.Time `json:"seen"`
}

type quotaWindow struct {
	UsedPercent   float64   `json:"used_percent"`
	WindowMinutes int       `json:"window_minutes,omitempty"`
	ResetsAt      time.Time `json:"resets_at,omitzero"`
}

// serveUsage answers GET /v1/usage: the key's counters against its
// policy, or with ?scope=user the owner's keys and their totals.
func (h *Handler) serveUsage(w http.ResponseWriter, r *http.Request, req *apiRequest) {
	resp := usageResponse{Object: "usage"}
	switch scope := r.URL.Query().Get("scope"); scope {
	case "", "key":
		resp.Scope = "key"
		k := h.usageOf(req.key)
		resp.Key, resp.Policy, resp.Usage = &k.Key, &k.Policy, &k.Usage
	case "user":
		resp.Scope = "user"
		keys, err := h.vault.ListKeys(req.user.ID)
		if err != nil {
			h.logger.Error("listing keys for /v1/usage failed", zap.String("request_id", req.id), zap.Error(err))
			h.fail(w, req, &translate.Error{Status: http.StatusInternalServerError, Type: "server_error", Code: "internal_error",
				Message: "reading your keys failed; retry shortly"}, 0)
			return
		}
		total := keypolicy.Status{}
		resp.Keys = []usageKey{}
		for _, k := range keys {
			if k.Disabled {
				continue
			}
			u := h.usageOf(k)
			resp.Keys = append(resp.Keys, u)
			total.Sum(u.Usage)
		}
		resp.Total = &total
	default:
		h.fail(w, req, &translate.Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "invalid_value", Param: "scope",
			Message: "scope must be key (the default) or user, not " + quoteShort(scope)}, 0)
		return
	}
	if h.ExposeAccountQuota == nil || *h.ExposeAccountQuota {
		if q, err := h.vault.Quota(req.user.ID); err == nil {
			resp.Account = accountQuotaOf(q)
		}
		if accts, err := h.vault.Accounts(req.user.ID); err == nil {
			for _, a := range accts {
				la := linkedAccount{ID: a.ID, Label: a.Label, Position: a.Position, PlanType: a.PlanType,
					RelinkNeeded: a.RelinkNeeded, ExhaustedUntil: a.ExhaustedUntil}
				if q, err := h.vault.AccountQuota(req.user.ID, a.ID); err == nil {
					la.Quota = accountQuotaOf(q)
				}
				resp.Accounts = append(resp.Accounts, la)
			}
		}
	}
	req.status = http.StatusOK
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, resp)
}

// usageOf is one key's entry.
func (h *Handler) usageOf(k vault.Key) usageKey {
	return usageKey{
		Key:    keyInfo{ID: k.ID, Label: k.Label, Prefix: k.Prefix, Created: k.Created, LastUsed: k.LastUsed},
		Policy: k.Policy,
		Usage:  h.vault.KeyStatus(k),
	}
}

// accountQuotaOf maps a vault snapshot: the primary window is the short
// (5-hour) one, the secondary the weekly one.
func accountQuotaOf(q vault.QuotaSnapshot) *accountQuota {
	win := func(w *vault.QuotaWindow) *quotaWindow {
		if w == nil {
			return nil
		}
		out := &quotaWindow{UsedPercent: w.UsedPercent, WindowMinutes: w.WindowMinutes, ResetsAt: w.ResetAt}
		if out.ResetsAt.IsZero() && w.ResetAfter > 0 {
			out.ResetsAt = q.Seen.Add(w.ResetAfter).UTC().Truncate(time.Second)
		}
		return out
	}
	return &accountQuota{PlanType: q.PlanType, FiveHour: win(q.Primary), Weekly: win(q.Secondary), Seen: q.Seen}
}

// quoteShort quotes a client value for an error message, cut to 40 bytes.
func quoteShort(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return "'" + s + "'"
}
