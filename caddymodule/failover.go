package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/usemysub/caddy-codex-proxy/apierror"
	"github.com/usemysub/caddy-codex-proxy/codex"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// Several ChatGPT accounts per user (docs/accounts.md).
// A generation goes to the user's best usable account; when the upstream
// answers usage_limit_reached, which it does before the turn starts and
// before anything reached the client, that account is marked exhausted
// until its reset and the same request goes to the next account. Nothing
// else fails over: any other answer may mean the turn ran.

// accountFailovers counts generations moved to another of the user's
// accounts because one was at its usage limit. No user label: bounded.
var accountFailovers = prometheus.NewCounter(prometheus.CounterOpts{
	Namespace: metricsNamespace, Name: "account_failovers_total",
	Help: "Requests moved to another of the user's linked ChatGPT accounts because one had reached its usage limit.",
})

func init() { collectors = append(collectors, accountFailovers) }

// sendGeneration sends body upstream on the user's accounts in the order
// the vault's Route gives, failing over on usage_limit_reached. It sets
// req.account (the account that answered) and req.failoverFrom.
func (h *Handler) sendGeneration(ctx context.Context, req *apiRequest, body []byte, hdr codex.RequestHeaders) (*codex.Stream, error) {
	hint := vault.RouteHint{Pin: req.key.Policy.Account, Affinity: hdr.PromptCacheKey}
	route, err := h.vault.Route(req.user.ID, hint)
	if err != nil {
		return nil, err
	}
	var last error
	for _, acct := range route.Accounts {
		req.account = acct
		up, err := h.client.Responses(ctx, h.accountSource(req.user.ID, acct), body, hdr)
		if err == nil {
			if len(req.failoverFrom) > 0 {
				accountFailovers.Inc()
			}
			h.vault.NoteServed(req.user.ID, hint.Affinity, acct)
			if up.RateLimits != nil {
				h.quotas.SetAccount(req.user.ID, acct, up.RateLimits) // in memory; a map store
			}
			return up, nil
		}
		if ctx.Err() != nil || !failsOver(err) {
			return nil, err
		}
		// Nothing of this request started upstream: the next account may
		// take it.
		// With one account there is nothing to route around: every request
		// asks the upstream, as it always did, and gets its own answer.
		if until, ok := usageLimitReset(err); ok && h.vault.AccountCount(req.user.ID) > 1 {
			h.vault.MarkExhausted(req.user.ID, acct, until)
			h.logger.Info("ChatGPT account reached its usage limit; trying the user's next account",
				zap.String("request_id", req.id), zap.String("user_id", req.user.ID), zap.String("account", acct),
				zap.Time("resets_at", until))
		}
		req.failoverFrom = append(req.failoverFrom, acct)
		last = err
	}
	// Every account was tried. When more than one was, the client hears
	// of the soonest reset among them, not of the last one's.
	if len(route.Accounts) > 1 {
		if _, err := h.vault.Route(req.user.ID, hint); errors.Is(err, vault.ErrAccountsExhausted) {
			return nil, err
		}
	}
	return nil, last
}

// failsOver reports whether a failed attempt on one account may be
// repeated on the next: the upstream answered usage_limit_reached (the
// turn did not start), or the request never left the proxy because the
// account is exhausted (marked by a concurrent request) or needs a
// re-link.
func failsOver(err error) bool {
	if _, ok := usageLimitReset(err); ok {
		return true
	}
	return errors.Is(err, vault.ErrAccountsExhausted) || errors.Is(err, vault.ErrRelinkNeeded)
}

// usageLimitReset reports whether err is the upstream's usage-limit answer
// and when the limit resets (zero if it did not say).
func usageLimitReset(err error) (time.Time, bool) {
	var ue *codex.UpstreamError
	if !errors.As(err, &ue) || ue.Err == nil || ue.Err.Code != codex.CodeUsageLimitReached {
		return time.Time{}, false
	}
	if ue.RetryAfter > 0 {
		return time.Now().Add(ue.RetryAfter), true
	}
	return time.Time{}, true
}

// accountSource gives the upstream client one account's tokens.
func (h *Handler) accountSource(userID, accountID string) codex.TokenSource {
	return codex.TokenSourceFunc(func(ctx context.Context, force bool) (string, string, error) {
		return h.vault.AccountToken(ctx, userID, accountID, force)
	})
}

// routeError maps the vault's routing verdicts to the client's error; ok
// is false for other errors.
func routeError(err error) (*apierror.Error, time.Duration, bool) {
	var ex *vault.ExhaustedError
	switch {
	case errors.As(err, &ex):
		wait := time.Until(ex.Until).Round(time.Second)
		msg := "Every ChatGPT account linked to this user has reached its usage limit."
		if !ex.Until.IsZero() {
			msg += fmt.Sprintf(" The first resets at %s (in %s).", ex.Until.UTC().Format("2006-01-02 15:04 UTC"), strings.TrimSpace(wait.String()))
		}
		return &apierror.Error{Status: http.StatusTooManyRequests, Code: codex.CodeUsageLimitReached, Message: msg}, max(wait, time.Second), true
	case errors.Is(err, vault.ErrNoSuchAccount):
		return &apierror.Error{Status: http.StatusForbidden, Type: "permission_error", Code: "account_not_linked",
			Message: "this API key is pinned to a ChatGPT account that is no longer linked: link it again or change the key's account pin"}, 0, true
	}
	return nil, 0, false
}

// failoverNote is the request log's note of the accounts tried first.
func failoverNote(from []string) string { return strings.Join(from, ",") }
