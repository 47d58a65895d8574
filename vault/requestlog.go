package vault

import (
	"context"
	"time"

	"github.com/usemysub/caddy-codex-proxy/keypolicy"
)

// LogRecord is one proxied request.
type LogRecord struct {
	Time      time.Time `json:"time"`
	UserID    string    `json:"user_id,omitempty"`
	KeyID     string    `json:"key_id,omitempty"`
	RequestID string    `json:"request_id,omitempty"`
	Route     string    `json:"route,omitempty"`
	Model     string    `json:"model,omitempty"`
	Effort    string    `json:"effort,omitempty"`
	// ServiceTier is the tier sent upstream ("priority", the Fast tier, or
	// "" for the account's default); RequestedTier the one the client
	// asked for, lower case ("fast", "auto" …; "" when it named none).
	// They differ when a key's policy or a model's default tier decided.
	ServiceTier     string        `json:"service_tier,omitempty"`
	RequestedTier   string        `json:"requested_tier,omitempty"`
	Status          int           `json:"status"`
	Duration        time.Duration `json:"duration"`
	TTFB            time.Duration `json:"ttfb,omitempty"` // time to first byte
	InputTokens     int64         `json:"input_tokens,omitempty"`
	OutputTokens    int64         `json:"output_tokens,omitempty"`
	CachedTokens    int64         `json:"cached_tokens,omitempty"`
	ReasoningTokens int64         `json:"reasoning_tokens,omitempty"`
	ErrorCode       string        `json:"error_code,omitempty"`
	// AccountID is the linked account (Account.ID) that served the
	// request; FailoverFrom lists, comma-separated, the accounts tried
	// before it that were at their usage limit.
	AccountID    string `json:"account_id,omitempty"`
	FailoverFrom string `json:"failover_from,omitempty"`
	// Estimated marks token counts the proxy estimated because the
	// generation ended without the upstream's usage (the client went away,
	// the stream was cut): the request as sent upstream and the output
	// relayed so far, at translate.EstimateTokens.
	Estimated bool `json:"estimated,omitempty"`
}

// failed reports whether the request counts as an error.
func (r LogRecord) failed() bool { return r.Status >= 400 || r.ErrorCode != "" }

// DayUsage is one user's (or everyone's) totals for one UTC day.
type DayUsage struct {
	Day             time.Time `json:"day"` // midnight UTC
	Requests        int64     `json:"requests"`
	Errors          int64     `json:"errors"`
	InputTokens     int64     `json:"input_tokens"`
	OutputTokens    int64     `json:"output_tokens"`
	CachedTokens    int64     `json:"cached_tokens"`
	ReasoningTokens int64     `json:"reasoning_tokens"`
}

// add counts r into d.
func (d *DayUsage) add(r LogRecord) {
	d.Requests++
	if r.failed() {
		d.Errors++
	}
	d.InputTokens += r.InputTokens
	d.OutputTokens += r.OutputTokens
	d.CachedTokens += r.CachedTokens
	d.ReasoningTokens += r.ReasoningTokens
}

// Add adds o's counts into d: an engine sums stored roll-ups with it.
func (d *DayUsage) Add(o DayUsage) {
	d.Requests += o.Requests
	d.Errors += o.Errors
	d.InputTokens += o.InputTokens
	d.OutputTokens += o.OutputTokens
	d.CachedTokens += o.CachedTokens
	d.ReasoningTokens += o.ReasoningTokens
}

// StatusFilter selects records in RecentRequests.
type StatusFilter int

// Status filters.
const (
	StatusAll     StatusFilter = iota // every record
	StatusSuccess                     // status below 400 and no error code
	StatusFailed                      // status 400 or above, or an error code
)

// Match reports whether r passes the filter.
func (f StatusFilter) Match(r LogRecord) bool {
	switch f {
	case StatusSuccess:
		return !r.failed()
	case StatusFailed:
		return r.failed()
	}
	return true
}

// Query limits for RecentRequests.
const (
	defaultRecentLimit = 50
	maxRecentLimit     = 1000
)

// LogRequest queues a record for the background writer and returns at once.
// When the queue is full, or the vault is closed, the record is dropped
// and counted (see DroppedLogs). A zero Time means now.
func (v *Vault) LogRequest(rec LogRecord) { v.LogRequestSettling(rec, nil) }

// LogRequestSettling is LogRequest for a request admitted with
// AdmitKeyHold: its tokens are counted and its hold released in one step
// (keypolicy.Hold.Settle). A nil hold is LogRequest.
func (v *Vault) LogRequestSettling(rec LogRecord, hold *keypolicy.Hold) {
	if rec.Time.IsZero() {
		rec.Time = v.now()
	}
	// The key's budgets count the request now, in memory; the record is
	// what rebuilds them after a restart.
	if hold != nil {
		hold.Settle(rec.Time, rec.InputTokens+rec.OutputTokens, rec.Estimated)
	} else {
		v.usage.RecordUsage(rec.KeyID, rec.Time, rec.InputTokens+rec.OutputTokens, rec.Estimated)
	}
	v.life.RLock()
	defer v.life.RUnlock()
	if v.closed {
		v.drops.Add(1)
		return
	}
	select {
	case v.logCh <- rec:
	default:
		v.drops.Add(1)
	}
}

// DroppedLogs is how many request-log records were lost: the writer fell
// behind, the vault was closed, a commit failed for good, or the database
// stayed unreachable for longer than the buffer could hold. It only grows
// over the vault's life, so it can back a Prometheus counter.
func (v *Vault) DroppedLogs() uint64 { return v.drops.Load() }

// dropWarnEvery bounds the dropped-records warning to one per interval:
// under overload records drop by the thousand, and one line per drop would
// make things worse.
const dropWarnEvery = time.Minute

// warnDrops logs, at most once per dropWarnEvery, how many records were
// dropped since the last warning. Only the background goroutine calls it.
func (v *Vault) warnDrops() {
	n := v.drops.Load()
	if n == v.dropsWarned {
		return
	}
	now := v.now()
	if !v.dropsWarnedAt.IsZero() && now.Sub(v.dropsWarnedAt) < dropWarnEvery {
		return
	}
	v.logWarn("vault: request-log records were dropped (the writer fell behind, a commit failed, or the database was unreachable for longer than the buffer holds); usage figures undercount",
		"dropped", n-v.dropsWarned, "dropped_total", n)
	v.dropsWarned, v.dropsWarnedAt = n, now
}

// writeLogBatch commits records and their usage roll-ups in one
// transaction. It leaves batch as it was: the caller decides whether a
// failed batch is kept for a retry or dropped (requestlog_retry.go).
func (v *Vault) writeLogBatch(batch []LogRecord) error {
	if len(batch) == 0 {
		return nil
	}
	// Roll the batch up per user and day here, so a store only adds.
	type dayKey struct {
		user string
		day  time.Time
	}
	roll := map[dayKey]*DayUsage{}
	for _, r := range batch {
		t := r.Time.UTC()
		k := dayKey{r.UserID, time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)}
		d := roll[k]
		if d == nil {
			d = &DayUsage{Day: k.day}
			roll[k] = d
		}
		d.add(r)
	}
	usage := make([]UsageDelta, 0, len(roll))
	for k, d := range roll {
		usage = append(usage, UsageDelta{UserID: k.user, DayUsage: *d})
	}
	return v.appendLogs(context.Background(), batch, usage)
}

// RecentRequests returns up to limit records older than before (zero: now),
// newest first, for one user or, with an empty userID, for everyone.
func (v *Vault) RecentRequests(userID string, before time.Time, limit int, filter StatusFilter) ([]LogRecord, error) {
	if limit <= 0 {
		limit = defaultRecentLimit
	}
	limit = min(limit, maxRecentLimit)
	return v.store.RecentLogs(context.Background(), LogQuery{UserID: userID, Before: before, Limit: limit, Filter: filter})
}

// Usage returns per-day totals from the day of from to the day of to
// (UTC, inclusive), oldest first, omitting days without requests. An empty
// userID sums over all users.
func (v *Vault) Usage(userID string, from, to time.Time) ([]DayUsage, error) {
	return v.store.Usage(context.Background(), userID, from, to)
}

// purgeLogs deletes request records older than the retention.
func (v *Vault) purgeLogs() (int, error) {
	return v.store.PurgeLogs(context.Background(), v.now().Add(-v.logRetention()))
}
