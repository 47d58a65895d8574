package api

import (
	"encoding/json"
	"net/http"

	"github.com/coder/websocket"

	"github.com/usemysub/caddy-codex-proxy/codex"
)

// The upstream's rate limits reach an HTTP client as the x-codex-*
// headers of its answer. A turn on a client WebSocket has no headers of
// its own (the upgrade's are long gone), so its client gets them as the
// backend's own socket sends them: a codex.rate_limits event before the
// turn's first event, which the Codex CLI reads into its status line. The
// snapshot the dashboard and GET /v1/usage show is kept by sendWith for
// both, whichever transport the upstream used.

// rateLimitsNoter is a writer that carries the upstream's rate limits to
// its client in another form than headers.
type rateLimitsNoter interface {
	noteRateLimits(rl *codex.RateLimits)
}

// passRateLimits hands the upstream's rate limits to the client: its
// x-codex-* headers on HTTP, a codex.rate_limits event on a socket. With
// expose_account_quota off it hands nothing: the windows are the
// account's, which the operator keeps from key holders everywhere.
func (h *Handler) passRateLimits(w http.ResponseWriter, up *codex.Stream) {
	if !h.cfg.exposeQuota() {
		return
	}
	codex.PassHeaders(w.Header(), up.Header)
	if n, ok := w.(rateLimitsNoter); ok && up.RateLimits != nil {
		n.noteRateLimits(up.RateLimits)
	}
}

// noteRateLimits sends the turn's codex.rate_limits event; the relay
// writes nothing before it.
func (f *frameWriter) noteRateLimits(rl *codex.RateLimits) {
	if f.err != nil {
		return
	}
	if err := f.c.Write(f.ctx, websocket.MessageText, rateLimitsEvent(rl)); err != nil {
		f.err = err
	}
}

// rateLimitsEvent renders rl as the backend's socket event:
// {"type":"codex.rate_limits","plan_type":…,"rate_limits":{"primary":
// {"used_percent","window_minutes","reset_at"},"secondary":…},"credits":
// {"has_credits","unlimited","balance"}}, absent parts left out (the Codex
// CLI's parse_rate_limit_event reads this shape; a window always has its
// used_percent).
func rateLimitsEvent(rl *codex.RateLimits) []byte {
	type window struct {
		UsedPercent   float64 `json:"used_percent"`
		WindowMinutes int     `json:"window_minutes,omitempty"`
		ResetAt       int64   `json:"reset_at,omitempty"`
	}
	type credits struct {
		HasCredits bool   `json:"has_credits"`
		Unlimited  bool   `json:"unlimited"`
		Balance    string `json:"balance,omitempty"`
	}
	win := func(w *codex.RateWindow) *window {
		if w == nil {
			return nil
		}
		out := &window{UsedPercent: w.UsedPercent, WindowMinutes: w.WindowMinutes}
		if !w.ResetAt.IsZero() {
			out.ResetAt = w.ResetAt.Unix()
		}
		return out
	}
	ev := struct {
		Type       string `json:"type"`
		PlanType   string `json:"plan_type,omitempty"`
		RateLimits struct {
			Primary   *window `json:"primary,omitempty"`
			Secondary *window `json:"secondary,omitempty"`
		} `json:"rate_limits"`
		Credits *credits `json:"credits,omitempty"`
	}{Type: "codex.rate_limits", PlanType: rl.PlanType}
	ev.RateLimits.Primary, ev.RateLimits.Secondary = win(rl.Primary), win(rl.Secondary)
	if c := rl.Credits; c != nil {
		ev.Credits = &credits{HasCredits: c.HasCredits, Unlimited: c.Unlimited, Balance: c.Balance}
	}
	b, _ := json.Marshal(ev)
	return b
}
