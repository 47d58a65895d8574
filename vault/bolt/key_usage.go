package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/usemysub/caddy-codex-proxy/keypolicy"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// Token usage per key and UTC day (vault.KeyUsageStore), as on
// PostgreSQL: the vault rebuilds a key's day and week budgets from it at
// start, so a restart counts the whole week's tokens whatever the request
// log's retention. bucketKeyUsage maps key id ‖ \x00 ‖ YYYY-MM-DD to the
// tokens (8 bytes, big endian), written in AppendLogs' transaction.

var _ vault.KeyUsageStore = (*Store)(nil)

// keyUsageKeep is how many days of per-key usage are kept: the longest
// budget window (an ISO week) and a day of slack.
const keyUsageKeep = 8 * 24 * time.Hour

func keyUsageKey(keyID string, day time.Time) []byte {
	return []byte(keyID + "\x00" + day.UTC().Format(dayLayout))
}

// addKeyUsage adds the tokens of recs to their keys' days inside tx.
// Records of keys that no longer exist, and records that started before
// their key's reset point, add nothing.
func addKeyUsage(tx *bbolt.Tx, recs []vault.LogRecord) error {
	b, keys := tx.Bucket(bucketKeyUsage), tx.Bucket(bucketKeys)
	resets := map[string]*time.Time{} // nil: no such key
	for _, r := range recs {
		n := r.InputTokens + r.OutputTokens
		if r.KeyID == "" || n <= 0 {
			continue
		}
		reset, seen := resets[r.KeyID]
		if !seen {
			if rec, err := getKeyRecord(keys, r.KeyID); err == nil {
				reset = &rec.UsageReset
			}
			resets[r.KeyID] = reset
		}
		if reset == nil || r.Time.Before(*reset) {
			continue
		}
		if err := addTokens(b, keyUsageKey(r.KeyID, keypolicy.DayStart(r.Time)), n); err != nil {
			return err
		}
	}
	return nil
}

// addTokens adds n to the counter at k.
func addTokens(b *bbolt.Bucket, k []byte, n int64) error {
	var cur int64
	if v := b.Get(k); len(v) == 8 {
		cur = int64(binary.BigEndian.Uint64(v))
	}
	return b.Put(k, binary.BigEndian.AppendUint64(nil, uint64(cur+n)))
}

// clearKeyUsage removes everything kept for one key.
func clearKeyUsage(tx *bbolt.Tx, keyID string) error {
	b := tx.Bucket(bucketKeyUsage)
	prefix := []byte(keyID + "\x00")
	var del [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		del = append(del, bytes.Clone(k))
	}
	for _, k := range del {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// purgeKeyUsage drops the days before cutoff.
func purgeKeyUsage(tx *bbolt.Tx, cutoff time.Time) error {
	b := tx.Bucket(bucketKeyUsage)
	limit := cutoff.UTC().Format(dayLayout)
	var del [][]byte
	_ = b.ForEach(func(k, _ []byte) error {
		if i := bytes.IndexByte(k, 0); i >= 0 && string(k[i+1:]) < limit {
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

// KeyUsage sums the kept usage of the keys ids (nil: all) over the day and
// the week.
func (s *Store) KeyUsage(_ context.Context, ids []string, day, week time.Time) (map[string]keypolicy.Totals, error) {
	out := map[string]keypolicy.Totals{}
	if ids != nil && len(ids) == 0 {
		return out, nil
	}
	dayS, weekS, weekEnd := day.UTC().Format(dayLayout), week.UTC().Format(dayLayout), week.UTC().AddDate(0, 0, 7).Format(dayLayout)
	add := func(k, v []byte) {
		i := bytes.IndexByte(k, 0)
		if i < 0 || len(v) != 8 {
			return
		}
		d, n := string(k[i+1:]), int64(binary.BigEndian.Uint64(v))
		if d < weekS || d >= weekEnd {
			return
		}
		t := out[string(k[:i])]
		t.Week += n
		if d == dayS {
			t.Day += n
		}
		out[string(k[:i])] = t
	}
	err := s.view(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketKeyUsage)
		if ids == nil {
			return b.ForEach(func(k, v []byte) error { add(k, v); return nil })
		}
		c := b.Cursor()
		for _, id := range ids {
			prefix := []byte(id + "\x00")
			for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
				add(k, v)
			}
		}
		return nil
	})
	return out, err
}

// fillKeyUsage is the schema step that creates the bucket, filled from the
// request log's last 8 days after each key's reset point.
func fillKeyUsage(tx *bbolt.Tx) error {
	if _, err := tx.CreateBucketIfNotExists(bucketKeyUsage); err != nil {
		return err
	}
	from := logKey(time.Now().Add(-keyUsageKeep), 0)
	return eachLogChunk(tx, from, func(recs []vault.LogRecord) error { return addKeyUsage(tx, recs) })
}

// eachLogChunk hands fn the request log's records from the key from on
// (nil: the first), purgeChunk at a time, for the schema steps that fill a
// summary from the log; a record that does not decode is skipped.
func eachLogChunk(tx *bbolt.Tx, from []byte, fn func([]vault.LogRecord) error) error {
	recs := make([]vault.LogRecord, 0, purgeChunk)
	c := tx.Bucket(bucketRequests).Cursor()
	for k, data := c.Seek(from); k != nil; k, data = c.Next() {
		var r vault.LogRecord
		if json.Unmarshal(data, &r) == nil {
			recs = append(recs, r)
		}
		if len(recs) == purgeChunk {
			if err := fn(recs); err != nil {
				return err
			}
			recs = recs[:0]
		}
	}
	return fn(recs)
}
