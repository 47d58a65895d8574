package caddymodule

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestQuotaSnapshotStored: a successful chat leaves the upstream's rate
// limits in the dashboard's store for the user.
func TestQuotaSnapshotStored(t *testing.T) {
	env := newProxyEnv(t)
	if env.h.quotas == nil {
		t.Fatal("no quota store with the dashboard on")
	}
	if _, ok := env.h.quotas.Get(env.userID); ok {
		t.Fatal("snapshot before any request")
	}
	before := time.Now()
	if _, err := env.client.Chat.Completions.New(context.Background(), userMsg("hello")); err != nil {
		t.Fatal(err)
	}
	snap, ok := env.h.quotas.Get(env.userID)
	if !ok {
		t.Fatal("no snapshot after a chat")
	}
	if snap.PlanType != "plus" || snap.Primary == nil || snap.Secondary == nil {
		t.Fatalf("snapshot %+v", snap.RateLimits)
	}
	if snap.Primary.WindowMinutes != 300 || snap.Secondary.WindowMinutes != 10080 || snap.Primary.ResetAt.IsZero() {
		t.Fatalf("windows %+v %+v", *snap.Primary, *snap.Secondary)
	}
	if snap.Seen.Before(before) {
		t.Fatalf("seen %v before the request at %v", snap.Seen, before)
	}
}

// TestQuotaSnapshotKeptWhenHidden: with the dashboard off and
// expose_account_quota off, nothing shows the windows, but the proxy still
// keeps them: most-remaining routing picks the account by them.
func TestQuotaSnapshotKeptWhenHidden(t *testing.T) {
	off := false
	env := newProxyEnvWith(t, filepath.Join(t.TempDir(), "vault.db"), func(h *Handler) {
		h.Dashboard = &DashboardConfig{Disabled: true}
		h.ExposeAccountQuota = &off
	})
	if _, err := env.client.Chat.Completions.New(context.Background(), userMsg("hello")); err != nil {
		t.Fatal(err)
	}
	if q, err := env.h.vault.Quota(env.userID); err != nil || q.Primary == nil || q.Primary.WindowMinutes != 300 {
		t.Fatalf("no quota snapshot kept with the windows hidden: %+v %v", q, err)
	}
}

// TestQuotaSnapshotFromSocketTurn: a turn on a client WebSocket updates the
// user's snapshot as an HTTP request does, and its client gets the
// backend's rate limits as the codex.rate_limits event first, since a
// socket turn has no headers.
func TestQuotaSnapshotFromSocketTurn(t *testing.T) {
	env := newProxyEnv(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c := env.dialSocket(t, ctx)
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"response.create","model":"gpt-5.5","input":"hi"}`)); err != nil {
		t.Fatal(err)
	}
	var types []string
	var first map[string]any
	for !slices.Contains(types, "response.completed") {
		_, data, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("after %v: %v", types, err)
		}
		var ev map[string]any
		if err := json.Unmarshal(data, &ev); err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = ev
		}
		types = append(types, ev["type"].(string))
	}
	if first["type"] != "codex.rate_limits" || first["plan_type"] != "plus" {
		t.Fatalf("first event %v, all %v", first, types)
	}
	if p := first["rate_limits"].(map[string]any)["primary"].(map[string]any); p["window_minutes"] != 300.0 || p["reset_at"] == nil {
		t.Fatalf("primary window %v", p)
	}
	snap, ok := env.h.quotas.Get(env.userID)
	if !ok || snap.PlanType != "plus" || snap.Primary == nil || snap.Primary.WindowMinutes != 300 || snap.Secondary == nil {
		t.Fatalf("snapshot after a socket turn: %v %+v", ok, snap.RateLimits)
	}
}

// dialSocket opens a client WebSocket on /v1/responses with env's key; it
// is closed when the test ends.
func (env *proxyEnv) dialSocket(t *testing.T, ctx context.Context) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(env.srv.URL, "http")+"/v1/responses",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + env.key}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}
