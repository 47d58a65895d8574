// Package metrics holds the proxy's Prometheus collectors and the
// api.Observer the /v1 pipeline counts through. It is Caddy-free: the
// Caddy glue registers the collectors with each config's registry.
//
// The collectors exist once per process. Caddy builds a new registry for
// every config load, so each load registers these same collectors again:
// counters keep counting across a reload, and the streams gauge stays
// right while streams of the old config are still in flight. Labels never
// carry a user or key: cardinality stays bounded and nobody's usage leaks.
package metrics

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Namespace prefixes every series the proxy exports.
const Namespace = "caddy_codex_proxy"

// The process's collectors. They are exported for tests that compare a
// count before and after; the proxy records through an Observer,
// CountRefresh and the vault set.
var (
	// Requests counts API requests by route, status and model (the model
	// bounded by the catalog: see Observer.Request).
	Requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "requests_total",
		Help: "API requests by route, status and model.",
	}, []string{"route", "status", "model"})
	// UpstreamSeconds is the time until the upstream answered with headers.
	UpstreamSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "upstream_response_seconds",
		Help:    "Time until the upstream answered with headers.",
		Buckets: prometheus.ExponentialBuckets(0.01, 2, 12),
	})
	// TTFBSeconds is the time until the client got its first byte.
	TTFBSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "time_to_first_byte_seconds",
		Help:    "Time until the client got the first byte of a response.",
		Buckets: prometheus.ExponentialBuckets(0.01, 2, 12),
	})
	// Tokens counts tokens by kind.
	Tokens = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "tokens_total",
		Help: "Tokens by kind (input, output, cached, reasoning).",
	}, []string{"kind"})
	// ActiveStreams is the number of streams being relayed.
	ActiveStreams = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "active_streams",
		Help: "Streams being relayed right now.",
	})
	// TokenRefreshes counts ChatGPT token refresh attempts by outcome.
	TokenRefreshes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "token_refreshes_total",
		Help: "ChatGPT token refresh attempts by outcome (success, transient_failure, permanent_failure).",
	}, []string{"outcome"})
	// RequestLogDropped reads the request-log records every vault in
	// Vaults dropped.
	RequestLogDropped = prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: Namespace, Name: "request_log_dropped_total",
		Help: "Request-log records lost because the vault's writer fell behind or a commit failed; usage figures undercount by this much.",
	}, Vaults.droppedLogs)
	// StoredResponsesDropped reads the stored responses every vault in
	// Vaults did not keep or dropped for a user's cap.
	StoredResponsesDropped = prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: Namespace, Name: "stored_responses_dropped_total",
		Help: "Stored responses not kept (over the per-response cap) or dropped for a user's cap, oldest first.",
	}, Vaults.droppedResponses)
	// KeyRefusals counts requests refused by a key policy, by reason only
	// (no key or user labels).
	KeyRefusals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "key_refusals_total",
		Help: "Requests refused by an API key's policy, by reason (expired, model, rpm, concurrency, tokens_per_day, tokens_per_week).",
	}, []string{"reason"})
	// ModelTokens counts input tokens and the cached part of them by model
	// (bounded as Requests' label), for the prompt cache's hit rate.
	ModelTokens = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "model_tokens_total",
		Help: "Input tokens by model and kind (input: all of them; cached: those served from the prompt cache). Hit rate: cached / input.",
	}, []string{"model", "kind"})
	// CacheResets counts conversations failover moved to another account.
	CacheResets = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Name: "cache_resets_total",
		Help: "Conversations (requests with a prompt cache key) that failover moved to another linked ChatGPT account, whose prompt cache starts cold there.",
	})
	// AccountFailovers counts generations moved to another of the user's
	// accounts because one was at its usage limit. No user label: bounded.
	AccountFailovers = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Name: "account_failovers_total",
		Help: "Requests moved to another of the user's linked ChatGPT accounts because one had reached its usage limit.",
	})

	// The vaults' handling of other instances' changes (PostgreSQL only;
	// see docs/clusters.md, "How changes converge").
	vaultChanges = []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: Namespace, Name: "vault_changes_applied_total",
			Help: "Changes other instances made that this instance applied to its caches."},
			Vaults.changeCounter(func(c ChangeCounts) uint64 { return c.Applied })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: Namespace, Name: "vault_change_rereads_failed_total",
			Help: "Failed attempts to re-read what another instance changed; each is retried."},
			Vaults.changeCounter(func(c ChangeCounts) uint64 { return c.RereadsFailed })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: Namespace, Name: "vault_change_retries_total",
			Help: "Re-reads of a change (or full reloads) retried after a failed attempt."},
			Vaults.changeCounter(func(c ChangeCounts) uint64 { return c.Retries })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: Namespace, Name: "vault_resyncs_total",
			Help: "Full reloads of the cached users, keys and tokens completed (after a reconnect, or periodic)."},
			Vaults.changeCounter(func(c ChangeCounts) uint64 { return c.Resyncs })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: Namespace, Name: "vault_resyncs_failed_total",
			Help: "Full reload attempts that failed; each is retried."},
			Vaults.changeCounter(func(c ChangeCounts) uint64 { return c.ResyncsFailed })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: "vault_changes_pending",
			Help: "Changes of other instances waiting for a retry right now (a full reload counts as one)."},
			Vaults.changeCounter(func(c ChangeCounts) uint64 { return c.Pending })),
	}

	collectors = append([]prometheus.Collector{Requests, UpstreamSeconds, TTFBSeconds, Tokens, ActiveStreams, TokenRefreshes,
		RequestLogDropped, StoredResponsesDropped, KeyRefusals, AccountFailovers, ModelTokens, CacheResets}, vaultChanges...)
)

// Register registers the process's collectors with a config's registry.
// Registering one that is already there (a sibling handler of the same
// config did it) is fine; a different collector under the same name is an
// error. A nil registry registers nothing.
func Register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) && are.ExistingCollector == c {
				continue
			}
			return err
		}
	}
	return nil
}

// CountRefresh counts one token refresh attempt by its outcome: success,
// permanent_failure (the error has a Permanent method that says so, as
// codex.RefreshError does) or transient_failure.
func CountRefresh(err error) {
	TokenRefreshes.WithLabelValues(refreshOutcome(err)).Inc()
}

// refreshOutcome names a refresh result.
func refreshOutcome(err error) string {
	var perm interface{ Permanent() bool }
	switch {
	case err == nil:
		return "success"
	case errors.As(err, &perm) && perm.Permanent():
		return "permanent_failure"
	default:
		return "transient_failure"
	}
}
