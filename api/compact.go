package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/usemysub/caddy-codex-proxy/apierror"
	"github.com/usemysub/caddy-codex-proxy/codex"
	"github.com/usemysub/caddy-codex-proxy/translate"
)

// Compactor is the optional part of an Upstream that compacts a
// conversation (POST {base}/responses/compact); *codex.Client has it.
type Compactor interface {
	Compact(ctx context.Context, ts codex.TokenSource, body []byte, h codex.RequestHeaders) (*codex.Stream, error)
}

// compactFields are what the backend's compact endpoint takes: the fields
// the Codex CLI sends, without a turn's store, stream and include.
var compactFields = []string{"model", "input", "instructions", "tools", "parallel_tool_calls", "reasoning",
	"service_tier", "prompt_cache_key", "text"}

// maxCompactAnswer bounds the compact endpoint's answer read into memory.
const maxCompactAnswer = 64 << 20

// serveCompact is POST /v1/responses/compact: the body is read as a
// /v1/responses body (previous_response_id and item_reference resolved,
// the input normalised, the model resolved and admitted), cut down to the
// fields the compact endpoint takes, and the backend's JSON answer (the
// compacted output items) relayed as it is. Nothing is stored.
func (h *Handler) serveCompact(w http.ResponseWriter, r *http.Request, req *request) outcome {
	cp, ok := h.cfg.Upstream.(Compactor)
	if !ok {
		return h.reject(w, apierror.UnknownURL(r.Method, r.URL.Path, served), 0)
	}
	body, bad := readBody(w, r, h.cfg.MaxBodySize)
	if bad != nil {
		return h.reject(w, bad, 0)
	}
	split, _, e := h.resolveTurnBody(translate.SplitBody(body), req)
	if e != nil {
		return h.reject(w, e, 0)
	}
	m, err := translate.NormalizeResponsesBody(split, translate.RequestOptions{
		Catalog: h.cfg.Catalog, SystemMode: h.cfg.SystemMode, CacheKeySalt: req.user.ID, MaxEffort: req.key.Policy.MaxEffort,
		Tier: req.key.Policy.ServiceTier, ModelTiers: h.cfg.ServiceTiers,
	})
	if out, ok := h.admitMapped(w, req, m, err); !ok {
		return out
	}
	var full map[string]json.RawMessage
	_ = json.Unmarshal(m.Body, &full)
	cut := make(map[string]json.RawMessage, len(compactFields))
	for _, k := range compactFields {
		if v, ok := full[k]; ok {
			cut[k] = v
		}
	}
	upBody, _ := json.Marshal(cut)
	m.Body = upBody
	req.hold.Reserve(translate.EstimateTokens(int64(len(upBody))))

	hdr := codex.RequestHeaders{PromptCacheKey: m.PromptCacheKey, RequestID: req.id}
	upStart := time.Now()
	up, err := h.sendWith(r.Context(), req, hdr, func(ts codex.TokenSource) (*codex.Stream, error) {
		return cp.Compact(r.Context(), ts, upBody, hdr)
	})
	h.obs.UpstreamLatency(time.Since(upStart))
	if err != nil {
		out := h.upstreamFailed(w, r.Context(), req, err)
		out.sent = mayHaveRun(err)
		return out
	}
	defer up.Close()
	answer, rerr := io.ReadAll(io.LimitReader(up, maxCompactAnswer))
	if rerr != nil {
		out := h.reject(w, apierror.UpstreamFailed(), 0)
		out.sent = true
		return out
	}
	var usage struct {
		Usage struct {
			InputTokens  int64 `json:"input_tokens"`
			OutputTokens int64 `json:"output_tokens"`
			TotalTokens  int64 `json:"total_tokens"`
		} `json:"usage"`
	}
	_ = json.Unmarshal(answer, &usage)
	h.passRateLimits(w, up)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(answer)
	res := translate.StreamResult{Completed: true, Usage: translate.Usage{InputTokens: usage.Usage.InputTokens,
		OutputTokens: usage.Usage.OutputTokens, TotalTokens: usage.Usage.TotalTokens}}
	return outcome{status: http.StatusOK, result: res, ttfb: time.Since(req.start), sent: true}
}
