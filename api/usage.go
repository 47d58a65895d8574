package api

import (
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/usemysub/caddy-codex-proxy/apierror"
	"github.com/usemysub/caddy-codex-proxy/keypolicy"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// UsageResponse is the body of GET /v1/usage (docs/key-policies.md#usage-get-v1usage).
type UsageResponse struct {
	Object string `json:"object"` // "usage"
	Scope  string `json:"scope"`  // "key" or "user"
	// Key, Policy and Usage are the calling key's (scope=key).
	Key    *KeyInfo          `json:"key,omitempty"`
	Policy *keypolicy.Policy `json:"policy,omitempty"`
	Usage  *keypolicy.Status `json:"usage,omitempty"`
	// Keys are all the owner's active keys (scope=user), Total their sums.
	Keys  []UsageKey        `json:"keys,omitempty"`
	Total *keypolicy.Status `json:"total,omitempty"`
	// Account is the preferred linked ChatGPT account's latest windows,
	// when the operator exposes them and the upstream has reported them.
	Account *AccountQuota `json:"account,omitempty"`
	// Accounts are all the owner's linked accounts in their order, each
	// with its windows (when reported) and whether it is at its limit.
	Accounts []LinkedAccount `json:"accounts,omitempty"`
	// Cache is the prompt cache's use over the last CacheDays UTC days
	// (today included): of the calling key (scope=key), or of all the
	// owner's keys with a line per key (scope=user). Absent when the log
	// could not be read.
	Cache *vault.CacheUsage `json:"cache,omitempty"`
}

// CacheDays is how many UTC days /v1/usage's cache figures cover.
const CacheDays = 7

// LinkedAccount is one of the owner's ChatGPT accounts in /v1/usage.
type LinkedAccount struct {
	ID             string        `json:"id"`
	Label          string        `json:"label,omitempty"`
	Position       int           `json:"position"`
	PlanType       string        `json:"plan_type,omitempty"`
	RelinkNeeded   bool          `json:"relink_needed,omitempty"`
	ExhaustedUntil time.Time     `json:"exhausted_until,omitzero"`
	Quota          *AccountQuota `json:"quota,omitempty"`
}

// UsageKey is one key's policy and counters.
type UsageKey struct {
	Key    KeyInfo          `json:"key"`
	Policy keypolicy.Policy `json:"policy"`
	Usage  keypolicy.Status `json:"usage"`
}

// KeyInfo is what a key holder may see of a key: never its hash.
type KeyInfo struct {
	ID       string    `json:"id"`
	Label    string    `json:"label"`
	Prefix   string    `json:"prefix"`
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"last_used,omitzero"`
}

// AccountQuota is a ChatGPT account's usage windows as last reported.
type AccountQuota struct {
	PlanType string       `json:"plan_type,omitempty"`
	FiveHour *QuotaWindow `json:"five_hour,omitempty"`
	Weekly   *QuotaWindow `json:"weekly,omitempty"`
	// ActiveLimit names the limit in force (x-codex-active-limit); ""
	// when the upstream did not say.
	ActiveLimit string `json:"active_limit,omitempty"`
	// Limits are the other rate-limit families the upstream reports (a
	// model's own limit …), each with its windows.
	Limits []QuotaLimit `json:"limits,omitempty"`
	// Seen is when the upstream reported them (they change with every
	// request of any of the owner's keys).
	Seen time.Time `json:"seen"`
}

// QuotaLimit is one rate-limit family beside the account's own windows:
// its id as the upstream names it and its display name.
type QuotaLimit struct {
	ID       string       `json:"id"`
	Name     string       `json:"name,omitempty"`
	FiveHour *QuotaWindow `json:"five_hour,omitempty"`
	Weekly   *QuotaWindow `json:"weekly,omitempty"`
}

// QuotaWindow is one usage window: how much of it is used and when it
// resets.
type QuotaWindow struct {
	UsedPercent   float64   `json:"used_percent"`
	WindowMinutes int       `json:"window_minutes,omitempty"`
	ResetsAt      time.Time `json:"resets_at,omitzero"`
}

// serveUsage answers GET /v1/usage: the key's counters against its
// policy, or with ?scope=user the owner's keys and their totals.
func (h *Handler) serveUsage(w http.ResponseWriter, r *http.Request, req *request) outcome {
	resp := UsageResponse{Object: "usage"}
	switch scope := r.URL.Query().Get("scope"); scope {
	case "", "key":
		resp.Scope = "key"
		k := h.usageOf(req.key)
		resp.Key, resp.Policy, resp.Usage = &k.Key, &k.Policy, &k.Usage
	case "user":
		// The owner's other keys are the owner's business: a key with a
		// policy is the kind handed to a person or a tool with less trust.
		if !req.key.Policy.IsZero() {
			return h.reject(w, apierror.ScopeNotAllowed("scope=user lists all of the owner's keys and accounts; it needs a key without a policy. Ask without scope for this key's own usage."), 0)
		}
		resp.Scope = "user"
		keys, err := h.cfg.Keys.ListKeys(req.user.ID)
		if err != nil {
			h.log.Error("listing keys for /v1/usage failed", zap.String("request_id", req.id), zap.Error(err))
			return h.reject(w, apierror.Internal("reading your keys failed; retry shortly"), 0)
		}
		total := keypolicy.Status{}
		resp.Keys = []UsageKey{}
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
		return h.reject(w, apierror.InvalidValue("scope", "scope must be key (the default) or user, not %s", quoteShort(scope)), 0)
	}
	if h.cfg.exposeQuota() {
		resp.Account, resp.Accounts = h.accountsUsage(req.user.ID, req.key.Policy)
	}
	keyID := req.key.ID
	if resp.Scope == "user" {
		keyID = ""
	}
	now := time.Now().UTC()
	since := time.Date(now.Year(), now.Month(), now.Day()-(CacheDays-1), 0, 0, 0, 0, time.UTC)
	if c, err := h.cfg.Recorder.CacheUsage(req.user.ID, keyID, since); err != nil {
		h.log.Warn("reading the prompt-cache use for /v1/usage failed", zap.String("request_id", req.id), zap.Error(err))
	} else {
		resp.Cache = &c
	}
	w.Header().Set("Cache-Control", "no-store")
	return h.writeJSON(w, resp)
}

// accountsUsage is the windows of the account that serves the key (the
// pinned one, or the user's preferred one) and the linked accounts the key
// may see with their own: all of them for a key without a policy, its own
// for a pinned key, none for another restricted key.
func (h *Handler) accountsUsage(userID string, p keypolicy.Policy) (*AccountQuota, []LinkedAccount) {
	var serving *AccountQuota
	if p.Account != "" {
		if q, err := h.cfg.Accounts.AccountQuota(userID, p.Account); err == nil {
			serving = accountQuotaOf(q)
		}
	} else if q, err := h.cfg.Accounts.Quota(userID); err == nil {
		serving = accountQuotaOf(q)
	}
	if !p.IsZero() && p.Account == "" {
		return serving, nil
	}
	accts, err := h.cfg.Accounts.Accounts(userID)
	if err != nil {
		return serving, nil
	}
	var list []LinkedAccount
	for _, a := range accts {
		if p.Account != "" && a.ID != p.Account {
			continue
		}
		la := LinkedAccount{ID: a.ID, Label: a.Label, Position: a.Position, PlanType: a.PlanType,
			RelinkNeeded: a.RelinkNeeded, ExhaustedUntil: a.ExhaustedUntil}
		if q, err := h.cfg.Accounts.AccountQuota(userID, a.ID); err == nil {
			la.Quota = accountQuotaOf(q)
		}
		list = append(list, la)
	}
	return serving, list
}

// usageOf is one key's entry.
func (h *Handler) usageOf(k vault.Key) UsageKey {
	return UsageKey{
		Key:    KeyInfo{ID: k.ID, Label: k.Label, Prefix: k.Prefix, Created: k.Created, LastUsed: k.LastUsed},
		Policy: k.Policy,
		Usage:  h.cfg.Keys.KeyStatus(k),
	}
}

// accountQuotaOf maps a vault snapshot: the primary window is the short
// (5-hour) one, the secondary the weekly one.
func accountQuotaOf(q vault.QuotaSnapshot) *AccountQuota {
	win := func(w *vault.QuotaWindow) *QuotaWindow {
		if w == nil {
			return nil
		}
		out := &QuotaWindow{UsedPercent: w.UsedPercent, WindowMinutes: w.WindowMinutes, ResetsAt: w.ResetAt}
		if out.ResetsAt.IsZero() && w.ResetAfter > 0 {
			out.ResetsAt = q.Seen.Add(w.ResetAfter).UTC().Truncate(time.Second)
		}
		return out
	}
	aq := &AccountQuota{PlanType: q.PlanType, ActiveLimit: q.ActiveLimit, FiveHour: win(q.Primary), Weekly: win(q.Secondary), Seen: q.Seen}
	for _, f := range q.Families {
		aq.Limits = append(aq.Limits, QuotaLimit{ID: f.ID, Name: f.Name, FiveHour: win(f.Primary), Weekly: win(f.Secondary)})
	}
	return aq
}

// quoteShort quotes a client value for an error message, cut to 40 bytes.
func quoteShort(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return "'" + s + "'"
}
