package codex

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/usemysub/caddy-codex-proxy/apierror"
)

// maxMessageLen bounds upstream text copied into client-facing messages.
const maxMessageLen = 1000

// ParseUpstreamError maps a non-2xx answer of the Codex backend to the error
// shown to API clients (docs/protocol.md#errors). It keeps the upstream's own
// message and understands both body styles ({"detail":…} and
// {"error":{…}}) as well as non-JSON bodies. Usage-limit answers carry the
// delay until the limit resets in RetryAfter.
func ParseUpstreamError(status int, header http.Header, body []byte) *UpstreamError {
	return parseUpstreamError(status, header, body, time.Now())
}

func parseUpstreamError(status int, header http.Header, body []byte, now time.Time) *UpstreamError {
	b := decodeErrorBody(body)
	b.merge(errorJSONHeader(header))
	var kind string
	switch {
	case isUsageKind(b.typ):
		kind = b.typ
	case isUsageKind(b.code):
		kind = b.code
	}
	lower := strings.ToLower(b.message)

	if isCloudflare(status, header, b) {
		return newErr(http.StatusBadGateway, CodeCloudflareChallenge,
			"The Codex upstream (chatgpt.com) answered HTTP %d with a Cloudflare challenge instead of a response; "+
				"the proxy's network is being challenged. Try again later or route upstream traffic through a relay.", status)
	}
	// Some deployments send usage-limit bodies with 404 (docs/protocol.md#usage-limit-404).
	if status == http.StatusNotFound && !isUsageKind(kind) {
		switch {
		case strings.Contains(lower, "usage_not_included"):
			kind = CodeUsageNotIncluded
		case strings.Contains(lower, "usage_limit_reached"), strings.Contains(lower, "usage limit"),
			strings.Contains(lower, "rate_limit_exceeded"):
			kind = CodeUsageLimitReached
		}
	}
	switch kind {
	case CodeUsageNotIncluded:
		msg := "Your ChatGPT plan does not include Codex"
		if b.planType != "" {
			msg += " (plan: " + b.planType + ")"
		}
		msg += "; upgrade the plan or link another account."
		if b.message != "" {
			msg += " Upstream said: " + b.message
		}
		return newErr(http.StatusForbidden, CodeUsageNotIncluded, "%s", msg)
	case CodeUsageLimitReached:
		return usageLimitError(b, header, now)
	}
	if strings.Contains(lower, "unsupported service_tier") {
		// The proxy sends no tier but priority: the model or the plan does
		// not offer the Fast tier (docs/protocol.md#service-tier).
		return &UpstreamError{Err: apierror.TierUnavailable(b.message)}
	}
	if strings.Contains(lower, "model is not supported") {
		e := newErr(http.StatusNotFound, CodeModelNotFound, "%s", orDefault(b.message, "The requested model is not supported with a ChatGPT account."))
		e.Err.Param = "model"
		return e
	}

	switch {
	case status == http.StatusUnauthorized:
		return unauthorizedError(b.message)
	case status == http.StatusTooManyRequests:
		e := newErr(status, orDefault(b.code, "rate_limit_exceeded"), "%s", orDefault(b.message, "The Codex upstream is rate limiting requests; try again shortly."))
		e.RetryAfter = retryAfterHeader(header, now)
		if e.RetryAfter == 0 {
			e.RetryAfter = RetryDelayFromMessage(b.message)
		}
		return e
	case status >= 500 && status <= 599:
		msg := fmt.Sprintf("The Codex upstream failed (HTTP %d)", status)
		if b.message != "" {
			msg += ": " + b.message
		}
		e := newErr(http.StatusBadGateway, CodeUpstreamError, "%s", msg)
		e.RetryAfter = retryAfterHeader(header, now)
		return e
	case status == http.StatusNotFound:
		// The client asked for nothing missing: a plain 404 means the proxy
		// reached the wrong upstream path.
		msg := "The Codex upstream answered 404 Not Found; check the upstream URL"
		if b.message != "" {
			msg += ": " + b.message
		}
		return newErr(http.StatusBadGateway, CodeUpstreamError, "%s", msg)
	case status >= 400 && status <= 499:
		e := &UpstreamError{Err: &apierror.Error{
			Status:  status,
			Message: orDefault(b.message, fmt.Sprintf("The Codex upstream rejected the request (HTTP %d).", status)),
			Code:    b.code,
			Param:   b.param,
		}}
		return e
	default:
		return newErr(http.StatusBadGateway, CodeUpstreamError, "The Codex upstream answered with unexpected HTTP status %d.", status)
	}
}

// usageLimitError is the 429 for an exhausted plan window, with the reset
// time in the message and RetryAfter (resets_at preferred, docs/protocol.md#usage-limits).
func usageLimitError(b errorBody, header http.Header, now time.Time) *UpstreamError {
	var wait time.Duration
	var at time.Time
	switch {
	case b.resetsAt > 0 && time.Unix(b.resetsAt, 0).After(now):
		at = time.Unix(b.resetsAt, 0).UTC()
		wait = at.Sub(now)
	case b.resetsIn > 0:
		wait = time.Duration(b.resetsIn * float64(time.Second))
		at = now.Add(wait).UTC()
	default:
		if d := retryAfterHeader(header, now); d > 0 {
			wait, at = d, now.Add(d).UTC()
		} else if rl, ok := ParseRateLimits(header); ok && rl.Primary != nil && rl.Primary.ResetAt.After(now) {
			at = rl.Primary.ResetAt.UTC()
			wait = at.Sub(now)
		}
	}
	wait = wait.Round(time.Second)
	msg := orDefault(b.message, "The usage limit of your ChatGPT plan has been reached.")
	var about []string
	if b.planType != "" {
		about = append(about, "plan: "+b.planType)
	}
	if limit := headerToken(header.Get(rlPrefix + "Active-Limit")); limit != "" {
		// Which of the plan's limits was hit (premium, a model family's …):
		// the backend names it only in this header.
		about = append(about, "limit: "+limit)
	}
	if len(about) > 0 {
		msg = strings.TrimRight(msg, ".") + " (" + strings.Join(about, ", ") + ")."
	}
	if !at.IsZero() {
		msg = strings.TrimRight(msg, ".") + fmt.Sprintf(". It resets at %s (in %s).", at.Format("2006-01-02 15:04 UTC"), humanDuration(wait))
	}
	e := newErr(http.StatusTooManyRequests, CodeUsageLimitReached, "%s", msg)
	e.RetryAfter = wait
	return e
}

// errorBody is what decodeErrorBody extracts from either body style.
type errorBody struct {
	json     bool
	message  string
	typ      string
	code     string
	param    string
	planType string
	resetsAt int64
	resetsIn float64
	sniff    string // lowercased prefix of a non-JSON body
	html     bool
}

// decodeErrorBody reads {"detail":…}, {"error":{…}}, {"error":"code",…} and
// {"message":…} bodies, falling back to plain text.
func decodeErrorBody(body []byte) errorBody {
	var b errorBody
	trimmed := bytes.TrimSpace(body)
	var top map[string]json.RawMessage
	if len(trimmed) > 0 && trimmed[0] == '{' && json.Unmarshal(trimmed, &top) == nil {
		b.json = true
		if raw, ok := top["error"]; ok {
			var obj map[string]json.RawMessage
			if json.Unmarshal(raw, &obj) == nil {
				b.fill(obj)
			} else {
				b.code = rawString(raw)
				b.message = firstNonEmpty(rawString(top["error_description"]), rawString(top["message"]))
			}
		}
		if raw, ok := top["detail"]; ok && b.message == "" {
			b.message = detailMessage(raw)
			var obj map[string]json.RawMessage
			if json.Unmarshal(raw, &obj) == nil {
				b.fill(obj)
			}
		}
		if b.message == "" && b.code == "" {
			b.fill(top)
		}
		b.message = clean(b.message)
		return b
	}
	// Only a prefix matters: challenge pages announce themselves early and
	// messages are cut to maxMessageLen anyway.
	b.sniff = strings.ToLower(string(trimmed[:min(len(trimmed), 32<<10)]))
	b.html = strings.Contains(b.sniff, "<html") || strings.Contains(b.sniff, "<!doctype")
	if !b.html {
		b.message = clean(string(trimmed[:min(len(trimmed), 8<<10)]))
	}
	return b
}

// fill copies the known fields of an error object.
func (b *errorBody) fill(obj map[string]json.RawMessage) {
	if m := firstNonEmpty(rawString(obj["message"]), rawString(obj["error_description"])); m != "" {
		b.message = m
	}
	if b.message == "" {
		b.message = detailMessage(obj["detail"])
	}
	if t := rawString(obj["type"]); t != "" {
		b.typ = t
	}
	if c := rawString(obj["code"]); c != "" {
		b.code = c
	}
	if p := rawString(obj["param"]); p != "" {
		b.param = p
	}
	if p := rawString(obj["plan_type"]); p != "" {
		b.planType = clean(p)
	}
	if f, ok := rawNumber(obj["resets_at"]); ok && f > 0 && f < 1e11 {
		b.resetsAt = int64(f)
	}
	if f, ok := rawNumber(obj["resets_in_seconds"]); ok && f > 0 && f < 1e9 {
		b.resetsIn = f
	}
}

// detailMessage reads FastAPI's detail: a string, an object with a message,
// or a list of validation errors with msg fields.
func detailMessage(raw json.RawMessage) string {
	if s := rawString(raw); s != "" {
		return s
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) == nil {
		return firstNonEmpty(rawString(obj["message"]), rawString(obj["msg"]))
	}
	var list []map[string]json.RawMessage
	if json.Unmarshal(raw, &list) == nil {
		var parts []string
		for _, item := range list {
			if m := firstNonEmpty(rawString(item["msg"]), rawString(item["message"])); m != "" {
				parts = append(parts, m)
			}
		}
		return strings.Join(parts, "; ")
	}
	return ""
}

// rawString returns a JSON string or number as text, "" otherwise.
func rawString(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// rawNumber reads a JSON number or numeric string.
func rawNumber(raw json.RawMessage) (float64, bool) {
	s := rawString(raw)
	if s == "" {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// isCloudflare recognises Cloudflare challenge and block pages (docs/protocol.md#cloudflare).
func isCloudflare(status int, header http.Header, b errorBody) bool {
	if header.Get("cf-mitigated") != "" {
		return true
	}
	if b.json {
		return false
	}
	lower := b.sniff
	if strings.Contains(lower, "just a moment") || strings.Contains(lower, "cf-chl") || strings.Contains(lower, "challenge-platform") {
		return true
	}
	return status == http.StatusForbidden && b.html && strings.Contains(lower, "cloudflare")
}

func isUsageKind(s string) bool {
	return s == CodeUsageLimitReached || s == CodeUsageNotIncluded
}

// retryAfterHeader reads Retry-After as seconds or an HTTP date.
func retryAfterHeader(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		if n > 0 && n < 1e9 {
			return time.Duration(n * float64(time.Second))
		}
		return 0
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

var retryInRE = regexp.MustCompile(`(?i)try again in\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|milliseconds?|s|secs?|seconds?)\b`)

// RetryDelayFromMessage extracts "try again in 11.054s" style delays that
// rate-limit messages carry (docs/protocol.md#stream-failures); zero when there is none.
func RetryDelayFromMessage(msg string) time.Duration {
	m := retryInRE.FindStringSubmatch(msg)
	if m == nil {
		return 0
	}
	f, err := strconv.ParseFloat(m[1], 64)
	if err != nil || f <= 0 || f > 1e9 {
		return 0
	}
	if strings.HasPrefix(strings.ToLower(m[2]), "m") {
		return time.Duration(f * float64(time.Millisecond))
	}
	return time.Duration(f * float64(time.Second))
}

// clean makes upstream text safe to show: valid UTF-8, no control
// characters, bounded length.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' || r == '\r' {
			return ' '
		}
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxMessageLen {
		cut := maxMessageLen
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// humanDuration renders a wait like "3h51m" or "42s".
func humanDuration(d time.Duration) string {
	if d < time.Minute {
		return d.Round(time.Second).String()
	}
	d = d.Round(time.Minute)
	h, m := int(d.Hours()), int(d.Minutes())%60
	switch {
	case h == 0:
		return fmt.Sprintf("%dm", m)
	case m == 0:
		return fmt.Sprintf("%dh", h)
	default:
		return fmt.Sprintf("%dh%dm", h, m)
	}
}
