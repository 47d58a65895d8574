package codextest

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxBody bounds request bodies; real requests with images reach MiBs.
const maxBody = 64 << 20

// handleResponses serves POST /backend-api/codex/responses.
func (s *Server) handleResponses(w http.ResponseWriter, r *http.Request) {
	s.generations.Add(1)
	body, bodyErr := readBody(r)
	rq := newRequest(r, body)
	idx := s.record(rq)
	if bodyErr != nil {
		bodyErr.write(w)
		return
	}
	acc, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	if s.prerender != nil {
		s.servePrerendered(w, r)
		return
	}
	var req map[string]any
	if err := json.Unmarshal(body, &req); err != nil || req == nil {
		detail(http.StatusBadRequest, "Invalid JSON body").write(w)
		return
	}
	model, apiErr := s.validate(req)
	if apiErr == nil && model.Accounts != nil && !slices.Contains(model.Accounts, acc.id) {
		// Phased rollout: listed, but not yet this account's.
		apiErr = detail(http.StatusBadRequest, fmt.Sprintf("The '%s' model is not supported when using Codex with a ChatGPT account.", model.Slug))
	}
	if apiErr != nil {
		apiErr.write(w)
		return
	}
	sc, apiErr := s.pickScenario(rq, req)
	if apiErr != nil {
		apiErr.write(w)
		return
	}
	if compactionTriggered(req) {
		sc = ScenarioCompaction
	}
	s.setScenario(idx, sc)
	switch sc {
	case ScenarioHangHeaders:
		select {
		case <-r.Context().Done():
		case <-s.closed:
		}
		// Returning would send an empty 200: drop the connection instead.
		panic(http.ErrAbortHandler)
	case ScenarioResetAfterRead:
		resetConnection(w)
		return
	}

	s.mu.Lock()
	if acc.budget == 0 {
		// The account's plan window is used up: nothing starts.
		acc.limited++
		resetIn := int(acc.resetIn / time.Second)
		s.mu.Unlock()
		s.setScenario(idx, ScenarioUsageLimit)
		usageLimited(w, acc, max(resetIn, 1))
		return
	}
	if acc.budget > 0 {
		acc.budget--
	}
	acc.requests++
	used := min(acc.requests, 99)
	// The backend's cache affinity follows the session-id header (the
	// official client's; session_id of older ones), not the body's
	// prompt_cache_key alone: a repeat on the same account and session
	// reads half its input from the cache.
	key := firstHeader(r.Header, "session-id", "session_id")
	cached := key != "" && s.cacheKeys[acc.id+"\x00"+key]
	if key != "" {
		s.cacheKeys[acc.id+"\x00"+key] = true
	}
	s.mu.Unlock()

	h := w.Header()
	h.Set("x-request-id", newID("req_"))
	switch sc {
	case ScenarioUsageLimit:
		usageLimited(w, acc, 13872)
		return
	case ScenarioUsageNotIncluded:
		writeJSON(w, http.StatusTooManyRequests, map[string]any{"error": map[string]any{
			"type": "usage_not_included", "message": "Codex is not included in your ChatGPT plan.", "plan_type": acc.plan,
		}})
		return
	case ScenarioRateLimited:
		h.Set("Retry-After", "7")
		oaiError(http.StatusTooManyRequests, "Rate limit reached for "+model.Slug+". Please try again in 7s.", "rate_limit_error", "", "rate_limit_exceeded").write(w)
		return
	case ScenarioUnauthorized:
		oaiError(http.StatusUnauthorized, "Provided authentication token is expired. Please try signing in again.", "invalid_request_error", "", "token_expired").write(w)
		return
	case ScenarioServerError:
		oaiError(s.opts.ServerErrorStatus, "An error occurred while processing your request. Please retry your request.", "server_error", "", "server_error").write(w)
		return
	case ScenarioCloudflare:
		h.Set("cf-mitigated", "challenge")
		h.Set("Server", "cloudflare")
		h.Set("cf-ray", "8f0000000000abcd-AMS")
		h.Set("Content-Type", "text/html; charset=UTF-8")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, cloudflarePage)
		return
	}

	g := newGen(model.Slug, req)
	delay := s.opts.EventDelay
	abort := false
	echo := echoText(lastUserText(req))
	reply := "Hello!"
	if echo != "" {
		reply = "You said: " + echo
	}
	if _, schema, _, ok := jsonSchemaFormat(req); ok {
		// Structured output: the message is the JSON document, nothing else.
		reply = structuredReply(schema, orDefault(echo, "Hello!"))
	}
	tools := functionTools(req)
	g.start()
	switch sc {
	case ScenarioCompaction:
		g.compaction(req["input"].([]any))
	case ScenarioPlain:
		g.message(chunk(reply)...)
	case ScenarioReasoningText:
		g.reasoning("**Reading the request**", "**Preparing an answer**")
		g.message(chunk(reply)...)
	case ScenarioToolCall:
		g.functionCall(tools[0]["name"].(string), toolArgs(tools[0], orDefault(echo, "Paris")))
	case ScenarioReasoningToolCall:
		g.reasoning()
		g.functionCall(tools[0]["name"].(string), toolArgs(tools[0], orDefault(echo, "Paris")))
	case ScenarioParallelToolCalls:
		second := tools[min(1, len(tools)-1)]
		g.functionCall(tools[0]["name"].(string), toolArgs(tools[0], "Paris"))
		g.functionCall(second["name"].(string), toolArgs(second, "Tokyo"))
	case ScenarioFailed:
		g.failed("rate_limit_exceeded", "Rate limit reached for "+model.Slug+" on tokens per min. Please try again in 11.054s.")
	case ScenarioErrorEvent:
		g.add("error", map[string]any{"code": "server_is_overloaded", "message": "Our servers are currently overloaded. Please try again later.", "param": nil})
	case ScenarioCut:
		g.message(chunk(reply + " and then some more text that never arrives")...)
		// Keep created, the item, the part and two deltas; then drop the
		// connection without response.completed.
		g.evs = g.evs[:min(len(g.evs), 6)]
		abort = true
	case ScenarioLongLine:
		g.message("start ", strings.Repeat("x", s.opts.LongLineBytes), " end")
	case ScenarioIncomplete:
		g.message(chunk(reply)...)
	case ScenarioSlow:
		delay = s.opts.SlowDelay
		fallthrough
	default: // ScenarioText, ScenarioEmptyOutput
		if tool, ok := imageTool(req); ok {
			g.imageCall(tool, lastUserText(req))
			break
		}
		g.reasoning("**Answering the user**")
		g.message(chunk(reply)...)
	}
	g.setUsage(len(body)/4+1, cached)
	switch sc {
	case ScenarioIncomplete:
		g.incomplete("max_output_tokens")
	case ScenarioFailed, ScenarioErrorEvent, ScenarioCut:
	default:
		g.completed(sc == ScenarioEmptyOutput)
	}

	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("openai-model", model.Slug)
	h.Set("x-models-etag", s.catalogETag(r.Header.Get("Version")))
	rateHeaders(h, acc, used, 3600)
	w.WriteHeader(http.StatusOK)
	if err := streamEvents(r.Context(), w, g.evs, delay); err != nil {
		return
	}
	if abort {
		// Abort the connection (no terminating chunk): a real cut.
		panic(http.ErrAbortHandler)
	}
}

// pickScenario applies Script, then the marker, then the default.
func (s *Server) pickScenario(rq Request, req map[string]any) (Scenario, *apiError) {
	s.mu.Lock()
	script, def := s.script, s.def
	s.mu.Unlock()
	sc := Scenario("")
	if script != nil {
		sc = script(rq)
	}
	if sc == "" {
		sc, _ = markerScenario(lastUserText(req))
	}
	if sc == "" {
		sc = def
	}
	if sc == "" {
		sc = ScenarioText
	}
	if !knownScenario(sc) {
		return "", detail(http.StatusBadRequest, fmt.Sprintf("codextest: unknown scenario %q", sc))
	}
	return sc, nil
}

// usageLimited answers 429 usage_limit_reached (docs/protocol.md#sequence-usage-limit): the account's
// window is used up and resets in resetIn seconds.
func usageLimited(w http.ResponseWriter, acc *account, resetIn int) {
	h := w.Header()
	h.Set("x-request-id", newID("req_"))
	rateHeaders(h, acc, 100, resetIn)
	h.Set("X-Codex-Active-Limit", "premium")
	writeJSON(w, http.StatusTooManyRequests, map[string]any{"error": map[string]any{
		"type": "usage_limit_reached", "message": "The usage limit has been reached", "plan_type": acc.plan,
		"resets_at": time.Now().Unix() + int64(resetIn), "eligible_promo": nil, "resets_in_seconds": resetIn,
	}})
}

// rateHeaders sets the x-codex usage headers (docs/protocol.md#rate-limit-headers).
func rateHeaders(h http.Header, acc *account, usedPercent, resetAfter int) {
	now := time.Now().Unix()
	h.Set("X-Codex-Plan-Type", acc.plan)
	h.Set("X-Codex-Primary-Used-Percent", strconv.Itoa(usedPercent))
	h.Set("X-Codex-Primary-Window-Minutes", "300")
	h.Set("X-Codex-Primary-Reset-After-Seconds", strconv.Itoa(resetAfter))
	h.Set("X-Codex-Primary-Reset-At", strconv.FormatInt(now+int64(resetAfter), 10))
	h.Set("X-Codex-Secondary-Used-Percent", strconv.Itoa(usedPercent*4/5))
	h.Set("X-Codex-Secondary-Window-Minutes", "10080")
	h.Set("X-Codex-Secondary-Reset-After-Seconds", "345600")
	h.Set("X-Codex-Secondary-Reset-At", strconv.FormatInt(now+345600, 10))
	h.Set("X-Codex-Primary-Over-Secondary-Limit-Percent", "0")
	h.Set("X-Codex-Credits-Has-Credits", "False")
	h.Set("X-Codex-Credits-Balance", "0")
	h.Set("X-Codex-Credits-Unlimited", "False")
	// A second rate-limit family, as the backend reports a model's own
	// limit beside the plan's (docs/protocol.md#rate-limit-headers).
	h.Set("X-Codex-Bengalfox-Primary-Used-Percent", strconv.Itoa(usedPercent/2))
	h.Set("X-Codex-Bengalfox-Primary-Window-Minutes", "300")
	h.Set("X-Codex-Bengalfox-Primary-Reset-After-Seconds", strconv.Itoa(resetAfter))
	h.Set("X-Codex-Bengalfox-Limit-Name", "GPT-5.3-Codex-Spark")
}

// readBody reads the request body, undoing gzip. zstd would need a
// dependency the project does not take for a test fake: it answers 415.
func readBody(r *http.Request) ([]byte, *apiError) {
	rd := io.LimitReader(r.Body, maxBody)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
		b, err := io.ReadAll(rd)
		if err != nil {
			return nil, detail(http.StatusBadRequest, "Could not read the request body")
		}
		return b, nil
	case "gzip":
		raw, err := io.ReadAll(rd)
		if err != nil {
			return nil, detail(http.StatusBadRequest, "Could not read the request body")
		}
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return raw, detail(http.StatusBadRequest, "Invalid gzip request body")
		}
		b, err := io.ReadAll(io.LimitReader(zr, maxBody))
		if err != nil {
			return raw, detail(http.StatusBadRequest, "Invalid gzip request body")
		}
		return b, nil
	default:
		return nil, detail(http.StatusUnsupportedMediaType, "codextest: unsupported Content-Encoding "+enc)
	}
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// cloudflarePage is the shape of a Cloudflare managed-challenge page.
const cloudflarePage = `<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title>` +
	`<meta http-equiv="Content-Type" content="text/html; charset=UTF-8"></head><body>` +
	`<div class="main-wrapper" role="main"><div class="main-content"><h1>chatgpt.com</h1>` +
	`<p>Verifying you are human. This may take a few seconds.</p></div></div>` +
	`<script src="/cdn-cgi/challenge-platform/h/g/orchestrate/chl_page/v1"></script></body></html>`

// resetConnection drops the connection under w without an answer. On
// HTTP/1 it hijacks the connection and closes it with SO_LINGER 0, which
// sends a TCP RST; HTTP/2 cannot be hijacked, so the handler aborts and
// the server resets the stream.
func resetConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	raw := conn
	if tc, ok := conn.(interface{ NetConn() net.Conn }); ok { // TLS
		raw = tc.NetConn()
	}
	if tcp, ok := raw.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = conn.Close()
}

// firstHeader returns the first of names present in h.
func firstHeader(h http.Header, names ...string) string {
	for _, n := range names {
		if v := h.Get(n); v != "" {
			return v
		}
	}
	return ""
}
