package codex

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
)

// Events of the backend's WebSocket that have no SSE counterpart
// (docs/protocol.md#websocket): the codex.rate_limits event, which carries
// what an HTTP answer puts in its x-codex headers, and the error event,
// which carries what an HTTP answer would have said with its status.

// Codes of socket error events a caller may act on: nothing was generated,
// and the same turn may be sent again elsewhere with its whole input.
const (
	// CodePreviousResponseNotFound: the frame's previous_response_id is not
	// the connection's last completed response.
	CodePreviousResponseNotFound = "previous_response_not_found"
	// CodeSocketLimitReached: the connection reached the backend's
	// maximum age and takes no more responses.
	CodeSocketLimitReached = "websocket_connection_limit_reached"
)

// SocketError reads an error event ({"type":"error","status":…,
// "error":{…},"headers":{…}}) as the *UpstreamError its HTTP answer would
// have been, and the upstream's own code (CodePreviousResponseNotFound …).
// A missing status counts as 400, the backend's status for frame errors.
func SocketError(frame []byte) (*UpstreamError, string) {
	var ev struct {
		Status  int               `json:"status"`
		Error   json.RawMessage   `json:"error"`
		Headers map[string]string `json:"headers"`
	}
	_ = json.Unmarshal(frame, &ev)
	if ev.Status < 400 || ev.Status > 599 {
		ev.Status = http.StatusBadRequest
	}
	h := http.Header{}
	for k, v := range ev.Headers {
		h.Set(k, v)
	}
	body := ev.Error
	var shape struct {
		Error  json.RawMessage `json:"error"`
		Detail json.RawMessage `json:"detail"`
		Code   string          `json:"code"`
	}
	_ = json.Unmarshal(body, &shape)
	code := shape.Code
	if len(shape.Error) == 0 && len(shape.Detail) == 0 && bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) {
		// The error object itself, not an HTTP body around it.
		body = append(append([]byte(`{"error":`), body...), '}')
	} else if len(shape.Error) > 0 {
		var inner struct {
			Code string `json:"code"`
		}
		_ = json.Unmarshal(shape.Error, &inner)
		code = inner.Code
	}
	return ParseUpstreamError(ev.Status, h, body), code
}

// RateLimitsEvent reads a codex.rate_limits event as the RateLimits its
// x-codex headers would have given; ok is false when it holds none.
func RateLimitsEvent(frame []byte) (RateLimits, bool) {
	type window struct {
		UsedPercent   *float64 `json:"used_percent"`
		WindowMinutes *float64 `json:"window_minutes"`
		ResetAt       *float64 `json:"reset_at"`
		ResetAfter    *float64 `json:"reset_after_seconds"`
	}
	var ev struct {
		PlanType    string `json:"plan_type"`
		ActiveLimit string `json:"active_limit"`
		RateLimits  struct {
			Primary   *window `json:"primary"`
			Secondary *window `json:"secondary"`
		} `json:"rate_limits"`
		Credits *struct {
			HasCredits *bool           `json:"has_credits"`
			Unlimited  *bool           `json:"unlimited"`
			Balance    json.RawMessage `json:"balance"`
		} `json:"credits"`
	}
	if json.Unmarshal(frame, &ev) != nil {
		return RateLimits{}, false
	}
	h := http.Header{}
	if ev.PlanType != "" {
		h.Set(rlPrefix+"Plan-Type", ev.PlanType)
	}
	put := func(which string, w *window) {
		if w == nil {
			return
		}
		for name, v := range map[string]*float64{"Used-Percent": w.UsedPercent, "Window-Minutes": w.WindowMinutes,
			"Reset-At": w.ResetAt, "Reset-After-Seconds": w.ResetAfter} {
			if v != nil && (name != "Reset-At" || *v > 0) {
				h.Set(rlPrefix+which+"-"+name, strconv.FormatFloat(*v, 'f', -1, 64))
			}
		}
	}
	put("Primary", ev.RateLimits.Primary)
	put("Secondary", ev.RateLimits.Secondary)
	if ev.ActiveLimit != "" {
		h.Set(rlPrefix+"Active-Limit", ev.ActiveLimit)
	}
	if cr := ev.Credits; cr != nil {
		if cr.HasCredits != nil {
			h.Set(rlPrefix+"Credits-Has-Credits", strconv.FormatBool(*cr.HasCredits))
		}
		if cr.Unlimited != nil {
			h.Set(rlPrefix+"Credits-Unlimited", strconv.FormatBool(*cr.Unlimited))
		}
		// The balance comes as a decimal string or a number.
		var bal string
		if json.Unmarshal(cr.Balance, &bal) != nil {
			bal = string(bytes.TrimSpace(cr.Balance))
		}
		if bal != "" && bal != "null" {
			h.Set(rlPrefix+"Credits-Balance", bal)
		}
	}
	return ParseRateLimits(h)
}
