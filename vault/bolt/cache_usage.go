package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// The prompt-cache roll-up (vault.CacheRow). bucketCacheUsage maps
// user id ‖ \x00 ‖ YYYY-MM-DD ‖ \x00 ‖ key id ‖ \x00 ‖ model to requests,
// input tokens, cached tokens and resets (4 × 8 bytes, big endian),
// written in AppendLogs' transaction. User and day first: one user's days
// from a date on are one cursor range. The model comes last, so a model
// name holding \x00 still parses.

// cacheRollupStep names the schema step that adds the roll-up.
const cacheRollupStep = "prompt-cache roll-up per user, key, model and day"

// cacheValueLen is the length of a roll-up value.
const cacheValueLen = 32

// cacheKey is the roll-up key of d.
func cacheKey(d *vault.CacheRow) []byte {
	k := make([]byte, 0, len(d.UserID)+len(dayLayout)+len(d.KeyID)+len(d.Model)+3)
	k = append(k, d.UserID...)
	k = append(k, 0)
	k = d.Day.AppendFormat(k, dayLayout)
	k = append(k, 0)
	k = append(k, d.KeyID...)
	k = append(k, 0)
	return append(k, d.Model...)
}

// addCacheUsage adds the CacheDelta of each of recs to its row inside tx.
// A batch's deltas are summed first, so a row is written once per batch.
func addCacheUsage(tx *bbolt.Tx, recs []vault.LogRecord) error {
	type rowKey struct {
		user, key, model string
		day              time.Time
	}
	var sums map[rowKey]vault.CacheRow
	for i := range recs {
		d, ok := recs[i].CacheDelta()
		if !ok {
			continue
		}
		if sums == nil {
			sums = make(map[rowKey]vault.CacheRow)
		}
		k := rowKey{d.UserID, d.KeyID, d.Model, d.Day}
		sum := sums[k]
		if sum.Requests == 0 {
			sum.UserID, sum.KeyID, sum.Model, sum.Day = d.UserID, d.KeyID, d.Model, d.Day
		}
		sum.Add(d)
		sums[k] = sum
	}
	b := tx.Bucket(bucketCacheUsage)
	for _, d := range sums {
		k := cacheKey(&d)
		cur := decodeCache(b.Get(k))
		cur.Add(d)
		if err := b.Put(k, encodeCache(cur)); err != nil {
			return err
		}
	}
	return nil
}

// encodeCache is a roll-up value.
func encodeCache(c vault.CacheRow) []byte {
	v := make([]byte, 0, cacheValueLen)
	for _, n := range []int64{c.Requests, c.InputTokens, c.CachedTokens, c.Resets} {
		v = binary.BigEndian.AppendUint64(v, uint64(n))
	}
	return v
}

// decodeCache reads a roll-up value; anything else counts zero.
func decodeCache(v []byte) vault.CacheRow {
	if len(v) != cacheValueLen {
		return vault.CacheRow{}
	}
	n := func(i int) int64 { return int64(binary.BigEndian.Uint64(v[8*i:])) }
	return vault.CacheRow{Requests: n(0), InputTokens: n(1), CachedTokens: n(2), Resets: n(3)}
}

// CacheRollup walks the user's rows from the day of from on.
func (s *Store) CacheRollup(_ context.Context, userID, keyID string, from time.Time) ([]vault.CacheRow, error) {
	var out []vault.CacheRow
	prefix := append([]byte(userID), 0)
	err := s.view(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketCacheUsage).Cursor()
		start := from.UTC().AppendFormat(bytes.Clone(prefix), dayLayout)
		for k, v := c.Seek(start); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			parts := bytes.SplitN(k[len(prefix):], []byte{0}, 3)
			if len(parts) != 3 || keyID != "" && string(parts[1]) != keyID {
				continue
			}
			day, err := time.Parse(dayLayout, string(parts[0]))
			if err != nil {
				continue
			}
			row := decodeCache(v)
			row.UserID, row.Day, row.KeyID, row.Model = userID, day, string(parts[1]), string(parts[2])
			out = append(out, row)
		}
		return nil
	})
	return out, err
}

// purgeCacheUsage drops the rows of the days before cutoff's UTC day:
// days no record of the log is left of.
func purgeCacheUsage(tx *bbolt.Tx, cutoff time.Time) error {
	b := tx.Bucket(bucketCacheUsage)
	limit := cutoff.UTC().Format(dayLayout)
	var del [][]byte
	_ = b.ForEach(func(k, _ []byte) error {
		parts := bytes.SplitN(k, []byte{0}, 3)
		if len(parts) == 3 && string(parts[1]) < limit {
			del = append(del, bytes.Clone(k))
		}
		return nil
	})
	for _, k := range del {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// fillCacheUsage is the schema step that creates the bucket, filled from
// every record the request log holds (the roll-up keeps what the log
// keeps), so an upgraded vault shows its past days at once.
func fillCacheUsage(tx *bbolt.Tx) error {
	if _, err := tx.CreateBucketIfNotExists(bucketCacheUsage); err != nil {
		return err
	}
	return eachLogChunk(tx, nil, func(recs []vault.LogRecord) error { return addCacheUsage(tx, recs) })
}
