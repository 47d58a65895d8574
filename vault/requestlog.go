package vault

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// LogRecord is one proxied request.
type LogRecord struct {
	Time            time.Time     `json:"time"`
	UserID          string        `json:"user_id,omitempty"`
	KeyID           string        `json:"key_id,omitempty"`
	RequestID       string        `json:"request_id,omitempty"`
	Route           string        `json:"route,omitempty"`
	Model           string        `json:"model,omitempty"`
	Effort          string        `json:"effort,omitempty"`
	ServiceTier     string        `json:"service_tier,omitempty"`
	Status          int           `json:"status"`
	Duration        time.Duration `json:"duration"`
	TTFB            time.Duration `json:"ttfb,omitempty"` // time to first byte
	InputTokens     int64         `json:"input_tokens,omitempty"`
	OutputTokens    int64         `json:"output_tokens,omitempty"`
	CachedTokens    int64         `json:"cached_tokens,omitempty"`
	ReasoningTokens int64         `json:"reasoning_tokens,omitempty"`
	ErrorCode       string        `json:"error_code,omitempty"`
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

// merge adds o's counts into d.
func (d *DayUsage) merge(o DayUsage) {
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

// match reports whether r passes the filter.
func (f StatusFilter) match(r LogRecord) bool {
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
	purgeChunk         = 5000 // records deleted per transaction
)

// appendFillPercent is how full pages of the time-ordered request bucket
// are packed when they split.
const appendFillPercent = 0.95

// dayLayout names a usage day in keys.
const dayLayout = "2006-01-02"

// LogRequest queues a record for the background writer and returns at once.
// When the queue is full, or the vault is closed, the record is dropped
// and counted (see DroppedLogs). A zero Time means now.
func (v *Vault) LogRequest(rec LogRecord) {
	if rec.Time.IsZero() {
		rec.Time = v.now()
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

// DroppedLogs is how many request-log records were lost because the writer
// fell behind, the vault was closed or a commit failed.
func (v *Vault) DroppedLogs() uint64 { return v.drops.Load() }

// writeLogBatch commits records and their usage roll-ups in one transaction
// and returns the emptied batch.
func (v *Vault) writeLogBatch(batch []LogRecord) []LogRecord {
	if len(batch) == 0 {
		return batch
	}
	err := v.update(func(tx *bolt.Tx) error {
		reqs := tx.Bucket(bucketRequests)
		idx := tx.Bucket(bucketRequestsByUsr)
		// Keys mostly arrive in order: full pages instead of half-empty
		// splits mean fewer pages to write.
		reqs.FillPercent = appendFillPercent
		roll := map[string]*DayUsage{}
		for _, r := range batch {
			seq, err := reqs.NextSequence()
			if err != nil {
				return err
			}
			key := logKey(r.Time, seq)
			data, err := json.Marshal(r)
			if err != nil {
				return err
			}
			if err := reqs.Put(key, data); err != nil {
				return err
			}
			if err := idx.Put(userLogKey(r.UserID, key), nil); err != nil {
				return err
			}
			uk := string(usageKey(r.UserID, r.Time))
			d := roll[uk]
			if d == nil {
				d = &DayUsage{}
				roll[uk] = d
			}
			d.add(r)
		}
		usage := tx.Bucket(bucketUsage)
		for k, d := range roll {
			var sum DayUsage
			if data := usage.Get([]byte(k)); data != nil {
				if err := json.Unmarshal(data, &sum); err != nil {
					return fmt.Errorf("usage record: %w", err)
				}
			}
			sum.Day = dayOf(k)
			sum.merge(*d)
			if err := putJSON(usage, []byte(k), sum); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		v.drops.Add(uint64(len(batch)))
		v.logf("vault: writing request logs failed", "records", len(batch), "error", err)
	}
	clear(batch)
	return batch[:0]
}

// RecentRequests returns up to limit records older than before (zero: now),
// newest first, for one user or, with an empty userID, for everyone.
func (v *Vault) RecentRequests(userID string, before time.Time, limit int, filter StatusFilter) ([]LogRecord, error) {
	if limit <= 0 {
		limit = defaultRecentLimit
	}
	limit = min(limit, maxRecentLimit)
	var out []LogRecord
	err := v.view(func(tx *bolt.Tx) error {
		reqs := tx.Bucket(bucketRequests)
		take := func(data []byte) error {
			var r LogRecord
			if err := json.Unmarshal(data, &r); err != nil {
				return fmt.Errorf("vault: request log record: %w", err)
			}
			if filter.match(r) {
				out = append(out, r)
			}
			return nil
		}
		if userID == "" {
			c := reqs.Cursor()
			k, data := seekBefore(c, nil, before)
			for ; k != nil && len(out) < limit; k, data = c.Prev() {
				if err := take(data); err != nil {
					return err
				}
			}
			return nil
		}
		prefix := userLogKey(userID, nil)
		c := tx.Bucket(bucketRequestsByUsr).Cursor()
		k, _ := seekBefore(c, prefix, before)
		for ; k != nil && bytes.HasPrefix(k, prefix) && len(out) < limit; k, _ = c.Prev() {
			if data := reqs.Get(k[len(prefix):]); data != nil {
				if err := take(data); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return out, err
}

// seekBefore positions c on the last key under prefix that sorts before
// the time before (zero: the last key under prefix).
func seekBefore(c *bolt.Cursor, prefix []byte, before time.Time) ([]byte, []byte) {
	var bound []byte
	switch {
	case !before.IsZero():
		bound = append(bytes.Clone(prefix), logKey(before, 0)...)
	case len(prefix) > 0:
		// Prefixes end in \x00; ending in \x01 instead bounds all keys under it.
		bound = append(bytes.Clone(prefix[:len(prefix)-1]), 1)
	default:
		bound = []byte{0xff}
	}
	k, _ := c.Seek(bound)
	if k == nil {
		return c.Last()
	}
	return c.Prev()
}

// Usage returns per-day totals from the day of from to the day of to
// (UTC, inclusive), oldest first, omitting days without requests. An empty
// userID sums over all users.
func (v *Vault) Usage(userID string, from, to time.Time) ([]DayUsage, error) {
	lo, hi := from.UTC().Format(dayLayout), to.UTC().Format(dayLayout)
	days := map[string]*DayUsage{}
	err := v.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketUsage).Cursor()
		var k, data []byte
		if userID == "" {
			k, data = c.First()
		} else {
			k, data = c.Seek(usageKey(userID, from))
		}
		for ; k != nil; k, data = c.Next() {
			sep := bytes.IndexByte(k, 0)
			if sep < 0 {
				continue
			}
			if userID != "" && string(k[:sep]) != userID {
				break
			}
			day := string(k[sep+1:])
			if day < lo || day > hi {
				if userID != "" && day > hi {
					break
				}
				continue
			}
			var d DayUsage
			if err := json.Unmarshal(data, &d); err != nil {
				return fmt.Errorf("vault: usage record: %w", err)
			}
			if sum := days[day]; sum != nil {
				sum.merge(d)
			} else {
				d.Day = dayOf(string(k))
				days[day] = &d
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]DayUsage, 0, len(days))
	for _, d := range days {
		out = append(out, *d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Day.Before(out[j].Day) })
	return out, nil
}

// purgeLogs deletes request records older than the retention, in chunks
// so no single transaction grows large.
func (v *Vault) purgeLogs() (int, error) {
	cutoff := logKey(v.now().Add(-v.logRetention()), 0)
	total := 0
	for {
		n := 0
		err := v.update(func(tx *bolt.Tx) error {
			reqs := tx.Bucket(bucketRequests)
			idx := tx.Bucket(bucketRequestsByUsr)
			var keys, users [][]byte
			c := reqs.Cursor()
			for k, data := c.First(); k != nil && bytes.Compare(k, cutoff) < 0 && len(keys) < purgeChunk; k, data = c.Next() {
				var r struct {
					UserID string `json:"user_id"`
				}
				_ = json.Unmarshal(data, &r) // a broken record is still purged
				keys = append(keys, bytes.Clone(k))
				users = append(users, []byte(r.UserID))
			}
			for i, k := range keys {
				if err := reqs.Delete(k); err != nil {
					return err
				}
				if err := idx.Delete(userLogKey(string(users[i]), k)); err != nil {
					return err
				}
			}
			n = len(keys)
			return nil
		})
		total += n
		if err != nil || n < purgeChunk {
			return total, err
		}
	}
}

// logKey orders records by time: big-endian unix nanoseconds, then a
// sequence number that keeps equal times apart.
func logKey(t time.Time, seq uint64) []byte {
	k := make([]byte, 16)
	binary.BigEndian.PutUint64(k, uint64(max(t.UnixNano(), 0)))
	binary.BigEndian.PutUint64(k[8:], seq)
	return k
}

// userLogKey is the requests_by_user key: user id, \x00, log key.
func userLogKey(userID string, key []byte) []byte {
	k := make([]byte, 0, len(userID)+1+len(key))
	k = append(k, userID...)
	k = append(k, 0)
	return append(k, key...)
}

// usageKey is the usage key: user id, \x00, UTC day.
func usageKey(userID string, t time.Time) []byte {
	return []byte(userID + "\x00" + t.UTC().Format(dayLayout))
}

// dayOf parses the day out of a usage key.
func dayOf(key string) time.Time {
	i := strings.IndexByte(key, 0)
	d, _ := time.Parse(dayLayout, key[i+1:])
	return d
}
