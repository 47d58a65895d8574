package api

import (
	"time"

	"go.uber.org/zap"

	"github.com/usemysub/caddy-codex-proxy/translate"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// record writes the request log record, the metrics and the access log
// line of a request that got past authentication. The log record is
// queued, not written: nothing here waits on a disk or a database.
func (h *Handler) record(req *request, out outcome) {
	model, effort, tier, asked := "", "", "", ""
	if req.mapped != nil {
		model, effort, tier, asked = req.mapped.ClientModel, req.mapped.Effort, req.mapped.ServiceTier, req.mapped.RequestedTier
	}
	code := ""
	if out.err != nil {
		code = out.err.Code
	}
	u, estimated := usageOf(req, out)
	took := time.Since(req.start)
	h.cfg.Recorder.LogRequestSettling(vault.LogRecord{
		Time: req.start, UserID: req.user.ID, KeyID: req.key.ID, RequestID: req.id, Route: req.route,
		Model: model, Effort: effort, ServiceTier: tier, RequestedTier: loggedTier(asked), Status: out.status,
		Duration: took, TTFB: out.ttfb,
		InputTokens: u.InputTokens, OutputTokens: u.OutputTokens, CachedTokens: u.CachedTokens, ReasoningTokens: u.ReasoningTokens,
		ErrorCode: code, AccountID: req.account, FailoverFrom: failoverNote(req.failoverFrom),
		Estimated: estimated,
	}, req.hold)
	h.obs.Request(req.route, out.status, model)
	h.obs.FirstByte(out.ttfb)
	h.obs.Tokens(model, u)
	if c := h.log.Check(zap.InfoLevel, "api request"); c != nil {
		c.Write(zap.String("request_id", req.id), zap.String("user_id", req.user.ID), zap.String("key_id", req.key.ID),
			zap.String("route", req.route), zap.String("model", model), zap.Int("status", out.status), zap.String("account", req.account),
			zap.Duration("duration", took), zap.String("error_code", code), zap.Bool("estimated", estimated))
	}
}

// usageOf is what a request is charged: the upstream's usage when its
// terminal event came; an estimate when a generation reached the upstream
// and ended without it (the client went away, the stream was cut, the
// upstream went silent), since the upstream bills the owner's
// subscription for it either way; nothing otherwise.
func usageOf(req *request, out outcome) (u translate.Usage, estimated bool) {
	u = out.result.Usage
	if !out.sent || req.mapped == nil || u.InputTokens > 0 || u.OutputTokens > 0 {
		return u, false
	}
	return translate.Usage{
		InputTokens:  translate.EstimateTokens(int64(len(req.mapped.Body))),
		OutputTokens: translate.EstimateTokens(out.result.OutputBytes),
	}, true
}

// knownTiers are the service tiers of the OpenAI APIs, logged as the
// client sent them.
var knownTiers = map[string]bool{"fast": true, translate.TierPriority: true, "auto": true, "default": true, "flex": true, "scale": true}

// loggedTier is the requested tier as the log keeps it: a known tier, or
// "other" for any other text, which is the client's and unbounded.
func loggedTier(asked string) string {
	if asked == "" || knownTiers[asked] {
		return asked
	}
	return "other"
}
