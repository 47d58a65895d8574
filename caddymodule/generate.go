package caddymodule

import (
	"io"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/usemysub/caddy-codex-proxy/apierror"
	"github.com/usemysub/caddy-codex-proxy/codex"
	"github.com/usemysub/caddy-codex-proxy/relay"
	"github.com/usemysub/caddy-codex-proxy/translate"
)

// serveGenerate handles /v1/chat/completions (chat) and /v1/responses.
func (h *Handler) serveGenerate(w http.ResponseWriter, r *http.Request, req *apiRequest, chat bool) {
	body, bad := readBody(w, r, h.MaxBodySize)
	if bad != nil {
		h.fail(w, req, bad, 0)
		return
	}
	opts := translate.RequestOptions{
		Catalog:          h.catalog,
		SystemMode:       translate.SystemMode(h.SystemPrompt),
		ReasoningSummary: h.ReasoningSummary,
		CacheKeySalt:     req.user.ID,
		MaxEffort:        req.key.Policy.MaxEffort,
	}
	var err error
	if chat {
		req.mapped, err = translate.ChatToResponses(body, opts)
	} else {
		req.mapped, err = translate.NormalizeResponses(body, opts)
	}
	if err != nil {
		e, retry := clientError(err)
		h.fail(w, req, e, retry)
		return
	}
	// The key's policy, after the model is known and before anything goes
	// upstream.
	if !h.checkKeyModel(w, req) {
		return
	}
	release, ok := h.admitKey(w, req)
	if !ok {
		return
	}
	defer release() // the stream ended or the client went away
	m := req.mapped
	if len(m.Dropped) > 0 {
		if c := h.logger.Check(zap.DebugLevel, "dropped parameters the backend rejects"); c != nil {
			c.Write(zap.String("request_id", req.id), zap.Strings("params", m.Dropped))
		}
	}

	upStart := time.Now()
	up, err := h.sendGeneration(r.Context(), req, m.Body,
		codex.RequestHeaders{PromptCacheKey: m.PromptCacheKey, RequestID: req.id})
	h.metrics.upstreamLatency(time.Since(upStart))
	if err != nil {
		if r.Context().Err() != nil {
			req.status = 499
			return
		}
		e, retry := clientError(err)
		if e.Status >= http.StatusInternalServerError {
			h.logger.Warn("upstream request failed", zap.String("request_id", req.id), zap.String("user_id", req.user.ID),
				zap.String("route", req.route), zap.Int("status", e.Status), zap.String("error_code", e.Code), zap.Error(err))
		}
		h.fail(w, req, m.CallIDs.RestoreError(e), retry)
		return
	}
	defer up.Close()
	codex.PassHeaders(w.Header(), up.Header)

	chatOpts := translate.ChatStreamOptions{Model: m.ClientModel, IncludeUsage: m.IncludeUsage, ToolNames: m.ToolNames,
		CallIDs: m.CallIDs, LegacyFunctions: m.LegacyFunctions}
	var o relay.Outcome
	if !m.Stream {
		agg := func(up io.Reader) ([]byte, translate.StreamResult) {
			return translate.AggregateResponses(up, m.ToolNames, m.CallIDs)
		}
		if chat {
			agg = func(up io.Reader) ([]byte, translate.StreamResult) { return translate.AggregateChat(up, chatOpts) }
		}
		o = relay.Complete(r.Context(), w, up, agg, req.start)
	} else {
		var tr relay.Translator
		if chat {
			tr = translate.NewChatStream(chatOpts)
		} else {
			tr = &translate.ResponsesStream{ToolNames: m.ToolNames, CallIDs: m.CallIDs}
		}
		h.metrics.streamStarted()
		o = relay.Stream(r.Context(), w, up, tr, relay.Options{Start: req.start, Keepalive: time.Duration(h.Keepalive)})
		h.metrics.streamEnded()
		if o.ReadErr != nil {
			h.logger.Warn("upstream stream broke mid-response", zap.String("request_id", req.id),
				zap.String("user_id", req.user.ID), zap.String("route", req.route), zap.Error(o.ReadErr))
		}
	}
	req.status, req.result, req.ttfb = o.Status, o.Result, o.TTFB
	if o.Result.Err != nil {
		req.errObj = o.Result.Err
	}
}

// fail answers with an error before any byte of a response was sent.
func (h *Handler) fail(w http.ResponseWriter, req *apiRequest, e *apierror.Error, retry time.Duration) {
	req.status, req.errObj = e.Status, e
	writeRetryAfter(w, retry)
	writeError(w, e)
}
