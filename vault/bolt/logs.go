package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// Request-log layout: bucketRequests maps logKey (time ‖ sequence) to the
// JSON record; bucketRequestsByUsr maps user id ‖ \x00 ‖ logKey to nothing,
// so one user's records can be walked newest first; bucketUsage maps
// user id ‖ \x00 ‖ YYYY-MM-DD to DayUsage.

// purgeChunk is how many records one purge transaction deletes.
const purgeChunk = 5000

// appendFillPercent is how full pages of the time-ordered request bucket
// are packed when they split.
const appendFillPercent = 0.95

// dayLayout names a usage day in keys.
const dayLayout = "2006-01-02"

// AppendLogs writes records and roll-up deltas in one transaction.
func (s *Store) AppendLogs(_ context.Context, recs []vault.LogRecord, usage []vault.UsageDelta) error {
	return s.update(func(tx *bbolt.Tx) error {
		reqs := tx.Bucket(bucketRequests)
		idx := tx.Bucket(bucketRequestsByUsr)
		// Keys mostly arrive in order: full pages instead of half-empty
		// splits mean fewer pages to write.
		reqs.FillPercent = appendFillPercent
		// Keys and values must stay valid until the transaction ends: the
		// whole batch is encoded into one buffer, grown ahead, so a record
		// costs no allocation of its own.
		buf := make([]byte, 0, len(recs)*(logRecordSize+2*logKeySize))
		for i := range recs {
			r := &recs[i]
			seq, err := reqs.NextSequence()
			if err != nil {
				return err
			}
			start := len(buf)
			buf = appendLogKey(buf, r.Time, seq)
			key := buf[start:len(buf):len(buf)]
			start = len(buf)
			if buf, err = appendLogRecord(buf, r); err != nil {
				return err
			}
			if err := reqs.Put(key, buf[start:len(buf):len(buf)]); err != nil {
				return err
			}
			start = len(buf)
			buf = append(append(append(buf, r.UserID...), 0), key...)
			if err := idx.Put(buf[start:len(buf):len(buf)], nil); err != nil {
				return err
			}
		}
		if err := addKeyUsage(tx, recs); err != nil {
			return fmt.Errorf("key usage: %w", err)
		}
		b := tx.Bucket(bucketUsage)
		for _, d := range usage {
			k := usageKey(d.UserID, d.Day)
			var sum vault.DayUsage
			if _, err := getJSON(b, k, &sum); err != nil {
				return fmt.Errorf("usage record: %w", err)
			}
			sum.Day = dayOf(string(k))
			sum.Add(d.DayUsage)
			if err := putJSON(b, k, sum); err != nil {
				return err
			}
		}
		return nil
	})
}

// RecentLogs walks the time-ordered bucket (or the user's index) backwards.
func (s *Store) RecentLogs(_ context.Context, q vault.LogQuery) ([]vault.LogRecord, error) {
	var out []vault.LogRecord
	err := s.view(func(tx *bbolt.Tx) error {
		reqs := tx.Bucket(bucketRequests)
		take := func(data []byte) error {
			var r vault.LogRecord
			if err := json.Unmarshal(data, &r); err != nil {
				return fmt.Errorf("vault: request log record: %w", err)
			}
			if q.Filter.Match(r) {
				out = append(out, r)
			}
			return nil
		}
		if q.UserID == "" {
			c := reqs.Cursor()
			k, data := seekBefore(c, nil, q.Before)
			for ; k != nil && len(out) < q.Limit; k, data = c.Prev() {
				if err := take(data); err != nil {
					return err
				}
			}
			return nil
		}
		prefix := userLogKey(q.UserID, nil)
		c := tx.Bucket(bucketRequestsByUsr).Cursor()
		k, _ := seekBefore(c, prefix, q.Before)
		for ; k != nil && bytes.HasPrefix(k, prefix) && len(out) < q.Limit; k, _ = c.Prev() {
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
func seekBefore(c *bbolt.Cursor, prefix []byte, before time.Time) ([]byte, []byte) {
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

// Usage reads roll-ups; for everyone it scans all users' days.
func (s *Store) Usage(_ context.Context, userID string, from, to time.Time) ([]vault.DayUsage, error) {
	lo, hi := from.UTC().Format(dayLayout), to.UTC().Format(dayLayout)
	days := map[string]*vault.DayUsage{}
	err := s.view(func(tx *bbolt.Tx) error {
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
			var d vault.DayUsage
			if err := json.Unmarshal(data, &d); err != nil {
				return fmt.Errorf("vault: usage record: %w", err)
			}
			if sum := days[day]; sum != nil {
				sum.Add(d)
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
	out := make([]vault.DayUsage, 0, len(days))
	for _, d := range days {
		out = append(out, *d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Day.Before(out[j].Day) })
	return out, nil
}

// PurgeLogs deletes old records in chunks so no single transaction grows
// large.
func (s *Store) PurgeLogs(_ context.Context, before time.Time) (int, error) {
	cutoff := logKey(before, 0)
	total := 0
	for {
		n := 0
		err := s.update(func(tx *bbolt.Tx) error {
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
		if err != nil {
			return total, err
		}
		if n < purgeChunk {
			// The per-key usage outlives the log when the retention is
			// short: it keeps the week the budgets need, and no more.
			return total, s.update(func(tx *bbolt.Tx) error {
				return purgeKeyUsage(tx, time.Now().Add(-keyUsageKeep))
			})
		}
	}
}

// logKey orders records by time: big-endian unix nanoseconds, then a
// sequence number that keeps equal times apart.
func logKey(t time.Time, seq uint64) []byte {
	return appendLogKey(make([]byte, 0, logKeySize), t, seq)
}

// logKeySize is the length of a log key; logRecordSize about that of an
// encoded record with the usual ids, for sizing AppendLogs' buffer.
const (
	logKeySize    = 16
	logRecordSize = 320
)

// appendLogKey appends logKey(t, seq).
func appendLogKey(dst []byte, t time.Time, seq uint64) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(max(t.UnixNano(), 0)))
	return binary.BigEndian.AppendUint64(dst, seq)
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
