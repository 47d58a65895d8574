package api

import (
	"context"
	"time"

	"github.com/usemysub/caddy-codex-proxy/codex"
	"github.com/usemysub/caddy-codex-proxy/keypolicy"
	"github.com/usemysub/caddy-codex-proxy/translate"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// What the pipeline needs from the rest of the proxy, each as small as the
// pipeline uses it. *vault.Vault implements Keys, Accounts and Recorder;
// *codex.Client implements Upstream and *codex.ModelCache Models.

// Keys checks API keys and admits requests under their policies.
type Keys interface {
	// VerifyKey returns the key and its user for a plaintext key. Errors:
	// vault.ErrKeyInvalid (unknown, revoked or malformed),
	// vault.ErrUserDisabled, or any other for a vault failure.
	VerifyKey(plaintext string) (vault.Key, vault.User, error)
	// AdmitKeyHold takes a request slot under k's budgets, rate and
	// concurrency limits, reserving reserve tokens against its budgets;
	// the hold is released once the request is recorded.
	AdmitKeyHold(k vault.Key, reserve int64) (*keypolicy.Hold, *keypolicy.Refusal)
	// AdmitKeyRate decides whether a request with k that costs no tokens
	// and holds no slot may run: the request rate only.
	AdmitKeyRate(k vault.Key) *keypolicy.Refusal
	// KeyStatus is k's counters against its policy now.
	KeyStatus(k vault.Key) keypolicy.Status
	// ListKeys lists the user's keys, revoked ones included.
	ListKeys(userID string) ([]vault.Key, error)
}

// Accounts picks the user's ChatGPT accounts and gives their tokens.
type Accounts interface {
	// Route is the accounts to try for one request, best first; see
	// vault.Vault.Route for its errors.
	Route(userID string, hint vault.RouteHint) (vault.Route, error)
	// NoteServed remembers which account served a conversation.
	NoteServed(userID, conversation, accountID string)
	// MarkExhausted records that an account is at its usage limit until.
	MarkExhausted(userID, accountID string, until time.Time)
	// AccountCount is how many accounts the user has linked.
	AccountCount(userID string) int
	// AccessToken is a fresh access token of the user's preferred account.
	AccessToken(ctx context.Context, userID string, force bool) (token, accountID string, err error)
	// AccountToken is a fresh access token of one of the user's accounts.
	AccountToken(ctx context.Context, userID, accountID string, force bool) (token, chatgptAccountID string, err error)
	// Accounts lists the user's linked accounts in their order.
	Accounts(userID string) ([]vault.Account, error)
	// Quota and AccountQuota are the latest usage windows the upstream
	// reported, of the preferred account and of one account.
	Quota(userID string) (vault.QuotaSnapshot, error)
	AccountQuota(userID, accountID string) (vault.QuotaSnapshot, error)
}

// Upstream sends a translated Responses request to the Codex backend.
// Errors are *codex.UpstreamError values, or the token source's.
type Upstream interface {
	Responses(ctx context.Context, ts codex.TokenSource, body []byte, h codex.RequestHeaders) (*codex.Stream, error)
}

// Models is the user's model catalog as the upstream reports it (cached).
type Models interface {
	Get(ctx context.Context, userID string, ts codex.TokenSource) ([]codex.RemoteModel, error)
}

// Responses keeps each user's stored responses (/v1/responses with
// store, previous_response_id and item_reference). *vault.Vault implements
// it. Reads fail with vault.ErrNotFound for an unknown, expired or another
// user's id.
type Responses interface {
	PutResponse(userID string, r vault.StoredResponse, itemIDs []string) error
	Response(userID, id string) (vault.StoredResponse, error)
	ResponseByItem(userID, itemID string) (vault.StoredResponse, error)
	DeleteResponse(userID, id string) error
}

// Recorder keeps the request log and counts each request's tokens in its
// key's budgets. LogRequestSettling must not block. A request admitted with
// a hold is settled by its record: tokens counted and hold released in one
// step.
type Recorder interface {
	LogRequestSettling(rec vault.LogRecord, hold *keypolicy.Hold)
	// CacheUsage reads the prompt-cache use of the user's requests since
	// since back from the log: of one key when keyID is set, else per key
	// too (GET /v1/usage).
	CacheUsage(userID, keyID string, since time.Time) (vault.CacheUsage, error)
}

// QuotaSink takes the rate limits an upstream answer reported, for the
// dashboard and /v1/usage. It must be cheap: it runs on the request path.
type QuotaSink interface {
	SetAccount(userID, accountID string, rl *codex.RateLimits)
}

// Observer counts what happens, for metrics. The zero Config uses one that
// counts nothing.
type Observer interface {
	// Request counts one finished request; model is the client's name.
	Request(route string, status int, model string)
	// FirstByte is the time until the client got its first byte.
	FirstByte(d time.Duration)
	// Tokens counts one request's tokens; model is the client's name.
	Tokens(model string, u translate.Usage)
	// UpstreamLatency is the time until the upstream answered with headers.
	UpstreamLatency(d time.Duration)
	// StreamStarted and StreamEnded bracket a relayed stream.
	StreamStarted()
	StreamEnded()
	// KeyRefused counts a request refused by its key's policy.
	KeyRefused(reason keypolicy.Reason)
	// Failover counts a generation another of the user's accounts served
	// because one was at its usage limit; conversation reports that it
	// carried a prompt cache key, so the move reset the conversation's
	// prompt cache (which lives with the account).
	Failover(conversation bool)
}

// nopObserver counts nothing.
type nopObserver struct{}

func (nopObserver) Request(string, int, string)    {}
func (nopObserver) FirstByte(time.Duration)        {}
func (nopObserver) Tokens(string, translate.Usage) {}
func (nopObserver) UpstreamLatency(time.Duration)  {}
func (nopObserver) StreamStarted()                 {}
func (nopObserver) StreamEnded()                   {}
func (nopObserver) KeyRefused(keypolicy.Reason)    {}
func (nopObserver) Failover(bool)                  {}
