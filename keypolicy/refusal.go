package keypolicy

import (
	"fmt"
	"net/http"
	"time"
)

// Reason names why a request was refused; it is the metrics label.
type Reason string

// Refusal reasons.
const (
	ReasonExpired     Reason = "expired"
	ReasonModel       Reason = "model"
	ReasonRPM         Reason = "rpm"
	ReasonConcurrency Reason = "concurrency"
	ReasonDayBudget   Reason = "tokens_per_day"
	ReasonWeekBudget  Reason = "tokens_per_week"
	ReasonImages      Reason = "images"
)

// Error codes of refusals, as clients see them.
const (
	CodeExpired          = "key_expired"
	CodeModelNotAllowed  = "model_not_allowed"
	CodeRateLimited      = "key_rate_limited"
	CodeBudgetExhausted  = "key_budget_exhausted"
	CodeImagesNotAllowed = "images_not_allowed"
)

// Refusal is a request the key's policy does not allow, with what the
// client is told. It is an error.
type Refusal struct {
	Reason Reason
	// Status is the HTTP status: 401, 403 or 429.
	Status int
	// Type and Code are the OpenAI error type and code.
	Type, Code string
	// Param names the offending request parameter, if any.
	Param   string
	Message string
	// RetryAfter is when trying again can succeed (429 only).
	RetryAfter time.Duration
}

func (r *Refusal) Error() string { return r.Message }

// CheckExpiry refuses an expired key (401, like a revoked one, but saying
// it expired and when).
func CheckExpiry(p Policy, now time.Time) *Refusal {
	if !p.Expired(now) {
		return nil
	}
	return &Refusal{Reason: ReasonExpired, Status: http.StatusUnauthorized, Type: "invalid_request_error", Code: CodeExpired,
		Message: fmt.Sprintf("This API key expired at %s. Ask its owner for a new key or a later expiry.", p.Expires.UTC().Format(time.RFC3339))}
}

// CheckModel refuses a model outside the allowlist (403). model is the
// resolved slug; asked is what the client sent.
func CheckModel(p Policy, model, asked string) *Refusal {
	if p.AllowsModel(model) {
		return nil
	}
	return &Refusal{Reason: ReasonModel, Status: http.StatusForbidden, Type: "invalid_request_error", Code: CodeModelNotAllowed, Param: "model",
		Message: fmt.Sprintf("This API key may not use the model '%s'. Models allowed for it: %s.", asked, joinModels(p.Models))}
}

// CheckImages refuses image generation to a key whose policy denies it
// (403).
func CheckImages(p Policy) *Refusal {
	if !p.DenyImages {
		return nil
	}
	return &Refusal{Reason: ReasonImages, Status: http.StatusForbidden, Type: "invalid_request_error", Code: CodeImagesNotAllowed,
		Message: "This API key may not generate images. Ask its owner to allow images in the key's policy."}
}

func joinModels(ms []string) string {
	s := ""
	for i, m := range ms {
		if i > 0 {
			s += ", "
		}
		s += m
	}
	return s
}

func rateLimited(reason Reason, retry time.Duration, msg string) *Refusal {
	return &Refusal{Reason: reason, Status: http.StatusTooManyRequests, Type: "rate_limit_error", Code: CodeRateLimited,
		Message: msg, RetryAfter: retry}
}

func budgetExhausted(reason Reason, retry time.Duration, msg string) *Refusal {
	return &Refusal{Reason: reason, Status: http.StatusTooManyRequests, Type: "rate_limit_error", Code: CodeBudgetExhausted,
		Message: msg, RetryAfter: retry}
}

// IsRefusalCode reports whether an error code is one of a refusal's; the
// tracker skips such log records when it rebuilds its counters.
func IsRefusalCode(code string) bool {
	switch code {
	case CodeExpired, CodeModelNotAllowed, CodeRateLimited, CodeBudgetExhausted, CodeImagesNotAllowed:
		return true
	}
	return false
}
