package api

import (
	"time"

	"go.uber.org/zap"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// record writes the request log record, the metrics and the access log
// line of a request that got past authentication. The log record is
// queued, not written: nothing here waits on a disk or a database.
func (h *Handler) record(req *request, out outcome) {
	model, effort, tier := "", "", ""
	if req.mapped != nil {
		model, effort, tier = req.mapped.ClientModel, req.mapped.Effort, req.mapped.ServiceTier
	}
	code := ""
	if out.err != nil {
		code = out.err.Code
	}
	u := out.result.Usage
	took := time.Since(req.start)
	h.cfg.Recorder.LogRequest(vault.LogRecord{
		Time: req.start, UserID: req.user.ID, KeyID: req.key.ID, RequestID: req.id, Route: req.route,
		Model: model, Effort: effort, ServiceTier: tier, Status: out.status,
		Duration: took, TTFB: out.ttfb,
		InputTokens: u.InputTokens, OutputTokens: u.OutputTokens, CachedTokens: u.CachedTokens, ReasoningTokens: u.ReasoningTokens,
		ErrorCode: code, AccountID: req.account, FailoverFrom: failoverNote(req.failoverFrom),
	})
	h.obs.Request(req.route, out.status, model)
	h.obs.FirstByte(out.ttfb)
	h.obs.Tokens(u)
	if c := h.log.Check(zap.InfoLevel, "api request"); c != nil {
		c.Write(zap.String("request_id", req.id), zap.String("user_id", req.user.ID), zap.String("key_id", req.key.ID),
			zap.String("route", req.route), zap.String("model", model), zap.Int("status", out.status), zap.String("account", req.account),
			zap.Duration("duration", took), zap.String("error_code", code))
	}
}
