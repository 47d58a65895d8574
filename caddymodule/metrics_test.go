package caddymodule

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
	"github.com/usemysub/caddy-codex-proxy/metrics"
	"github.com/usemysub/caddy-codex-proxy/translate"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// gathered reads one series from a registry as a scrape would see it; ok
// is false when the registry does not have it. labels are name, value
// pairs.
func gathered(t *testing.T, g prometheus.Gatherer, name string, labels ...string) (v float64, ok bool) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue series
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			}
		}
	}
	return 0, false
}

// TestMetricsReRegisterOnReload: each config load brings a new registry
// (two here); the collectors registered on the second carry on from what
// was counted through the first.
func TestMetricsReRegisterOnReload(t *testing.T) {
	const name = "caddy_codex_proxy_requests_total"
	labels := []string{"route", "responses", "status", "502", "model", ""}
	first := prometheus.NewPedanticRegistry()
	m1, err := registerMetrics(first, translate.DefaultCatalog())
	if err != nil {
		t.Fatal(err)
	}
	before, _ := gathered(t, first, name, labels...)
	m1.Request("responses", 502, "")
	m1.Request("responses", 502, "")

	second := prometheus.NewPedanticRegistry()
	m2, err := registerMetrics(second, translate.DefaultCatalog())
	if err != nil {
		t.Fatalf("registering on the reloaded config's registry: %v", err)
	}
	if got, ok := gathered(t, second, name, labels...); !ok || got != before+2 {
		t.Fatalf("after reload: %v (found %v), want %v", got, ok, before+2)
	}
	m2.Request("responses", 502, "")
	if got, _ := gathered(t, second, name, labels...); got != before+3 {
		t.Fatalf("counting on after reload: %v, want %v", got, before+3)
	}
	// Every collector is on the new registry, including the dropped-records
	// counter, which has no series until something reads it.
	for _, n := range []string{"caddy_codex_proxy_active_streams", "caddy_codex_proxy_request_log_dropped_total", "caddy_codex_proxy_stored_responses_dropped_total"} {
		if _, ok := gathered(t, second, n); !ok {
			t.Errorf("%s missing from the reloaded registry", n)
		}
	}

	// A second site of the same config registers the same collectors: fine.
	if _, err := registerMetrics(second, translate.DefaultCatalog()); err != nil {
		t.Fatalf("second handler on the same registry: %v", err)
	}
	// Someone else's collector that looks exactly like ours is still a
	// conflict: only our own collectors may be found already registered.
	clash := prometheus.NewPedanticRegistry()
	clash.MustRegister(prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: "API requests by route, status and model."},
		[]string{"route", "status", "model"}))
	var are prometheus.AlreadyRegisteredError
	if _, err := registerMetrics(clash, translate.DefaultCatalog()); !errors.As(err, &are) {
		t.Fatalf("foreign collector under our name: err %v", err)
	}
}

// TestActiveStreamsAcrossReload: a stream that started under the old
// config is still counted after a reload, and leaves the gauge when it
// ends, on the new config's registry.
func TestActiveStreamsAcrossReload(t *testing.T) {
	env := newProxyEnv(t, codextest.WithSlowDelay(300*time.Millisecond))
	const name = "caddy_codex_proxy_active_streams"
	base := gaugeValue(metrics.ActiveStreams)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream := env.client.Chat.Completions.NewStreaming(ctx, userMsg("x "+codextest.Marker(codextest.ScenarioSlow)))
	if !stream.Next() { // the first chunk: the stream is in flight
		t.Fatalf("no first chunk: %v", stream.Err())
	}

	// Reload: a new handler on the same vault with a new registry.
	reloaded := &Handler{Vault: env.h.Vault, EncryptionKeys: env.h.EncryptionKeys, APIKeyPepper: env.h.APIKeyPepper,
		Upstream: env.h.Upstream, OAuthIssuer: env.h.OAuthIssuer}
	rc := startHandler(t, reloaded)
	reg := rc.ctx.GetMetricsRegistry()
	if got, _ := gathered(t, reg, name); got != base+1 {
		t.Fatalf("active streams after reload: %v, want %v", got, base+1)
	}

	cancel() // the client leaves; the old config's handler ends the stream
	for stream.Next() {
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, _ := gathered(t, reg, name)
		if got == base {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("active streams after the stream ended: %v, want %v", got, base)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDroppedRequestLogsExported: records the vault drops show up in the
// config's registry, and the count stays when the vault closes.
func TestDroppedRequestLogsExported(t *testing.T) {
	h := &Handler{Vault: t.TempDir() + "/vault.db", EncryptionKeys: []string{testEncKey}, APIKeyPepper: testPepper}
	c := startHandler(t, h)
	const name = "caddy_codex_proxy_request_log_dropped_total"
	reg := c.ctx.GetMetricsRegistry()
	base, ok := gathered(t, reg, name)
	if !ok {
		t.Fatalf("%s not exported", name)
	}
	// A closed vault drops what it is given, as one that fell behind does.
	v := h.vault
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		v.LogRequest(vault.LogRecord{UserID: "u", Status: 200})
	}
	if got, _ := gathered(t, reg, name); got != base+5 {
		t.Fatalf("dropped records exported as %v, want %v", got, base+5)
	}
	// The last config goes, the vault leaves the pool: the count stays.
	c.stop()
	if got, _ := gathered(t, reg, name); got != base+5 {
		t.Fatalf("after the vault closed: %v, want %v", got, base+5)
	}
}

// gaugeValue reads a gauge; it shows streams end.
func gaugeValue(g prometheus.Gauge) float64 {
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		return 0
	}
	return m.GetGauge().GetValue()
}
