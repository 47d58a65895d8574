package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/usemysub/caddy-codex-proxy/apierror"
	"github.com/usemysub/caddy-codex-proxy/keypolicy"
	"github.com/usemysub/caddy-codex-proxy/translate"
)

// Per-key policies on the request path, in two steps. The rules live in
// keypolicy and the counters in the vault; this file only asks them and
// answers refusals.
//
//  1. admit, before the body is read: everything that depends on the key
//     alone (expiry for every endpoint; the request rate for /v1/usage and
//     generations; for generations also the concurrency slot and the token
//     budgets). A refused request costs no body read, no parse and no
//     upstream call.
//  2. admitModel, right after the body is parsed: the model allowlist and
//     the effort ceiling, which need the request's model. A request the
//     allowlist refuses gives its slot back as if it never came (a
//     refused request counts nothing); a body is still read only while the
//     key has rate and a slot left.

// noRelease is the release of a request that took no slot.
func noRelease() {}

// admit runs the key-level checks for ep. On success release must run when
// the request ends; otherwise the refusal was answered and out says so.
func (h *Handler) admit(w http.ResponseWriter, r *http.Request, req *request, ep endpoint) (release func(), out outcome, ok bool) {
	if refused := keypolicy.CheckExpiry(req.key.Policy, time.Now()); refused != nil {
		return nil, h.refuse(w, refused), false
	}
	switch ep.admission {
	case admitExpiry:
		return noRelease, outcome{}, true
	case admitRate:
		if refused := h.cfg.Keys.AdmitKeyRate(req.key); refused != nil {
			return nil, h.refuse(w, refused), false
		}
		return noRelease, outcome{}, true
	}
	hold, refused := h.cfg.Keys.AdmitKeyHold(req.key, sizeEstimate(r))
	if refused != nil {
		return nil, h.refuse(w, refused), false
	}
	req.hold = hold
	return hold.Release, outcome{}, true
}

// sizeEstimate is a generation's token reservation before its body is read:
// from its declared length when it is not compressed, else none until it is
// parsed (see generate).
func sizeEstimate(r *http.Request) int64 {
	if enc := r.Header.Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "identity") {
		return 0
	}
	return translate.EstimateTokens(r.ContentLength)
}

// admitMapped takes a translated request: a translation error is the
// client's (in its dialect, nothing counted), then the model's admission
// (admitModel). ok false means out is the answer already written.
func (h *Handler) admitMapped(w http.ResponseWriter, req *request, m *translate.Mapped, err error) (out outcome, ok bool) {
	if err != nil {
		e, retry := clientError(err)
		return h.reject(w, e, retry), false
	}
	req.mapped = m
	return h.admitModel(w, req)
}

// admitModel refuses a model outside the key's allowlist and announces an
// effort the policy lowered (EffortClampedHeader).
func (h *Handler) admitModel(w http.ResponseWriter, req *request) (outcome, bool) {
	m := req.mapped
	if r := keypolicy.CheckModel(req.key.Policy, m.UpstreamModel, m.ClientModel); r != nil {
		// A refused request counts nothing: not against the rate either.
		req.hold.Refund()
		return h.refuse(w, r), false
	}
	// The translators set Images while they read the tools: nothing here
	// searches the body again.
	if req.key.Policy.DenyImages && m.Images {
		if r := keypolicy.CheckImages(req.key.Policy); r != nil {
			req.hold.Refund()
			return h.refuse(w, r), false
		}
	}
	if m.EffortClampedFrom != "" {
		w.Header().Set(EffortClampedHeader, m.EffortClampedFrom+"->"+m.Effort)
	}
	return outcome{}, true
}

// refuse answers a policy refusal before anything went upstream.
func (h *Handler) refuse(w http.ResponseWriter, r *keypolicy.Refusal) outcome {
	h.obs.KeyRefused(r.Reason)
	return h.reject(w, &apierror.Error{Status: r.Status, Type: r.Type, Code: r.Code, Param: r.Param, Message: r.Message}, r.RetryAfter)
}
