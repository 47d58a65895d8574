package codex

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/usemysub/caddy-codex-proxy/apierror"
)

func TestParseUpstreamError(t *testing.T) {
	now := time.Unix(1777922696, 0) // 13872 s before the resets_at below
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	tests := []struct {
		name   string
		status int
		header http.Header
		body   string
		want   int
		code   string
		param  string
		msg    []string // substrings
		retry  time.Duration
	}{
		{name: "detail 400", status: 400, body: `{"detail":"Store must be set to false"}`,
			want: 400, msg: []string{"Store must be set to false"}},
		{name: "error object 400", status: 400,
			body: `{"error":{"message":"Unsupported value: 'none' is not supported with the 'gpt-5.1-codex' model.","type":"invalid_request_error","param":"reasoning.effort","code":"unsupported_value"}}`,
			want: 400, code: "unsupported_value", param: "reasoning.effort", msg: []string{"Unsupported value: 'none'"}},
		{name: "fastapi list", status: 422, body: `{"detail":[{"loc":["body","x"],"msg":"Field required"},{"msg":"bad"}]}`,
			want: 422, msg: []string{"Field required; bad"}},
		{name: "usage limit resets_at", status: 429,
			body: `{"error":{"type":"usage_limit_reached","message":"The usage limit has been reached","plan_type":"plus","resets_at":1777936568,"eligible_promo":null,"resets_in_seconds":13000}}`,
			want: 429, code: CodeUsageLimitReached, msg: []string{"The usage limit has been reached", "plan: plus", "2026-05-04", "3h51m"}, retry: 13872 * time.Second},
		{name: "usage limit names the active limit", status: 429, header: hdr("X-Codex-Active-Limit", "premium"),
			body: `{"error":{"type":"usage_limit_reached","message":"The usage limit has been reached","plan_type":"plus","resets_in_seconds":60}}`,
			want: 429, code: CodeUsageLimitReached, msg: []string{"(plan: plus, limit: premium)", "resets at"}, retry: 60 * time.Second},
		{name: "x-error-json carries the real code", status: 401,
			header: hdr("x-error-json", "eyJlcnJvciI6eyJtZXNzYWdlIjoiWW91ciBhdXRoZW50aWNhdGlvbiB0b2tlbiBoYXMgYmVlbiBpbnZhbGlkYXRlZC4iLCJ0eXBlIjoiaW52YWxpZF9yZXF1ZXN0X2Vycm9yIiwiY29kZSI6InRva2VuX2ludmFsaWRhdGVkIn0sInN0YXR1cyI6NDAxfQ=="),
			body:   `{"detail":"Unauthorized"}`, want: 401, code: CodeUpstreamUnauthorized, msg: []string{"token has been invalidated"}},
		{name: "x-error-json on a 400", status: 400,
			header: hdr("x-error-json", "eyJlcnJvciI6eyJtZXNzYWdlIjoiVW5zdXBwb3J0ZWQgc2VydmljZV90aWVyOiBmYXN0IiwiY29kZSI6InVuc3VwcG9ydGVkX3NlcnZpY2VfdGllciIsInBhcmFtIjoic2VydmljZV90aWVyIn19"),
			body:   `{"detail":"Bad Request"}`, want: 400, code: "unsupported_service_tier", param: "service_tier", msg: []string{"Unsupported service_tier: fast"}},
		{name: "x-error-json not base64 ignored", status: 400, header: hdr("x-error-json", "%%%"),
			body: `{"detail":"Store must be set to false"}`, want: 400, msg: []string{"Store must be set to false"}},
		{name: "usage limit resets_in only", status: 429,
			body: `{"error":{"type":"usage_limit_reached","message":"Limit","resets_in_seconds":90}}`,
			want: 429, code: CodeUsageLimitReached, msg: []string{"resets at", "2m"}, retry: 90 * time.Second},
		{name: "usage limit from headers", status: 429, header: hdr("X-Codex-Primary-Reset-At", "1777922756"),
			body: `{"error":{"type":"usage_limit_reached"}}`,
			want: 429, code: CodeUsageLimitReached, msg: []string{"usage limit"}, retry: 60 * time.Second},
		{name: "usage limit code", status: 429, body: `{"error":{"code":"usage_limit_reached","message":"x","resets_at":"1777922706"}}`,
			want: 429, code: CodeUsageLimitReached, retry: 10 * time.Second},
		{name: "usage not included", status: 429, body: `{"error":{"type":"usage_not_included","plan_type":"free"}}`,
			want: 403, code: CodeUsageNotIncluded, msg: []string{"does not include Codex", "free"}},
		{name: "404 usage limit", status: 404, body: `{"detail":"You've hit your usage limit. Try again later."}`,
			want: 429, code: CodeUsageLimitReached},
		{name: "404 usage code", status: 404, body: `{"error":{"message":"x","code":"usage_limit_reached","resets_in_seconds":5}}`,
			want: 429, code: CodeUsageLimitReached, retry: 5 * time.Second},
		{name: "404 plain", status: 404, body: `{"detail":"Not Found"}`, want: 502, code: CodeUpstreamError, msg: []string{"404", "Not Found"}},
		{name: "model not supported", status: 400,
			body: `{"detail":"The 'gpt-5.1-codex' model is not supported when using Codex with a ChatGPT account."}`,
			want: 404, code: CodeModelNotFound, param: "model", msg: []string{"'gpt-5.1-codex' model is not supported"}},
		{name: "service tier refused", status: 400, body: `{"detail":"Unsupported service_tier: priority"}`,
			want: 400, code: apierror.CodeTierUnavailable, param: "service_tier", msg: []string{"Fast tier", "not available", "Upstream said: Unsupported service_tier: priority"}},
		{name: "cloudflare header", status: 403, header: hdr("cf-mitigated", "challenge"), body: `<html>...</html>`,
			want: 502, code: CodeCloudflareChallenge, msg: []string{"Cloudflare"}},
		{name: "cloudflare just a moment", status: 403, body: `<!DOCTYPE html><title>Just a moment...</title>`,
			want: 502, code: CodeCloudflareChallenge},
		{name: "cloudflare 1010", status: 403, body: `<html><body>Access denied | chatgpt.com used Cloudflare to restrict access</body></html>`,
			want: 502, code: CodeCloudflareChallenge},
		{name: "403 json", status: 403, body: `{"detail":"Workspace mismatch"}`, want: 403, msg: []string{"Workspace mismatch"}},
		{name: "401", status: 401, body: `{"error":{"message":"Provided authentication token is expired.","code":"token_expired"}}`,
			want: 401, code: CodeUpstreamUnauthorized, msg: []string{"Re-link", "token is expired"}},
		{name: "plain 429", status: 429, header: hdr("Retry-After", "12"), body: `{"error":{"message":"Too many","code":"rate_limit_exceeded"}}`,
			want: 429, code: "rate_limit_exceeded", retry: 12 * time.Second},
		{name: "429 message delay", status: 429, body: `{"error":{"message":"Please try again in 1.5s."}}`,
			want: 429, code: "rate_limit_exceeded", retry: 1500 * time.Millisecond},
		{name: "500 json", status: 500, body: `{"error":{"message":"boom","type":"server_error"}}`,
			want: 502, code: CodeUpstreamError, msg: []string{"HTTP 500", "boom"}},
		{name: "503 html", status: 503, body: `<html><body>Service Unavailable</body></html>`,
			want: 502, code: CodeUpstreamError, msg: []string{"HTTP 503"}},
		{name: "text body", status: 400, body: "bad things\nhappened", want: 400, msg: []string{"bad things happened"}},
		{name: "empty body", status: 400, body: "", want: 400, msg: []string{"HTTP 400"}},
		{name: "flat error", status: 400, body: `{"error":"invalid_request","error_description":"nope"}`, want: 400, code: "invalid_request", msg: []string{"nope"}},
		{name: "odd status", status: 302, body: "", want: 502, code: CodeUpstreamError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.header
			if h == nil {
				h = http.Header{}
			}
			e := parseUpstreamError(tc.status, h, []byte(tc.body), now)
			if e.Err.Status != tc.want || e.Err.Code != tc.code || e.Err.Param != tc.param {
				t.Fatalf("got %d %q %q (%s), want %d %q %q", e.Err.Status, e.Err.Code, e.Err.Param, e.Err.Message, tc.want, tc.code, tc.param)
			}
			for _, m := range tc.msg {
				if !strings.Contains(e.Err.Message, m) {
					t.Errorf("message %q lacks %q", e.Err.Message, m)
				}
			}
			if e.RetryAfter != tc.retry {
				t.Errorf("retry after %v, want %v", e.RetryAfter, tc.retry)
			}
			if strings.Contains(e.Err.Message, "<") {
				t.Errorf("HTML leaked into message: %q", e.Err.Message)
			}
		})
	}
}

func TestRetryDelayFromMessage(t *testing.T) {
	for msg, want := range map[string]time.Duration{
		"Rate limit reached. Please try again in 11.054s.": 11054 * time.Millisecond,
		"try again in 250ms":     250 * time.Millisecond,
		"Try again in 3 seconds": 3 * time.Second,
		"try again later":        0,
		"":                       0,
	} {
		if got := RetryDelayFromMessage(msg); got != want {
			t.Errorf("%q: %v, want %v", msg, got, want)
		}
	}
}

func FuzzParseUpstreamError(f *testing.F) {
	f.Add(429, "", `{"error":{"type":"usage_limit_reached","resets_at":1777936568,"resets_in_seconds":13872}}`)
	f.Add(400, "", `{"detail":"Store must be set to false"}`)
	f.Add(403, "challenge", `<html>Just a moment...</html>`)
	f.Add(404, "", `{"detail":[{"msg":"usage limit"}]}`)
	f.Add(500, "", "\xff\xfe")
	f.Add(401, "", `{"error":"x","error_description":1e999}`)
	f.Add(-1, "", `{"error":{"resets_at":"NaN","resets_in_seconds":-5}}`)
	f.Fuzz(func(t *testing.T, status int, cf, body string) {
		h := http.Header{}
		if cf != "" {
			h.Set("cf-mitigated", cf)
		}
		e := ParseUpstreamError(status, h, []byte(body))
		if e == nil || e.Err == nil {
			t.Fatal("nil error")
		}
		if e.Err.Status < 400 || e.Err.Status > 599 {
			t.Fatalf("status %d", e.Err.Status)
		}
		if e.Err.Message == "" || !utf8.ValidString(e.Err.Message) || len(e.Err.Message) > 3*maxMessageLen {
			t.Fatalf("message %q", e.Err.Message)
		}
		if e.RetryAfter < 0 {
			t.Fatalf("negative retry %v", e.RetryAfter)
		}
		if _, err := json.Marshal(e.Err); err != nil {
			t.Fatalf("error does not encode: %v", err)
		}
	})
}
