package translate

import (
	"net/http"
)

// StreamFailure maps a failure the upstream reported inside a stream
// (response.failed or an error event) to a client error, keeping the
// upstream's message. Statuses follow how the official client treats each
// code: fatal request problems are 4xx, capacity problems retryable.
func StreamFailure(code, message string) *Error {
	status, typ := http.StatusBadGateway, "server_error"
	switch code {
	case "context_length_exceeded", "invalid_prompt", "cyber_policy", "invalid_request_error",
		"bad_request_error", "invalid_encrypted_content", "unsupported_value", "invalid_value":
		status, typ = http.StatusBadRequest, "invalid_request_error"
	case "rate_limit_exceeded", "insufficient_quota", "usage_limit_reached", "rate_limit_error":
		status, typ = http.StatusTooManyRequests, "rate_limit_error"
	case "usage_not_included":
		status, typ = http.StatusForbidden, "permission_error"
	case "server_is_overloaded", "slow_down":
		status, typ = http.StatusServiceUnavailable, "server_error"
	case "model_not_found":
		status, typ = http.StatusNotFound, "not_found_error"
	}
	if message == "" && code == "cyber_policy" {
		message = "This request has been flagged for possible cybersecurity risk."
	}
	if message == "" {
		message = "the upstream reported a failure"
		if code != "" {
			message += ": " + code
		}
	}
	if code == "" {
		code = "upstream_error"
	}
	return &Error{Status: status, Message: message, Type: typ, Code: code}
}

// errIncomplete is reported when the upstream stream ends before a terminal
// event; the official client treats it as a retryable failure.
func errIncomplete() *Error {
	return &Error{
		Status:  http.StatusBadGateway,
		Message: "the upstream stream ended before the response completed; retry the request",
		Type:    "server_error",
		Code:    "stream_incomplete",
	}
}

// failureFromEvent builds the error of a response.failed or error event.
func failureFromEvent(e upstreamEvent) *Error {
	code, msg, param := e.code, e.message, e.param
	if len(e.errObj) > 0 && e.errObj[0] == '{' {
		code, msg, param = field(e.errObj, "code"), field(e.errObj, "message"), field(e.errObj, "param")
		if len(code) == 0 || code[0] != '"' {
			code = field(e.errObj, "type")
		}
	}
	if len(e.response) > 0 {
		if eo := field(e.response, "error"); len(eo) > 0 && eo[0] == '{' {
			code, msg, param = field(eo, "code"), field(eo, "message"), field(eo, "param")
			if len(code) == 0 || code[0] != '"' {
				code = field(eo, "type")
			}
		}
	}
	c, _ := unquote(code)
	m, _ := unquote(msg)
	err := StreamFailure(c, m)
	if p, ok := unquote(param); ok {
		err.Param = p
	}
	return err
}

// completedResult reads what a response.completed or response.incomplete
// event says: the response id, usage and the finish reason (before tool
// calls are taken into account).
func completedResult(e upstreamEvent, res StreamResult) StreamResult {
	res.Completed = true
	if id, ok := unquote(field(e.response, "id")); ok {
		res.ResponseID = id
	}
	res.Usage, _ = parseUsage(e.response)
	res.FinishReason = "stop"
	if string(e.typ) == "response.incomplete" {
		reason, _ := unquote(field(field(e.response, "incomplete_details"), "reason"))
		res.FinishReason = incompleteFinish(reason)
	}
	return res
}
