package codex

import (
	"net/http"

	"github.com/usemysub/caddy-codex-proxy/translate"
)

// MapStreamFailure maps the error code and message of an in-stream failure
// (a response.failed or error event after HTTP 200) to the error shown to
// API clients, following the official client's classification (§8.2,
// trap 12). It is pure so the stream translator can call it.
func MapStreamFailure(code, message string) *translate.Error {
	message = clean(message)
	e := &translate.Error{Code: clean(code), Message: message}
	switch code {
	case "context_length_exceeded":
		e.Status = http.StatusBadRequest
		e.Message = orDefault(message, "The conversation is too long for the model's context window.")
	case "rate_limit_exceeded":
		e.Status = http.StatusTooManyRequests
		e.Message = orDefault(message, "The Codex upstream is rate limiting requests; try again shortly.")
	case "server_is_overloaded", "slow_down":
		e.Status = http.StatusServiceUnavailable
		e.Message = orDefault(message, "The Codex upstream is overloaded; try again shortly.")
	case CodeUsageNotIncluded:
		e.Status = http.StatusForbidden
		e.Message = orDefault(message, "Your ChatGPT plan does not include Codex.")
	case CodeUsageLimitReached:
		e.Status = http.StatusTooManyRequests
		e.Message = orDefault(message, "The usage limit of your ChatGPT plan has been reached.")
	case "insufficient_quota":
		e.Status = http.StatusTooManyRequests
		e.Message = orDefault(message, "The ChatGPT account has no quota left.")
	case "invalid_prompt":
		e.Status = http.StatusBadRequest
		e.Message = orDefault(message, "The prompt was rejected by the Codex upstream.")
	case "cyber_policy":
		e.Status = http.StatusBadRequest
		e.Message = orDefault(message, "This request has been flagged for possible cybersecurity risk.")
	default:
		e.Status = http.StatusBadGateway
		e.Message = orDefault(message, "The Codex upstream failed while streaming the response.")
	}
	return e
}
