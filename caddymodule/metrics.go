package caddymodule

import (
	"errors"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/usemysub/caddy-codex-proxy/api"
	"github.com/usemysub/caddy-codex-proxy/keypolicy"
	"github.com/usemysub/caddy-codex-proxy/translate"
)

// metrics is what a handler records through: the package's collectors
// plus the handler's model catalog, which bounds the model label.
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

// The collectors exist once per process. Caddy builds a new registry for
// every config load, so each Provision registers these same collectors
// again: counters keep counting across a reload, and the streams gauge
// stays right while streams of the old config are still in flight. Labels
// never carry a user or key: cardinality stays bounded and nobody's usage
// leaks.
var (
	requestsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace, Name: "requests_total",
		Help: "API requests by route, status and model.",
	}, []string{"route", "status", "model"})
	upstreamSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: metricsNamespace, Name: "upstream_response_seconds",
		Help:    "Time until the upstream answered with headers.",
		Buckets: prometheus.ExponentialBuckets(0.01, 2, 12),
	})
	ttfbSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: metricsNamespace, Name: "time_to_first_byte_seconds",
		Help:    "Time until the client got the first byte of a response.",
		Buckets: prometheus.ExponentialBuckets(0.01, 2, 12),
	})
	tokensTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace, Name: "tokens_total",
		Help: "Tokens by kind (input, output, cached, reasoning).",
	}, []string{"kind"})
	activeStreams = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: metricsNamespace, Name: "active_streams",
		Help: "Streams being relayed right now.",
	})
	tokenRefreshes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace, Name: "token_refreshes_total",
		Help: "ChatGPT token refresh attempts by outcome (success, transient_failure, permanent_failure).",
	}, []string{"outcome"})
	requestLogDropped = prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: metricsNamespace, Name: "request_log_dropped_total",
		Help: "Request-log records lost because the vault's writer fell behind or a commit failed; usage figures undercount by this much.",
	}, liveVaults.droppedLogs)
	storedResponsesDropped = prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: metricsNamespace, Name: "stored_responses_dropped_total",
		Help: "Stored responses not kept (over the per-response cap) or dropped for a user's cap, oldest first.",
	}, liveVaults.droppedResponses)

	// keyRefusals counts requests refused by a key policy, by reason only
	// (no key or user labels).
	keyRefusals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metricsNamespace, Name: "key_refusals_total",
		Help: "Requests refused by an API key's policy, by reason (expired, model, rpm, concurrency, tokens_per_day, tokens_per_week).",
	}, []string{"reason"})
	// accountFailovers counts generations moved to another of the user's
	// accounts because one was at its usage limit. No user label: bounded.
	accountFailovers = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: metricsNamespace, Name: "account_failovers_total",
		Help: "Requests moved to another of the user's linked ChatGPT accounts because one had reached its usage limit.",
	})

	collectors = []prometheus.Collector{requestsTotal, upstreamSeconds, ttfbSeconds, tokensTotal, activeStreams, tokenRefreshes,
		requestLogDropped, storedResponsesDropped, keyRefusals, accountFailovers}
)

// registerMetrics registers the package's collectors with a config's
// registry. Registering one that is already there (a sibling handler of
// the same config did it) is fine; a different collector under the same
// name is an error.
func registerMetrics(reg prometheus.Registerer, catalog *translate.Catalog) (*metrics, error) {
	if reg != nil {
		for _, c := range collectors {
			if err := reg.Register(c); err != nil {
				var are prometheus.AlreadyRegisteredError
				if errors.As(err, &are) && are.ExistingCollector == c {
					continue
				}
				return nil, err
			}
		}
	}
	return &metrics{
		requests: requestsTotal, upstreamSeconds: upstreamSeconds, ttfbSeconds: ttfbSeconds,
		tokenCount: tokensTotal, activeStreams: activeStreams, refreshCount: tokenRefreshes,
		catalog: catalog,
	}, nil
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

// The api.Observer methods: the /v1 pipeline counts through these.

// Request counts one finished request.
func (m *metrics) Request(route string, status int, model string) { m.observe(route, status, model) }

// UpstreamLatency observes the time until the upstream answered.
func (m *metrics) UpstreamLatency(d time.Duration) { m.upstreamSeconds.Observe(d.Seconds()) }

// FirstByte observes the time until the client's first byte.
func (m *metrics) FirstByte(d time.Duration) {
	if d > 0 {
		m.ttfbSeconds.Observe(d.Seconds())
	}
}

// Tokens counts one request's tokens by kind.
func (m *metrics) Tokens(u translate.Usage) {
	if u == (translate.Usage{}) {
		return
	}
	m.tokenCount.WithLabelValues("input").Add(float64(u.InputTokens))
	m.tokenCount.WithLabelValues("output").Add(float64(u.OutputTokens))
	m.tokenCount.WithLabelValues("cached").Add(float64(u.CachedTokens))
	m.tokenCount.WithLabelValues("reasoning").Add(float64(u.ReasoningTokens))
}

// StreamStarted and StreamEnded keep the active streams gauge.
func (m *metrics) StreamStarted() { m.activeStreams.Inc() }

// StreamEnded: see StreamStarted.
func (m *metrics) StreamEnded() { m.activeStreams.Dec() }

// KeyRefused counts a refusal by a key's policy, by reason only.
func (m *metrics) KeyRefused(reason keypolicy.Reason) {
	keyRefusals.WithLabelValues(string(reason)).Inc()
}

// Failover counts a generation moved to another of the user's accounts.
func (m *metrics) Failover() { accountFailovers.Inc() }

var _ api.Observer = (*metrics)(nil)
