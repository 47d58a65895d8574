package vault

import (
	"context"
	"sort"
	"time"
)

// Prompt-cache visibility (GET /v1/usage, the dashboard): how much of the
// input the upstream served from its prompt cache, read back from the
// store's per-user, key, model and UTC day roll-up (CacheRow), written
// with the request log, so it is exact, the same on every instance of a
// cluster, survives a restart, and costs the days × keys × models read
// whatever the traffic.

// CacheStat is the prompt-cache use of a set of requests. The zero value
// is no requests.
type CacheStat struct {
	// Requests are the requests with input tokens (the ones a cache can
	// serve).
	Requests int64 `json:"requests"`
	// InputTokens are all their input tokens, cached ones included;
	// CachedTokens those the upstream served from its cache (what the
	// cache saved: they cost less and start faster).
	InputTokens  int64 `json:"input_tokens"`
	CachedTokens int64 `json:"cached_tokens"`
	// HitRate is CachedTokens / InputTokens, 0 without input.
	HitRate float64 `json:"hit_rate"`
	// Resets counts requests that failover moved to another of the user's
	// accounts: a conversation's cache lives with the account that served
	// it, so the new account starts it cold.
	Resets int64 `json:"cache_resets"`
}

// add counts r into s.
func (s *CacheStat) add(r CacheRow) {
	s.Requests += r.Requests
	s.InputTokens += r.InputTokens
	s.CachedTokens += r.CachedTokens
	s.Resets += r.Resets
}

// finish sets HitRate, rounded to four places.
func (s *CacheStat) finish() {
	if s.InputTokens > 0 {
		s.HitRate = float64(int64(float64(s.CachedTokens)/float64(s.InputTokens)*10000+0.5)) / 10000
	}
}

// CacheDay, CacheModel and CacheKey are a CacheStat of one UTC day, model
// (the client's name) or API key.
type CacheDay struct {
	Day string `json:"day"` // 2006-01-02, UTC
	CacheStat
}

// CacheModel is the CacheStat of one model.
type CacheModel struct {
	Model string `json:"model"`
	CacheStat
}

// CacheKey is the CacheStat of one API key.
type CacheKey struct {
	KeyID string `json:"key_id"`
	CacheStat
}

// CacheUsage is the prompt-cache use of a user's (or one key's) requests
// since a UTC day.
type CacheUsage struct {
	// Since is the first UTC day counted (midnight).
	Since time.Time `json:"since"`
	CacheStat
	// ByDay is oldest first; ByModel and ByKey most input first.
	ByDay   []CacheDay   `json:"by_day"`
	ByModel []CacheModel `json:"by_model"`
	ByKey   []CacheKey   `json:"by_key,omitempty"`
	// The figures come from the stores' roll-up (CacheRow), exact whatever
	// the traffic: the "partial" flag earlier versions set when a summary
	// read only the newest 20,000 log records cannot be true any more and
	// is gone (it was omitted whenever false, so a client that reads it
	// sees what it saw for every complete summary).
}

// CacheRow is the prompt-cache roll-up of one user's requests with one
// key and model on one UTC day, as the store keeps it: each engine adds
// every record's CacheDelta to its row in the same transaction as the
// record (LogStore.AppendLogs), fills the rows from the request log in
// the schema step that adds them, drops a day with PurgeLogs once the
// whole day is before the retention cutoff, and a copy (vault/migrate)
// recomputes them from the copied records. The zero value is an empty
// row of no user.
type CacheRow struct {
	UserID, KeyID, Model string
	// Day is the UTC day's midnight.
	Day time.Time
	// Requests, InputTokens, CachedTokens and Resets are CacheStat's.
	Requests, InputTokens, CachedTokens, Resets int64
}

// CacheDelta is what r adds to its CacheRow: one request with its input,
// cached (at most the input) and reset counts; ok is false for a record
// without input tokens, which a cache cannot serve and which adds
// nothing. It does not allocate.
func (r *LogRecord) CacheDelta() (row CacheRow, ok bool) {
	if r.InputTokens <= 0 {
		return CacheRow{}, false
	}
	t := r.Time.UTC()
	row = CacheRow{UserID: r.UserID, KeyID: r.KeyID, Model: r.Model,
		Day:      time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC),
		Requests: 1, InputTokens: r.InputTokens, CachedTokens: min(max(r.CachedTokens, 0), r.InputTokens)}
	if r.FailoverFrom != "" {
		row.Resets = 1
	}
	return row, true
}

// Add adds d's counts to c.
func (c *CacheRow) Add(d CacheRow) {
	c.Requests += d.Requests
	c.InputTokens += d.InputTokens
	c.CachedTokens += d.CachedTokens
	c.Resets += d.Resets
}

// CacheUsage summarizes the prompt-cache use of userID's requests from
// the UTC day of since on, of one key when keyID is not empty, with ByKey
// filled when it is. It reads the store's roll-up: its cost is the
// number of (day, key, model) rows, not of requests.
func (v *Vault) CacheUsage(userID, keyID string, since time.Time) (CacheUsage, error) {
	rows, err := v.store.CacheRollup(context.Background(), userID, keyID, since)
	if err != nil {
		return CacheUsage{}, err
	}
	return SummarizeCacheRows(rows, since, keyID == ""), nil
}

// SummarizeCache is the CacheUsage of recs from the UTC day of since on
// (ByKey filled when byKey), as the roll-up of recs would give it.
func SummarizeCache(recs []LogRecord, since time.Time, byKey bool) CacheUsage {
	rows := make([]CacheRow, 0, len(recs))
	for i := range recs {
		if d, ok := recs[i].CacheDelta(); ok {
			rows = append(rows, d)
		}
	}
	return SummarizeCacheRows(rows, since, byKey)
}

// SummarizeCacheRows is the CacheUsage of roll-up rows from the UTC day
// of since on; byKey fills ByKey.
func SummarizeCacheRows(rows []CacheRow, since time.Time, byKey bool) CacheUsage {
	t := since.UTC()
	from := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	u := CacheUsage{Since: from, ByDay: []CacheDay{}, ByModel: []CacheModel{}}
	days, models, keys := map[string]*CacheStat{}, map[string]*CacheStat{}, map[string]*CacheStat{}
	get := func(m map[string]*CacheStat, k string) *CacheStat {
		s := m[k]
		if s == nil {
			s = &CacheStat{}
			m[k] = s
		}
		return s
	}
	for _, r := range rows {
		if r.Day.Before(from) || r.InputTokens <= 0 {
			continue
		}
		u.add(r)
		get(days, r.Day.UTC().Format(time.DateOnly)).add(r)
		get(models, r.Model).add(r)
		if byKey && r.KeyID != "" {
			get(keys, r.KeyID).add(r)
		}
	}
	u.finish()
	for d, s := range days {
		s.finish()
		u.ByDay = append(u.ByDay, CacheDay{Day: d, CacheStat: *s})
	}
	sort.Slice(u.ByDay, func(i, j int) bool { return u.ByDay[i].Day < u.ByDay[j].Day })
	for m, s := range models {
		s.finish()
		u.ByModel = append(u.ByModel, CacheModel{Model: m, CacheStat: *s})
	}
	sort.Slice(u.ByModel, func(i, j int) bool {
		a, b := u.ByModel[i], u.ByModel[j]
		return a.InputTokens > b.InputTokens || a.InputTokens == b.InputTokens && a.Model < b.Model
	})
	if byKey {
		u.ByKey = []CacheKey{}
		for k, s := range keys {
			s.finish()
			u.ByKey = append(u.ByKey, CacheKey{KeyID: k, CacheStat: *s})
		}
		sort.Slice(u.ByKey, func(i, j int) bool {
			a, b := u.ByKey[i], u.ByKey[j]
			return a.InputTokens > b.InputTokens || a.InputTokens == b.InputTokens && a.KeyID < b.KeyID
		})
	}
	return u
}
