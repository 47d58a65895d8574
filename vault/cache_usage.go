package vault

import (
	"sort"
	"time"
)

// Prompt-cache visibility (GET /v1/usage, the dashboard): how much of the
// input the upstream served from its prompt cache, read back from the
// request log, so it is the same on every instance of a cluster and
// survives a restart.

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
func (s *CacheStat) add(r LogRecord) {
	if r.InputTokens <= 0 {
		return
	}
	s.Requests++
	s.InputTokens += r.InputTokens
	s.CachedTokens += min(r.CachedTokens, r.InputTokens)
	if r.FailoverFrom != "" {
		s.Resets++
	}
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
// since a point in time.
type CacheUsage struct {
	Since time.Time `json:"since"`
	CacheStat
	// ByDay is oldest first; ByModel and ByKey most input first.
	ByDay   []CacheDay   `json:"by_day"`
	ByModel []CacheModel `json:"by_model"`
	ByKey   []CacheKey   `json:"by_key,omitempty"`
	// Partial is set when the log held more records than one summary
	// reads (maxCacheScan): the figures are of the newest ones.
	Partial bool `json:"partial,omitempty"`
}

// maxCacheScan bounds the records one CacheUsage reads.
const maxCacheScan = 20000

// CacheUsage summarizes the prompt-cache use of userID's requests since
// since, of one key when keyID is not empty, with ByKey filled when it is.
func (v *Vault) CacheUsage(userID, keyID string, since time.Time) (CacheUsage, error) {
	var recs []LogRecord
	before := time.Time{}
	for len(recs) < maxCacheScan {
		page, err := v.RecentRequests(userID, before, maxRecentLimit, StatusAll)
		if err != nil {
			return CacheUsage{}, err
		}
		done := len(page) < maxRecentLimit
		if !done {
			// The next page reads strictly before a time: leave the records
			// of the oldest instant to it, unless they fill the page.
			oldest := page[len(page)-1].Time
			cut := len(page)
			for cut > 0 && page[cut-1].Time.Equal(oldest) {
				cut--
			}
			if cut > 0 {
				page, before = page[:cut], oldest.Add(time.Nanosecond)
			} else {
				before = oldest
			}
		}
		for _, r := range page {
			if r.Time.Before(since) {
				done = true
				break
			}
			if keyID == "" || r.KeyID == keyID {
				recs = append(recs, r)
			}
		}
		if done {
			return SummarizeCache(recs, since, keyID == ""), nil
		}
	}
	u := SummarizeCache(recs, since, keyID == "")
	u.Partial = true
	return u, nil
}

// SummarizeCache is the CacheUsage of recs since since; byKey fills ByKey.
func SummarizeCache(recs []LogRecord, since time.Time, byKey bool) CacheUsage {
	u := CacheUsage{Since: since.UTC(), ByDay: []CacheDay{}, ByModel: []CacheModel{}}
	days, models, keys := map[string]*CacheStat{}, map[string]*CacheStat{}, map[string]*CacheStat{}
	get := func(m map[string]*CacheStat, k string) *CacheStat {
		s := m[k]
		if s == nil {
			s = &CacheStat{}
			m[k] = s
		}
		return s
	}
	for _, r := range recs {
		if r.Time.Before(since) || r.InputTokens <= 0 {
			continue
		}
		u.add(r)
		get(days, r.Time.UTC().Format(time.DateOnly)).add(r)
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
