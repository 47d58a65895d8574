package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/usemysub/caddy-codex-proxy/apierror"
	"github.com/usemysub/caddy-codex-proxy/codex"
	"github.com/usemysub/caddy-codex-proxy/relay"
	"github.com/usemysub/caddy-codex-proxy/translate"
)

// A dialect is one client-facing shape a generation arrives in and is
// answered in. The stages around it (admission, routing, relay, record)
// are the same for every dialect.
type dialect interface {
	// parse maps the client's body to a Codex Responses request.
	parse(body []byte, opts translate.RequestOptions) (*translate.Mapped, error)
	// aggregate collects a whole upstream stream into one JSON answer.
	aggregate(m *translate.Mapped, up io.Reader) ([]byte, translate.StreamResult)
	// stream translates the upstream's events as they arrive.
	stream(m *translate.Mapped) relay.Translator
}

// chatDialect is /v1/chat/completions.
type chatDialect struct{}

func (chatDialect) parse(body []byte, opts translate.RequestOptions) (*translate.Mapped, error) {
	return translate.ChatToResponses(body, opts)
}

func (chatDialect) aggregate(m *translate.Mapped, up io.Reader) ([]byte, translate.StreamResult) {
	return translate.AggregateChat(up, chatStreamOptions(m))
}

func (chatDialect) stream(m *translate.Mapped) relay.Translator {
	return translate.NewChatStream(chatStreamOptions(m))
}

func chatStreamOptions(m *translate.Mapped) translate.ChatStreamOptions {
	return translate.ChatStreamOptions{Model: m.ClientModel, IncludeUsage: m.IncludeUsage, ToolNames: m.ToolNames,
		CallIDs: m.CallIDs, LegacyFunctions: m.LegacyFunctions}
}

// responsesDialect is /v1/responses.
type responsesDialect struct{}

func (responsesDialect) parse(body []byte, opts translate.RequestOptions) (*translate.Mapped, error) {
	return translate.NormalizeResponses(body, opts)
}

func (responsesDialect) aggregate(m *translate.Mapped, up io.Reader) ([]byte, translate.StreamResult) {
	return translate.AggregateResponses(up, m.ToolNames, m.CallIDs)
}

func (responsesDialect) stream(m *translate.Mapped) relay.Translator {
	return &translate.ResponsesStream{ToolNames: m.ToolNames, CallIDs: m.CallIDs}
}

// generate serves a generation endpoint in dialect d: read and translate
// the body, check the model, send it upstream on the user's accounts and
// relay the answer.
func generate(d dialect) func(h *Handler, w http.ResponseWriter, r *http.Request, req *request) outcome {
	return func(h *Handler, w http.ResponseWriter, r *http.Request, req *request) outcome {
		body, bad := readBody(w, r, h.cfg.MaxBodySize)
		if bad != nil {
			return h.reject(w, bad, 0)
		}
		opts := translate.RequestOptions{
			Catalog:          h.cfg.Catalog,
			SystemMode:       h.cfg.SystemMode,
			ReasoningSummary: h.cfg.ReasoningSummary,
			CacheKeySalt:     req.user.ID,
			MaxEffort:        req.key.Policy.MaxEffort,
			Tier:             req.key.Policy.ServiceTier,
			ModelTiers:       h.cfg.ServiceTiers,
		}
		var m *translate.Mapped
		var err error
		if _, ok := d.(responsesDialect); ok {
			// The response chain and the translator read one split of the
			// body: it is parsed once.
			split, t, e := h.resolveTurnBody(translate.SplitBody(body), req)
			if e != nil {
				return h.reject(w, e, 0)
			}
			body, req.turn = split.Raw(), t
			m, err = translate.NormalizeResponsesBody(split, opts)
		} else {
			m, err = d.parse(body, opts)
		}
		if out, ok := h.admitMapped(w, req, m, err); !ok {
			return out
		}
		if _, ok := d.(responsesDialect); ok && generateFalse(body) {
			return h.prewarm(w, req) // nothing to generate: nothing upstream
		}
		if len(m.Dropped) > 0 {
			if c := h.log.Check(zap.DebugLevel, "dropped parameters the backend rejects"); c != nil {
				c.Write(zap.String("request_id", req.id), zap.Strings("params", m.Dropped))
			}
		}
		return h.generateMapped(w, r, req, d)
	}
}

// generateMapped is a generation past translation and admission: send
// req.mapped upstream on the user's accounts and relay the answer in d.
func (h *Handler) generateMapped(w http.ResponseWriter, r *http.Request, req *request, d dialect) outcome {
	m := req.mapped
	// What the upstream will bill at least: the prompt as sent.
	req.hold.Reserve(translate.EstimateTokens(int64(len(m.Body))))
	upStart := time.Now()
	up, err := h.send(r.Context(), req, m.Body, codex.RequestHeaders{PromptCacheKey: m.PromptCacheKey, RequestID: req.id})
	h.obs.UpstreamLatency(time.Since(upStart))
	if err != nil {
		out := h.upstreamFailed(w, r.Context(), req, err)
		out.sent = mayHaveRun(err)
		return out
	}
	defer up.Close()
	h.passRateLimits(w, up)
	out := h.relay(w, r, req, d, up)
	out.sent = true
	return out
}

// upstreamFailed answers a generation no account could start.
func (h *Handler) upstreamFailed(w http.ResponseWriter, ctx context.Context, req *request, err error) outcome {
	if ctx.Err() != nil {
		return outcome{status: relay.ClientGone}
	}
	e, retry := clientError(err)
	if e.Code == apierror.CodeModelNotFound {
		e = h.rolloutRefusal(ctx, req, e)
	}
	if e.Status >= http.StatusInternalServerError {
		h.log.Warn("upstream request failed", zap.String("request_id", req.id), zap.String("user_id", req.user.ID),
			zap.String("route", req.route), zap.Int("status", e.Status), zap.String("error_code", e.Code), zap.Error(err))
	}
	return h.reject(w, req.mapped.CallIDs.RestoreError(e), retry)
}

// relay answers with the upstream's stream, translated by d: as a stream
// when the client asked for one, as one JSON body otherwise.
func (h *Handler) relay(w http.ResponseWriter, r *http.Request, req *request, d dialect, up *codex.Stream) outcome {
	m := req.mapped
	var o relay.Outcome
	if !m.Stream {
		// job is the store write of a completed response, run once the
		// client has the answer (responses_store.go).
		var job *storeJob
		agg := relay.Aggregator(func(up io.Reader) ([]byte, translate.StreamResult) { return d.aggregate(m, up) })
		if h.storing(req) {
			agg = h.storingAggregator(req, agg, &job)
		}
		o = relay.Complete(r.Context(), w, up, agg, req.start)
		job.run()
	} else {
		h.obs.StreamStarted()
		tr := d.stream(m)
		if rs, ok := tr.(*translate.ResponsesStream); ok { // the only dialect that relays the upstream's own events
			// Hidden, or a socket client already has them (passRateLimits).
			_, noted := w.(rateLimitsNoter)
			rs.DropRateLimits = !h.cfg.exposeQuota() || noted && up.RateLimits != nil
		}
		var st *storingStream
		if h.storing(req) {
			st = h.storingStream(req, tr)
			tr = st
		}
		o = relay.Stream(r.Context(), w, up, tr, relay.Options{Start: req.start, Keepalive: h.cfg.Keepalive})
		if st != nil {
			st.job.run()
		}
		h.obs.StreamEnded()
		if o.ReadErr != nil {
			h.log.Warn("upstream stream broke mid-response", zap.String("request_id", req.id),
				zap.String("user_id", req.user.ID), zap.String("route", req.route), zap.Error(o.ReadErr))
		}
	}
	return outcome{status: o.Status, err: o.Result.Err, result: o.Result, ttfb: o.TTFB}
}

// mayHaveRun reports whether a generation that failed to start may still
// have run upstream: the request was written and the upstream went silent
// (a header timeout). Refusals such as a usage limit ran nothing.
func mayHaveRun(err error) bool {
	var ue *codex.UpstreamError
	return errors.As(err, &ue) && ue.Err != nil && ue.Err.Code == codex.CodeUpstreamTimeout
}
