package codex

import (
	"net/http"
	"testing"
	"time"
)

func TestSocketError(t *testing.T) {
	for _, tc := range []struct {
		name, frame string
		status      int
		code        string // the client-facing code
		upstream    string // the upstream's own code
		retry       bool
	}{
		{"usage limit, the HTTP body under error", `{"type":"error","status":429,"error":{"error":{"type":"usage_limit_reached","message":"The usage limit has been reached","resets_in_seconds":120}},"headers":{"x-codex-primary-used-percent":"100"}}`,
			http.StatusTooManyRequests, CodeUsageLimitReached, "", true},
		{"chain unknown, the error object itself", `{"type":"error","status":400,"error":{"type":"invalid_request_error","code":"previous_response_not_found","message":"Previous response with id 'resp_1' not found."}}`,
			http.StatusBadRequest, "previous_response_not_found", CodePreviousResponseNotFound, false},
		{"FastAPI detail", `{"type":"error","status":400,"error":{"detail":"Store must be set to false"}}`,
			http.StatusBadRequest, "", "", false},
		{"no status", `{"type":"error","error":{"code":"websocket_connection_limit_reached","message":"Responses websocket connection limit reached (60 minutes)."}}`,
			http.StatusBadRequest, "websocket_connection_limit_reached", CodeSocketLimitReached, false},
		{"not JSON", `nonsense`, http.StatusBadRequest, "", "", false},
	} {
		ue, code := SocketError([]byte(tc.frame))
		if ue == nil || ue.Err == nil || ue.Err.Status != tc.status || ue.Err.Message == "" || code != tc.upstream ||
			(tc.code != "" && ue.Err.Code != tc.code) || (ue.RetryAfter > 0) != tc.retry {
			t.Errorf("%s: %+v (upstream code %q)", tc.name, ue, code)
			if ue != nil {
				t.Logf("  err %+v retry %v", ue.Err, ue.RetryAfter)
			}
		}
	}
}

func TestRateLimitsEvent(t *testing.T) {
	rl, ok := RateLimitsEvent([]byte(`{"type":"codex.rate_limits","plan_type":"plus","rate_limits":{"primary":{"used_percent":42.5,"window_minutes":300,"reset_at":1800000000},"secondary":{"used_percent":3,"window_minutes":10080,"reset_at":0}}}`))
	if !ok || rl.PlanType != "plus" || rl.Primary == nil || rl.Primary.UsedPercent != 42.5 || rl.Primary.WindowMinutes != 300 ||
		!rl.Primary.ResetAt.Equal(time.Unix(1800000000, 0)) || rl.Secondary == nil || rl.Secondary.WindowMinutes != 10080 || !rl.Secondary.ResetAt.IsZero() {
		t.Fatalf("%v %+v primary %+v secondary %+v", ok, rl, rl.Primary, rl.Secondary)
	}
	rl, ok = RateLimitsEvent([]byte(`{"type":"codex.rate_limits","rate_limits":{},"credits":{"has_credits":true,"unlimited":false,"balance":"12.5"}}`))
	if !ok || rl.Credits == nil || !rl.Credits.HasCredits || rl.Credits.Unlimited || rl.Credits.Balance != "12.5" {
		t.Errorf("credits: %v %+v", ok, rl.Credits)
	}
	if _, ok := RateLimitsEvent([]byte(`{"type":"codex.rate_limits"}`)); ok {
		t.Error("an event without limits gave some")
	}
	if _, ok := RateLimitsEvent([]byte(`[`)); ok {
		t.Error("a broken event gave limits")
	}
}

// FuzzSocketEvents: whatever the upstream sends, the socket's own events
// are read without a panic, an error always with a status and a message.
func FuzzSocketEvents(f *testing.F) {
	f.Add([]byte(`{"type":"error","status":429,"error":{"error":{"type":"usage_limit_reached"}},"headers":{"retry-after":"5"}}`))
	f.Add([]byte(`{"type":"error","status":"400","error":"x"}`))
	f.Add([]byte(`{"type":"codex.rate_limits","rate_limits":{"primary":{"used_percent":1e400}}}`))
	f.Fuzz(func(t *testing.T, frame []byte) {
		ue, _ := SocketError(frame)
		if ue == nil || ue.Err == nil || ue.Err.Status < 400 || ue.Err.Message == "" {
			t.Fatalf("SocketError(%q) = %+v", frame, ue)
		}
		_, _ = RateLimitsEvent(frame)
	})
}
