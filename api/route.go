package api

import (
	"context"
	"errors"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/usemysub/caddy-codex-proxy/codex"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// Several ChatGPT accounts per user (docs/accounts.md). A generation goes to the user's best usable account; when
// the upstream answers usage_limit_reached, which it does before the turn
// starts and before anything reached the client, that account is marked
// exhausted until its reset and the same request goes to the next
// account. Nothing else fails over: any other answer may mean the turn
// ran.

// send sends body upstream on the user's accounts in the order Route
// gives, failing over on usage_limit_reached. It sets req.account (the
// account that answered) and req.failoverFrom.
func (h *Handler) send(ctx context.Context, req *request, body []byte, hdr codex.RequestHeaders) (*codex.Stream, error) {
	if req.link != nil { // a client socket's turn: on the backend's socket if it can
		return h.sendSocket(ctx, req, body, hdr)
	}
	return h.sendWith(ctx, req, hdr, func(ts codex.TokenSource) (*codex.Stream, error) {
		return h.cfg.Upstream.Responses(ctx, ts, body, hdr)
	})
}

// sendWith is send for any upstream call: do makes it on one account.
func (h *Handler) sendWith(ctx context.Context, req *request, hdr codex.RequestHeaders, do func(codex.TokenSource) (*codex.Stream, error)) (*codex.Stream, error) {
	hint := vault.RouteHint{Pin: req.key.Policy.Account, Affinity: hdr.PromptCacheKey}
	accts := h.cfg.Accounts
	route, err := accts.Route(req.user.ID, hint)
	if err != nil {
		return nil, err
	}
	var last error
	for _, acct := range route.Accounts {
		req.account = acct
		up, err := do(h.accountTokens(req.user.ID, acct))
		if err == nil {
			if len(req.failoverFrom) > 0 {
				h.obs.Failover(hint.Affinity != "")
			}
			accts.NoteServed(req.user.ID, hint.Affinity, acct)
			if up.RateLimits != nil && h.cfg.Quotas != nil {
				h.cfg.Quotas.SetAccount(req.user.ID, acct, up.RateLimits)
			}
			return up, nil
		}
		if ctx.Err() != nil || !failsOver(err) {
			return nil, err
		}
		// Nothing of this request started upstream: the next account may
		// take it. With one account there is nothing to route around: every
		// request asks the upstream, as it always did, and gets its own
		// answer.
		if until, ok := usageLimitReset(err); ok && accts.AccountCount(req.user.ID) > 1 {
			accts.MarkExhausted(req.user.ID, acct, until)
			h.log.Info("ChatGPT account reached its usage limit; trying the user's next account",
				zap.String("request_id", req.id), zap.String("user_id", req.user.ID), zap.String("account", acct),
				zap.Time("resets_at", until))
		}
		req.failoverFrom = append(req.failoverFrom, acct)
		last = err
	}
	// Every usable account was tried. When the user has more than one, the
	// client hears of the soonest reset among all of them, those known to
	// be exhausted before this request included, not of the last answer's.
	if accts.AccountCount(req.user.ID) > 1 {
		if _, err := accts.Route(req.user.ID, hint); errors.Is(err, vault.ErrAccountsExhausted) {
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

// accountTokens gives the upstream client one account's tokens.
func (h *Handler) accountTokens(userID, accountID string) codex.TokenSource {
	return codex.TokenSourceFunc(func(ctx context.Context, force bool) (string, string, error) {
		return h.cfg.Accounts.AccountToken(ctx, userID, accountID, force)
	})
}

// userTokens gives the upstream client the user's preferred account's
// tokens.
func (h *Handler) userTokens(userID string) codex.TokenSource {
	return codex.TokenSourceFunc(func(ctx context.Context, force bool) (string, string, error) {
		return h.cfg.Accounts.AccessToken(ctx, userID, force)
	})
}

// failoverNote is the request log's note of the accounts tried first.
func failoverNote(from []string) string { return strings.Join(from, ",") }
