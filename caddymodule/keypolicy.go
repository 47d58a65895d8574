package caddymodule

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/usemysub/caddy-codex-proxy/apierror"
	"github.com/usemysub/caddy-codex-proxy/keypolicy"
)

// Per-key policies on the request path. The logic lives in keypolicy and
// the vault; this file only answers refusals and counts them.

// effortClampedHeader tells the client its reasoning effort was lowered by
// its key's policy: "xhigh->high".
const effortClampedHeader = "X-Codex-Proxy-Effort-Clamped"

// keyRefusals counts requests refused by a key policy, by reason only (no
// key or user labels). Package-level: one collector for every handler,
// registered with each config's registry.
var keyRefusals = prometheus.NewCounterVec(prometheus.CounterOpts{
	Namespace: metricsNamespace, Name: "key_refusals_total",
	Help: "Requests refused by an API key's policy, by reason (expired, model, rpm, concurrency, tokens_per_day, tokens_per_week).",
}, []string{"reason"})

// refuse answers a policy refusal before anything went upstream.
func (h *Handler) refuse(w http.ResponseWriter, req *apiRequest, r *keypolicy.Refusal) {
	keyRefusals.WithLabelValues(string(r.Reason)).Inc()
	h.fail(w, req, &apierror.Error{Status: r.Status, Type: r.Type, Code: r.Code, Param: r.Param, Message: r.Message}, r.RetryAfter)
}

// checkKeyExpiry refuses an expired key; it reports whether to go on.
func (h *Handler) checkKeyExpiry(w http.ResponseWriter, req *apiRequest) bool {
	if r := keypolicy.CheckExpiry(req.key.Policy, time.Now()); r != nil {
		h.refuse(w, req, r)
		return false
	}
	return true
}

// admitKey takes a request slot under the key's budgets, rate and
// concurrency limits. On success release must run when the request ends.
func (h *Handler) admitKey(w http.ResponseWriter, req *apiRequest) (release func(), ok bool) {
	release, refused := h.vault.AdmitKey(req.key)
	if refused != nil {
		h.refuse(w, req, refused)
		return nil, false
	}
	return release, true
}

// checkKeyModel refuses a model outside the key's allowlist and announces
// an effort the policy lowered; it reports whether to go on.
func (h *Handler) checkKeyModel(w http.ResponseWriter, req *apiRequest) bool {
	m := req.mapped
	if r := keypolicy.CheckModel(req.key.Policy, m.UpstreamModel, m.ClientModel); r != nil {
		h.refuse(w, req, r)
		return false
	}
	if m.EffortClampedFrom != "" {
		w.Header().Set(effortClampedHeader, m.EffortClampedFrom+"->"+m.Effort)
	}
	return true
}
