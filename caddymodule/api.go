package caddymodule

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/usemysub/caddy-codex-proxy/apierror"
	"github.com/usemysub/caddy-codex-proxy/codex"
	"github.com/usemysub/caddy-codex-proxy/translate"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// apiRequest is what one API call carries through the handler.
type apiRequest struct {
	id     string
	route  string
	start  time.Time
	user   vault.User
	key    vault.Key
	status int
	ttfb   time.Duration
	mapped *translate.Mapped
	result translate.StreamResult
	errObj *apierror.Error
	// account is the linked ChatGPT account that served the request;
	// failoverFrom the ones tried before it that were at their limit.
	account      string
	failoverFrom []string
}

// serveAPI handles everything under /v1/.
func (h *Handler) serveAPI(w http.ResponseWriter, r *http.Request) {
	req := &apiRequest{id: "req_" + rand.Text(), start: time.Now()}
	w.Header().Set("X-Request-Id", req.id)
	h.setCORS(w, r)
	if r.Method == http.MethodOptions {
		w.Header().Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
		w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Content-Encoding, X-Api-Key, Api-Key, OpenAI-Organization, OpenAI-Project, OpenAI-Beta, X-Stainless-Arch, X-Stainless-Lang, X-Stainless-OS, X-Stainless-Package-Version, X-Stainless-Retry-Count, X-Stainless-Runtime, X-Stainless-Runtime-Version, X-Stainless-Timeout")
		w.Header().Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
		return
	}

	path := strings.TrimSuffix(r.URL.Path, "/")
	switch {
	case path == "/v1/models" || strings.HasPrefix(path, "/v1/models/"):
		req.route = "models"
	case path == "/v1/chat/completions":
		req.route = "chat_completions"
	case path == "/v1/responses":
		req.route = "responses"
	case path == "/v1/usage":
		req.route = "usage"
	default:
		req.route = "unknown"
		writeError(w, &apierror.Error{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "unknown_url",
			Message: "Unknown request URL: " + r.Method + " " + r.URL.Path + ". This proxy serves /v1/models, /v1/chat/completions, /v1/responses and /v1/usage."})
		h.metrics.observe(req.route, http.StatusNotFound, "")
		return
	}
	wantMethod := http.MethodPost
	if req.route == "models" || req.route == "usage" {
		wantMethod = http.MethodGet
	}
	if r.Method != wantMethod {
		w.Header().Set("Allow", wantMethod+", OPTIONS")
		writeError(w, &apierror.Error{Status: http.StatusMethodNotAllowed, Type: "invalid_request_error", Code: "method_not_allowed",
			Message: r.Method + " is not allowed on " + r.URL.Path + "; use " + wantMethod})
		h.metrics.observe(req.route, http.StatusMethodNotAllowed, "")
		return
	}

	if !h.authenticate(w, r, req) {
		h.metrics.observe(req.route, req.status, "")
		return
	}
	if !h.checkKeyExpiry(w, req) {
		h.finish(req)
		return
	}
	switch req.route {
	case "usage":
		h.serveUsage(w, r, req)
	case "models":
		h.serveModels(w, r, req, strings.TrimPrefix(strings.TrimPrefix(path, "/v1/models"), "/"))
	case "chat_completions":
		h.serveGenerate(w, r, req, true)
	case "responses":
		h.serveGenerate(w, r, req, false)
	}
	h.finish(req)
}

// authenticate checks the API key. A valid key is served whatever else
// came from its address; a failed attempt answers 401, or 429 once its
// address has failed too often (see authFailLimit).
func (h *Handler) authenticate(w http.ResponseWriter, r *http.Request, req *apiRequest) bool {
	key, user, err := h.vault.VerifyKey(apiKey(r))
	redactKeyHeaders(r)
	if err == nil {
		req.user, req.key = user, key
		return true
	}
	switch {
	case errors.Is(err, vault.ErrUserDisabled):
		// A genuine key of a disabled account: no guess, nothing to count.
		req.status = http.StatusForbidden
		writeError(w, &apierror.Error{Status: http.StatusForbidden, Type: "permission_error", Code: "account_disabled",
			Message: "this account has been disabled by an operator"})
	case errors.Is(err, vault.ErrKeyInvalid):
		if res := h.recordAuthFailure(r); !res.Allowed {
			req.status = http.StatusTooManyRequests
			writeRetryAfter(w, res.RetryAfter)
			writeError(w, &apierror.Error{Status: http.StatusTooManyRequests, Type: "rate_limit_error", Code: "too_many_failed_attempts",
				Message: "Too many requests with invalid API keys from this address; wait the seconds in Retry-After before trying another key. Requests with a valid key are served as usual."})
			return false
		}
		req.status = http.StatusUnauthorized
		writeError(w, &apierror.Error{Status: http.StatusUnauthorized, Type: "invalid_request_error", Code: "invalid_api_key",
			Message: "Incorrect API key provided. Use a proxy key (cpk_…) in the Authorization: Bearer header."})
	default:
		// The vault failed, not the client: not counted against its address,
		// and a 5xx, so clients retry instead of dropping a good key.
		req.status = http.StatusServiceUnavailable
		h.logger.Error("verifying an API key failed", zap.String("request_id", req.id), zap.Error(err))
		writeRetryAfter(w, 5*time.Second)
		writeError(w, &apierror.Error{Status: http.StatusServiceUnavailable, Type: "server_error", Code: "vault_unavailable",
			Message: "the API key could not be checked right now; retry shortly"})
	}
	return false
}

// setCORS allows browser clients (Open WebUI and the like) to call the API.
func (h *Handler) setCORS(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return
	}
	for _, o := range h.CORSOrigins {
		if o == "*" || o == origin {
			w.Header().Set("Access-Control-Allow-Origin", o)
			if o != "*" {
				w.Header().Add("Vary", "Origin")
			}
			w.Header().Set("Access-Control-Expose-Headers", "X-Request-Id, Retry-After, X-Codex-Primary-Used-Percent, X-Codex-Secondary-Used-Percent, "+effortClampedHeader)
			return
		}
	}
}

// tokenSource gives the upstream client one user's tokens.
func (h *Handler) tokenSource(userID string) codex.TokenSource {
	return codex.TokenSourceFunc(func(ctx context.Context, force bool) (string, string, error) {
		return h.vault.AccessToken(ctx, userID, force)
	})
}

// serveModels lists the user's models in OpenAI list format: the catalog
// the upstream reports for the user's plan, or the static catalog.
func (h *Handler) serveModels(w http.ResponseWriter, r *http.Request, req *apiRequest, one string) {
	var upstream []string
	remote, err := h.models.Get(r.Context(), req.user.ID, h.tokenSource(req.user.ID))
	if err == nil {
		upstream = make([]string, 0, len(remote))
		for _, m := range remote {
			if !m.Hidden {
				upstream = append(upstream, m.Slug)
			}
		}
	} else if c := h.logger.Check(zap.DebugLevel, "model catalog unavailable, using the static one"); c != nil {
		c.Write(zap.String("user_id", req.user.ID), zap.Error(err))
	}
	// A key limited to some models sees only those.
	list := slices.DeleteFunc(h.catalog.ModelList(upstream), func(m translate.ModelObject) bool {
		return !req.key.Policy.AllowsModel(m.ID)
	})
	if one != "" {
		for _, m := range list {
			if m.ID == one {
				req.status = http.StatusOK
				writeJSON(w, http.StatusOK, m)
				return
			}
		}
		req.status = http.StatusNotFound
		writeError(w, &apierror.Error{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "model_not_found", Param: "model",
			Message: "The model '" + one + "' does not exist or is not available to your ChatGPT plan."})
		return
	}
	req.status = http.StatusOK
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": list})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, &apierror.Error{Status: http.StatusInternalServerError, Type: "server_error", Message: "encoding the response failed"})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// finish records the request in the log and the metrics, off the hot path.
func (h *Handler) finish(req *apiRequest) {
	model, effort, tier := "", "", ""
	if req.mapped != nil {
		model, effort, tier = req.mapped.ClientModel, req.mapped.Effort, req.mapped.ServiceTier
	}
	code := ""
	if req.errObj != nil {
		code = req.errObj.Code
	}
	u := req.result.Usage
	h.vault.LogRequest(vault.LogRecord{
		Time: req.start, UserID: req.user.ID, KeyID: req.key.ID, RequestID: req.id, Route: req.route,
		Model: model, Effort: effort, ServiceTier: tier, Status: req.status,
		Duration: time.Since(req.start), TTFB: req.ttfb,
		InputTokens: u.InputTokens, OutputTokens: u.OutputTokens, CachedTokens: u.CachedTokens, ReasoningTokens: u.ReasoningTokens,
		ErrorCode: code, AccountID: req.account, FailoverFrom: failoverNote(req.failoverFrom),
	})
	h.metrics.observe(req.route, req.status, model)
	h.metrics.firstByte(req.ttfb)
	h.metrics.tokens(u)
	if c := h.logger.Check(zap.InfoLevel, "api request"); c != nil {
		c.Write(zap.String("request_id", req.id), zap.String("user_id", req.user.ID), zap.String("key_id", req.key.ID),
			zap.String("route", req.route), zap.String("model", model), zap.Int("status", req.status), zap.String("account", req.account),
			zap.Duration("duration", time.Since(req.start)), zap.String("error_code", code))
	}
}

// redactKeyHeaders masks the headers some clients carry keys in. Caddy's
// access log redacts Authorization by itself but not these, and it logs the
// same header map after the handler ran.
func redactKeyHeaders(r *http.Request) {
	for _, name := range []string{"X-Api-Key", "Api-Key"} {
		if _, ok := r.Header[name]; ok {
			r.Header[name] = []string{"REDACTED"}
		}
	}
}
