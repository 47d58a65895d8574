package caddymodule

import (
	"errors"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/usemysub/caddy-codex-proxy/translate"
)

// metrics are the proxy's Prometheus collectors. Labels never carry a user
// or key: cardinality stays bounded and nobody's usage leaks.
type metrics struct {
	requests        *prometheus.CounterVec
	upstreamSeconds prometheus.Histogram
	ttfbSeconds     prometheus.Histogram
	tokenCount      *prometheus.CounterVec
	activeStreams   prometheus.Gauge
	refreshCount    *prometheus.CounterVec
	catalog         *translate.Catalog
}

const metricsNamespace = "caddy_codex_proxy"

// registerMetrics registers the collectors with the config's registry,
// reusing ones a sibling handler (another site) already registered.
func registerMetrics(reg prometheus.Registerer, catalog *translate.Catalog) (*metrics, error) {
	m := &metrics{
		catalog: catalog,
		refreshCount: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "token_refreshes_total",
			Help: "ChatGPT token refresh attempts by outcome (success, transient_failure, permanent_failure).",
		}, []string{"outcome"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "requests_total",
			Help: "API requests by route, status and model.",
		}, []string{"route", "status", "model"}),
		upstreamSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Name: "upstream_response_seconds",
			Help:    "Time until the upstream answered with headers.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 12),
		}),
		ttfbSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Name: "time_to_first_byte_seconds",
			Help:    "Time until the client got the first byte of a response.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 12),
		}),
		tokenCount: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "tokens_total",
			Help: "Tokens by kind (input, output, cached, reasoning).",
		}, []string{"kind"}),
		activeStreams: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Name: "active_streams",
			Help: "Streams being relayed right now.",
		}),
	}
	var err error
	if m.requests, err = registerOrReuse(reg, m.requests); err != nil {
		return nil, err
	}
	if m.upstreamSeconds, err = registerOrReuse(reg, m.upstreamSeconds); err != nil {
		return nil, err
	}
	if m.ttfbSeconds, err = registerOrReuse(reg, m.ttfbSeconds); err != nil {
		return nil, err
	}
	if m.tokenCount, err = registerOrReuse(reg, m.tokenCount); err != nil {
		return nil, err
	}
	if m.activeStreams, err = registerOrReuse(reg, m.activeStreams); err != nil {
		return nil, err
	}
	if m.refreshCount, err = registerOrReuse(reg, m.refreshCount); err != nil {
		return nil, err
	}
	if err := registerKeyRefusals(reg); err != nil {
		return nil, err
	}
	return m, nil
}

func registerOrReuse[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if reg == nil {
		return c, nil
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}

// observe counts one request. The model label is the client's name only
// when the catalog knows it: clients choose model strings freely, and each
// distinct label would be a new time series.
func (m *metrics) observe(route string, status int, model string) {
	if model != "" {
		if r := m.catalog.Resolve(model); r.Known {
			model = r.Model.ID
		} else {
			model = "other"
		}
	}
	m.requests.WithLabelValues(route, strconv.Itoa(status), model).Inc()
}

func (m *metrics) refreshed(outcome string) { m.refreshCount.WithLabelValues(outcome).Inc() }

func (m *metrics) upstreamLatency(d time.Duration) { m.upstreamSeconds.Observe(d.Seconds()) }

func (m *metrics) firstByte(d time.Duration) {
	if d > 0 {
		m.ttfbSeconds.Observe(d.Seconds())
	}
}

func (m *metrics) tokens(u translate.Usage) {
	if u == (translate.Usage{}) {
		return
	}
	m.tokenCount.WithLabelValues("input").Add(float64(u.InputTokens))
	m.tokenCount.WithLabelValues("output").Add(float64(u.OutputTokens))
	m.tokenCount.WithLabelValues("cached").Add(float64(u.CachedTokens))
	m.tokenCount.WithLabelValues("reasoning").Add(float64(u.ReasoningTokens))
}

func (m *metrics) streamStarted() { m.activeStreams.Inc() }
func (m *metrics) streamEnded()   { m.activeStreams.Dec() }

// gaugeValue reads a gauge; tests use it to see streams end.
func gaugeValue(g prometheus.Gauge) float64 {
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		return 0
	}
	return m.GetGauge().GetValue()
}
