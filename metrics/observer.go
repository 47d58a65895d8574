package metrics

import (
	"strconv"
	"time"

	"github.com/usemysub/caddy-codex-proxy/keypolicy"
	"github.com/usemysub/caddy-codex-proxy/translate"
)

// Observer is what a handler records through (the api.Observer methods):
// the package's collectors plus the handler's model catalog, which bounds
// the model label.
type Observer struct {
	catalog *translate.Catalog
}

// NewObserver returns an Observer whose model label is bounded by catalog.
func NewObserver(catalog *translate.Catalog) *Observer { return &Observer{catalog: catalog} }

// Request counts one finished request. The model label is the client's
// name only when the catalog knows it: clients choose model strings
// freely, and each distinct label would be a new time series.
func (o *Observer) Request(route string, status int, model string) {
	Requests.WithLabelValues(route, strconv.Itoa(status), o.modelLabel(model)).Inc()
}

// modelLabel is a client's model name as a label: the catalog's name for
// it, "other" for a name the catalog does not know, "" for none.
func (o *Observer) modelLabel(model string) string {
	if model == "" {
		return ""
	}
	if r := o.catalog.Resolve(model); r.Known {
		return r.Model.ID
	}
	return "other"
}

// UpstreamLatency observes the time until the upstream answered.
func (o *Observer) UpstreamLatency(d time.Duration) { UpstreamSeconds.Observe(d.Seconds()) }

// FirstByte observes the time until the client's first byte; zero (no
// byte sent) is not observed.
func (o *Observer) FirstByte(d time.Duration) {
	if d > 0 {
		TTFBSeconds.Observe(d.Seconds())
	}
}

// Tokens counts one request's tokens by kind, and its input and cached
// input by model (bounded as in Request), so the prompt cache's hit rate
// shows per model; a request with no usage adds nothing.
func (o *Observer) Tokens(model string, u translate.Usage) {
	if u == (translate.Usage{}) {
		return
	}
	if u.InputTokens > 0 {
		m := o.modelLabel(model)
		ModelTokens.WithLabelValues(m, "input").Add(float64(u.InputTokens))
		ModelTokens.WithLabelValues(m, "cached").Add(float64(u.CachedTokens))
	}
	Tokens.WithLabelValues("input").Add(float64(u.InputTokens))
	Tokens.WithLabelValues("output").Add(float64(u.OutputTokens))
	Tokens.WithLabelValues("cached").Add(float64(u.CachedTokens))
	Tokens.WithLabelValues("reasoning").Add(float64(u.ReasoningTokens))
}

// StreamStarted and StreamEnded keep the active streams gauge.
func (o *Observer) StreamStarted() { ActiveStreams.Inc() }

// StreamEnded: see StreamStarted.
func (o *Observer) StreamEnded() { ActiveStreams.Dec() }

// KeyRefused counts a refusal by a key's policy, by reason only.
func (o *Observer) KeyRefused(reason keypolicy.Reason) {
	KeyRefusals.WithLabelValues(string(reason)).Inc()
}

// Failover counts a generation moved to another of the user's accounts,
// and a prompt-cache reset when it belonged to a conversation.
func (o *Observer) Failover(conversation bool) {
	AccountFailovers.Inc()
	if conversation {
		CacheResets.Inc()
	}
}
