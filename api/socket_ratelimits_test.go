package api

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/codex"
)

// quotaSink records what the pipeline reports.
type quotaSink struct {
	mu   sync.Mutex
	seen []string // user/account of each report
	last *codex.RateLimits
}

func (q *quotaSink) SetAccount(userID, accountID string, rl *codex.RateLimits) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.seen = append(q.seen, userID+"/"+accountID)
	q.last = rl
}

func (q *quotaSink) reports() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.seen)
}

// upstreamLimits are rate-limit headers as the backend sends them, and
// what the upstream client parses from them.
func upstreamLimits(t *testing.T) (http.Header, *codex.RateLimits) {
	t.Helper()
	h := http.Header{}
	for k, v := range map[string]string{
		"X-Codex-Plan-Type": "plus", "X-Codex-Primary-Used-Percent": "42.5", "X-Codex-Primary-Window-Minutes": "300",
		"X-Codex-Primary-Reset-At": "1800003600", "X-Codex-Secondary-Used-Percent": "7", "X-Codex-Secondary-Window-Minutes": "10080",
		"X-Codex-Credits-Has-Credits": "False", "X-Codex-Credits-Unlimited": "False",
	} {
		h.Set(k, v)
	}
	rl, ok := codex.ParseRateLimits(h)
	if !ok {
		t.Fatal("test headers not parsed")
	}
	return h, &rl
}

// TestSocketTurnReportsRateLimits: what an HTTP answer does with the
// upstream's rate limits happens on a socket turn too: the client learns
// them (headers on HTTP, a codex.rate_limits event first on the socket, as
// the backend's socket sends it) and the user's quota snapshot is updated.
func TestSocketTurnReportsRateLimits(t *testing.T) {
	sink := &quotaSink{}
	e := newEnv(t, func(c *Config) { c.Quotas = sink })
	e.up.hdr, e.up.rl = upstreamLimits(t)

	res, _ := e.do(t, http.MethodPost, "/v1/responses", testKey, strings.NewReader(`{"model":"gpt-5.5","input":"hi","stream":true}`))
	if res.Header.Get("X-Codex-Primary-Used-Percent") != "42.5" || sink.reports() != 1 {
		t.Fatalf("HTTP: header %q, %d quota reports", res.Header.Get("X-Codex-Primary-Used-Percent"), sink.reports())
	}

	c := mustDial(t, e.serve(t))
	for turn := range 2 {
		send(t, c, createFrame)
		ev := next(t, c)
		if ev["type"] != "codex.rate_limits" || ev["plan_type"] != "plus" {
			t.Fatalf("turn %d: first event %v, want codex.rate_limits", turn, ev)
		}
		rl := ev["rate_limits"].(map[string]any)
		p, s := rl["primary"].(map[string]any), rl["secondary"].(map[string]any)
		if p["used_percent"] != 42.5 || p["window_minutes"] != 300.0 || p["reset_at"] != 1800003600.0 ||
			s["used_percent"] != 7.0 || s["window_minutes"] != 10080.0 {
			t.Fatalf("turn %d: windows %v", turn, rl)
		}
		if cr := ev["credits"].(map[string]any); cr["has_credits"] != false || cr["unlimited"] != false {
			t.Fatalf("turn %d: credits %v", turn, cr)
		}
		types, last := untilEnd(t, c)
		if types[0] != "response.created" || last["type"] != "response.completed" || contains(types, "codex.rate_limits") {
			t.Fatalf("turn %d: then %v", turn, types)
		}
	}
	if n := sink.reports(); n != 3 {
		t.Fatalf("%d quota reports, want one per turn (3)", n)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if sink.seen[2] != "u1/acct-a" || sink.last.Primary.UsedPercent != 42.5 {
		t.Fatalf("quota report %v %+v", sink.seen, sink.last)
	}
}

// TestSocketTurnWithoutRateLimits: an upstream answer without rate limits
// sends no codex.rate_limits event.
func TestSocketTurnWithoutRateLimits(t *testing.T) {
	e := newEnv(t)
	c := mustDial(t, e.serve(t))
	send(t, c, createFrame)
	if types, _ := untilEnd(t, c); types[0] != "response.created" {
		t.Fatalf("events %v", types)
	}
}

func TestRateLimitsEvent(t *testing.T) {
	reset := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct {
		name string
		rl   codex.RateLimits
		want string
	}{
		{"windows", codex.RateLimits{PlanType: "pro", Primary: &codex.RateWindow{UsedPercent: 12.5, WindowMinutes: 300, ResetAt: reset},
			Secondary: &codex.RateWindow{UsedPercent: 0, WindowMinutes: 10080}},
			`{"type":"codex.rate_limits","plan_type":"pro","rate_limits":{"primary":{"used_percent":12.5,"window_minutes":300,"reset_at":1800000000},"secondary":{"used_percent":0,"window_minutes":10080}}}`},
		{"credits only", codex.RateLimits{Credits: &codex.Credits{HasCredits: true, Balance: "12.50"}},
			`{"type":"codex.rate_limits","rate_limits":{},"credits":{"has_credits":true,"unlimited":false,"balance":"12.50"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(rateLimitsEvent(&tc.rl)); got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// rateLimitsSSE is textSSE with the codex.rate_limits event an upstream
// HTTP stream may carry before its first event.
const rateLimitsSSE = "event: codex.rate_limits\ndata: {\"type\":\"codex.rate_limits\",\"plan_type\":\"plus\",\"rate_limits\":{\"primary\":{\"used_percent\":42.5}}}\n\n" + textSSE

// TestHiddenQuotaReachesNoKeyHolder: with expose_account_quota off, the
// account's usage windows reach a key holder nowhere: no x-codex-* header
// on an answer of any dialect or on a compaction, no codex.rate_limits
// event on a Responses stream or a socket turn, no account in /v1/usage.
// The same requests with the setting on show them, so each check can fail.
func TestHiddenQuotaReachesNoKeyHolder(t *testing.T) {
	for _, expose := range []bool{true, false} {
		t.Run(map[bool]string{true: "on", false: "off"}[expose], func(t *testing.T) {
			sink := &quotaSink{}
			e := newEnv(t, func(c *Config) { c.Quotas = sink; c.ExposeAccountQuota = &expose })
			e.up.hdr, e.up.rl = upstreamLimits(t)
			e.up.sse = rateLimitsSSE
			for _, tc := range []struct{ path, body string }{
				{"/v1/responses", `{"model":"gpt-5.5","input":"hi","stream":true}`},
				{"/v1/responses", `{"model":"gpt-5.5","input":"hi"}`},
				{"/v1/chat/completions", chatBody},
				{"/v1/chat/completions", `{"model":"gpt-5.5","stream":true,"messages":[{"role":"user","content":"hi"}]}`},
				{"/v1/messages", messagesBody},
				{"/v1/responses/compact", `{"model":"gpt-5.5","input":"hi"}`},
			} {
				res, _ := e.do(t, http.MethodPost, tc.path, testKey, strings.NewReader(tc.body))
				body, _ := io.ReadAll(res.Body)
				if res.StatusCode != http.StatusOK {
					t.Fatalf("%s %s: %d %s", tc.path, tc.body, res.StatusCode, body)
				}
				if got := res.Header.Get("X-Codex-Primary-Used-Percent") != ""; got != expose {
					t.Errorf("%s %s: x-codex header shown %v", tc.path, tc.body, got)
				}
				if strings.Contains(tc.body, `"stream":true`) && strings.HasPrefix(tc.path, "/v1/responses") {
					if got := strings.Contains(string(body), "codex.rate_limits"); got != expose {
						t.Errorf("%s stream: codex.rate_limits event shown %v", tc.path, got)
					}
				}
			}
			c := mustDial(t, e.serve(t))
			send(t, c, createFrame)
			types, _ := untilEnd(t, c)
			if got := count(types, "codex.rate_limits"); got != map[bool]int{true: 1, false: 0}[expose] {
				t.Errorf("socket turn: %d codex.rate_limits events (%v)", got, types)
			}
			_, m := e.do(t, http.MethodGet, "/v1/usage?scope=user", testKey, nil)
			if got := m["account"] != nil || m["accounts"] != nil; got != expose {
				t.Errorf("/v1/usage: account windows shown %v: %v", got, m)
			}
			if sink.reports() == 0 {
				t.Error("no quota snapshot kept: the dashboard shows it to the owner either way")
			}
		})
	}
}

// count is how many of s are v.
func count(s []string, v string) int {
	n := 0
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}
