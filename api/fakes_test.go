package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/apierror"
	"github.com/usemysub/caddy-codex-proxy/codex"
	"github.com/usemysub/caddy-codex-proxy/keypolicy"
	"github.com/usemysub/caddy-codex-proxy/translate"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// In-memory fakes of the pipeline's collaborators: no bbolt file, no HTTP
// upstream. Each records what the pipeline asked of it.

const testKey = "cpk_test"

// fakeKeys knows one key. refuse, when set, is AdmitKey's answer.
type fakeKeys struct {
	mu        sync.Mutex
	key       vault.Key
	user      vault.User
	verifyErr error
	refuse    *keypolicy.Refusal
	tracker   *keypolicy.Tracker // the real one: holds and reservations
	holds     []*keypolicy.Hold
	admitted  int
}

func (f *fakeKeys) VerifyKey(plaintext string) (vault.Key, vault.User, error) {
	if f.verifyErr != nil {
		return vault.Key{}, vault.User{}, f.verifyErr
	}
	if plaintext != testKey {
		return vault.Key{}, vault.User{}, vault.ErrKeyInvalid
	}
	return f.key, f.user, nil
}

func (f *fakeKeys) AdmitKeyHold(k vault.Key, reserve int64) (*keypolicy.Hold, *keypolicy.Refusal) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refuse != nil {
		return nil, f.refuse
	}
	if f.tracker == nil {
		f.tracker = keypolicy.NewTracker(nil)
	}
	h, r := f.tracker.AdmitHold(k.ID, k.Policy, reserve)
	if r != nil {
		return nil, r
	}
	f.admitted++
	f.holds = append(f.holds, h)
	return h, nil
}

// inFlight is how many admitted requests have not released their hold.
func (f *fakeKeys) inFlight() int64 {
	return f.tracker.Status(f.key.ID, f.key.Policy).Concurrent.Used
}

func (f *fakeKeys) AdmitKeyRate(vault.Key) *keypolicy.Refusal { return f.refuse }

func (f *fakeKeys) KeyStatus(vault.Key) keypolicy.Status { return keypolicy.Status{} }

func (f *fakeKeys) ListKeys(string) ([]vault.Key, error) { return []vault.Key{f.key}, nil }

// fakeAccounts routes over a fixed list of accounts.
type fakeAccounts struct {
	mu        sync.Mutex
	accounts  []string
	routeErr  error
	exhausted map[string]time.Time
	served    []string
}

func (f *fakeAccounts) Route(string, vault.RouteHint) (vault.Route, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.routeErr != nil {
		return vault.Route{}, f.routeErr
	}
	var usable []string
	var soonest time.Time
	for _, a := range f.accounts {
		if until, ok := f.exhausted[a]; ok {
			if soonest.IsZero() || until.Before(soonest) {
				soonest = until
			}
			continue
		}
		usable = append(usable, a)
	}
	if len(usable) == 0 {
		return vault.Route{}, &vault.ExhaustedError{Until: soonest}
	}
	return vault.Route{Accounts: usable}, nil
}

func (f *fakeAccounts) NoteServed(_, _, acct string) {
	f.mu.Lock()
	f.served = append(f.served, acct)
	f.mu.Unlock()
}

func (f *fakeAccounts) MarkExhausted(_, acct string, until time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.exhausted == nil {
		f.exhausted = map[string]time.Time{}
	}
	f.exhausted[acct] = until
}

func (f *fakeAccounts) AccountCount(string) int { return len(f.accounts) }

func (f *fakeAccounts) AccessToken(context.Context, string, bool) (string, string, error) {
	return "tok", "chatgpt-acct", nil
}

func (f *fakeAccounts) AccountToken(_ context.Context, _, acct string, _ bool) (string, string, error) {
	return "tok-" + acct, acct, nil
}

func (f *fakeAccounts) Accounts(string) ([]vault.Account, error) {
	var out []vault.Account
	for _, a := range f.accounts {
		out = append(out, vault.Account{ID: a})
	}
	return out, nil
}

func (f *fakeAccounts) Quota(string) (vault.QuotaSnapshot, error) {
	return vault.QuotaSnapshot{PlanType: "plus", Seen: time.Unix(1_800_000_000, 0)}, nil
}

func (f *fakeAccounts) AccountQuota(string, string) (vault.QuotaSnapshot, error) {
	return vault.QuotaSnapshot{}, vault.ErrNotFound
}

// fakeUpstream answers each account with its scripted error, or with sse.
type fakeUpstream struct {
	mu   sync.Mutex
	errs map[string]error // by account
	sse  string
	hang bool // after sse, go silent until the request is cancelled
	// gate, when set, holds every answer back until it is closed (or the
	// request is cancelled); opened tells when a request reached it.
	gate   chan struct{}
	opened chan struct{}
	bodies [][]byte
	tried  []string
	// rl and hdr are the rate limits (and headers) each answer reports.
	rl  *codex.RateLimits
	hdr http.Header
}

func (f *fakeUpstream) Responses(ctx context.Context, ts codex.TokenSource, body []byte, _ codex.RequestHeaders) (*codex.Stream, error) {
	_, acct, err := ts.AccessToken(ctx, false)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tried = append(f.tried, acct)
	if e := f.errs[acct]; e != nil {
		return nil, e
	}
	f.bodies = append(f.bodies, body)
	var rd io.Reader = strings.NewReader(f.sse)
	if f.hang {
		rd = io.MultiReader(rd, hangUntilDone{ctx})
	}
	if f.gate != nil {
		rd = io.MultiReader(gated{ctx, f.gate, f.opened}, rd)
	}
	return &codex.Stream{Body: io.NopCloser(rd), Header: f.hdr.Clone(), RateLimits: f.rl}, nil
}

// hangUntilDone is an upstream that goes silent: reads block until the
// request is cancelled, as the transport's do.
type hangUntilDone struct{ ctx context.Context }

func (h hangUntilDone) Read([]byte) (int, error) {
	<-h.ctx.Done()
	return 0, h.ctx.Err()
}

// gated reads nothing until its gate opens; it tells opened (if set) that
// a reader is waiting.
type gated struct {
	ctx    context.Context
	gate   chan struct{}
	opened chan struct{}
}

func (g gated) Read([]byte) (int, error) {
	if g.opened != nil {
		select {
		case g.opened <- struct{}{}:
		default:
		}
	}
	select {
	case <-g.gate:
		return 0, io.EOF
	case <-g.ctx.Done():
		return 0, g.ctx.Err()
	}
}

func (f *fakeUpstream) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.tried)
}

// fakeRecorder keeps the request log in a slice and, as the vault does,
// counts each record's tokens in the key's budgets.
type fakeRecorder struct {
	mu   sync.Mutex
	recs []vault.LogRecord
	keys *fakeKeys
}

func (f *fakeRecorder) LogRequestSettling(rec vault.LogRecord, hold *keypolicy.Hold) {
	f.mu.Lock()
	f.recs = append(f.recs, rec)
	f.mu.Unlock()
	if hold != nil {
		hold.Settle(rec.Time, rec.InputTokens+rec.OutputTokens, rec.Estimated)
	} else if f.keys != nil && f.keys.tracker != nil {
		f.keys.tracker.Record(rec.KeyID, rec.Time, rec.InputTokens+rec.OutputTokens)
	}
}

func (f *fakeRecorder) CacheUsage(userID, keyID string, since time.Time) (vault.CacheUsage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var recs []vault.LogRecord
	for _, r := range f.recs {
		if r.UserID == userID && (keyID == "" || r.KeyID == keyID) {
			recs = append(recs, r)
		}
	}
	return vault.SummarizeCache(recs, since, keyID == ""), nil
}

// waitFor returns the records once there are n (or after 2 s, what there
// is): a turn is recorded after its terminal event reached the client.
func (f *fakeRecorder) waitFor(n int) []vault.LogRecord {
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		f.mu.Lock()
		got := len(f.recs)
		f.mu.Unlock()
		if got >= n {
			break
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]vault.LogRecord(nil), f.recs...)
}

func (f *fakeRecorder) last() vault.LogRecord {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.recs) == 0 {
		return vault.LogRecord{}
	}
	return f.recs[len(f.recs)-1]
}

// countingObserver counts refusals and failovers.
type countingObserver struct {
	nopObserver
	mu          sync.Mutex
	refusals    []keypolicy.Reason
	failovers   int
	cacheResets int
	requests    []int
}

func (o *countingObserver) KeyRefused(r keypolicy.Reason) {
	o.mu.Lock()
	o.refusals = append(o.refusals, r)
	o.mu.Unlock()
}

func (o *countingObserver) Failover(conversation bool) {
	o.mu.Lock()
	o.failovers++
	if conversation {
		o.cacheResets++
	}
	o.mu.Unlock()
}

func (o *countingObserver) Request(_ string, status int, _ string) {
	o.mu.Lock()
	o.requests = append(o.requests, status)
	o.mu.Unlock()
}

func (o *countingObserver) Tokens(string, translate.Usage) {}

// usageLimit is the upstream's usage_limit_reached answer.
func usageLimit(retry time.Duration) error {
	return &codex.UpstreamError{RetryAfter: retry, Err: &apierror.Error{Status: http.StatusTooManyRequests,
		Code: codex.CodeUsageLimitReached, Message: "The usage limit has been reached"}}
}

var errVaultDown = errors.New("vault: disk on fire")

// textSSE is a whole upstream turn: "Hello" with usage.
const textSSE = `event: response.created
data: {"type":"response.created","response":{"id":"resp_1","object":"response","status":"in_progress","model":"gpt-5.5","output":[]},"sequence_number":0}

event: response.output_item.added
data: {"type":"response.output_item.added","output_index":0,"item":{"id":"msg_1","type":"message","role":"assistant","status":"in_progress","content":[]},"sequence_number":1}

event: response.output_text.delta
data: {"type":"response.output_text.delta","item_id":"msg_1","output_index":0,"content_index":0,"delta":"Hello","sequence_number":2}

event: response.output_item.done
data: {"type":"response.output_item.done","output_index":0,"item":{"id":"msg_1","type":"message","role":"assistant","status":"completed","content":[{"type":"output_text","text":"Hello","annotations":[]}]},"sequence_number":3}

event: response.completed
data: {"type":"response.completed","response":{"id":"resp_1","object":"response","status":"completed","model":"gpt-5.5","output":[{"id":"msg_1","type":"message","role":"assistant","status":"completed","content":[{"type":"output_text","text":"Hello","annotations":[]}]}],"usage":{"input_tokens":12,"output_tokens":3,"total_tokens":15,"input_tokens_details":{"cached_tokens":4},"output_tokens_details":{"reasoning_tokens":0}}},"sequence_number":4}

`

// partialSSE is the start of a turn: one delta, no terminal event.
const partialSSE = `event: response.created
data: {"type":"response.created","response":{"id":"resp_2","object":"response","status":"in_progress","model":"gpt-5.5","output":[]},"sequence_number":0}

event: response.output_text.delta
data: {"type":"response.output_text.delta","item_id":"msg_1","output_index":0,"content_index":0,"delta":"Once upon a time, far away","sequence_number":1}

`

// fakeResponses keeps stored responses in memory, by user then id.
type fakeResponses struct {
	mu    sync.Mutex
	resps map[string]map[string]vault.StoredResponse
	items map[string]map[string]string // user → item id → response id
}

func (f *fakeResponses) PutResponse(userID string, r vault.StoredResponse, itemIDs []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.resps == nil {
		f.resps, f.items = map[string]map[string]vault.StoredResponse{}, map[string]map[string]string{}
	}
	if f.resps[userID] == nil {
		f.resps[userID], f.items[userID] = map[string]vault.StoredResponse{}, map[string]string{}
	}
	f.resps[userID][r.ID] = r
	for _, id := range itemIDs {
		f.items[userID][id] = r.ID
	}
	return nil
}

func (f *fakeResponses) Response(userID, id string) (vault.StoredResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.resps[userID][id]
	if !ok {
		return vault.StoredResponse{}, vault.ErrNotFound
	}
	return r, nil
}

func (f *fakeResponses) ResponseByItem(userID, itemID string) (vault.StoredResponse, error) {
	f.mu.Lock()
	id, ok := f.items[userID][itemID]
	f.mu.Unlock()
	if !ok {
		return vault.StoredResponse{}, vault.ErrNotFound
	}
	return f.Response(userID, id)
}

func (f *fakeResponses) DeleteResponse(userID, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.resps[userID][id]; !ok {
		return vault.ErrNotFound
	}
	delete(f.resps[userID], id)
	return nil
}

// wait is count once it reaches n, or after a second: writes run after
// the answer.
func (f *fakeResponses) wait(t *testing.T, n int) int {
	t.Helper()
	for deadline := time.Now().Add(time.Second); f.count() < n && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	return f.count()
}

func (f *fakeResponses) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, m := range f.resps {
		n += len(m)
	}
	return n
}

// toolSSE is a turn that reasons and calls a tool: resp_t1 with rs_t1
// (encrypted) and fc_t1 (call_1).
const toolSSE = `event: response.created
data: {"type":"response.created","response":{"id":"resp_t1","object":"response","status":"in_progress","model":"gpt-5.5","output":[]}}

event: response.output_item.done
data: {"type":"response.output_item.done","output_index":0,"item":{"id":"rs_t1","type":"reasoning","summary":[],"encrypted_content":"gAAAA-sealed-reasoning"}}

event: response.output_item.done
data: {"type":"response.output_item.done","output_index":1,"item":{"id":"fc_t1","type":"function_call","status":"completed","call_id":"call_1","name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}

event: response.completed
data: {"type":"response.completed","response":{"id":"resp_t1","object":"response","status":"completed","model":"gpt-5.5","output":[],"usage":{"input_tokens":20,"output_tokens":5,"total_tokens":25}}}

`

// Compact answers a compaction with compactJSON and records the body.
func (f *fakeUpstream) Compact(ctx context.Context, ts codex.TokenSource, body []byte, _ codex.RequestHeaders) (*codex.Stream, error) {
	if _, _, err := ts.AccessToken(ctx, false); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bodies = append(f.bodies, body)
	return &codex.Stream{Body: io.NopCloser(strings.NewReader(compactJSON)), Header: f.hdr.Clone()}, nil
}

const compactJSON = `{"output":[{"type":"message","role":"user","content":[{"type":"input_text","text":"weather in Paris?"}]},{"type":"compaction","id":"cmp_1","encrypted_content":"gAAAA-compacted"}],"usage":{"input_tokens":30,"output_tokens":8,"total_tokens":38}}`
