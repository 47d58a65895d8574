package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

var _ vault.AuditStore = (*Store)(nil)

// auditTimeKey is the smallest key of an entry at or after t: ids start
// with t's Unix nanoseconds in 16 hex digits (vault.NewAuditID).
func auditTimeKey(t time.Time) []byte {
	return []byte(fmt.Sprintf("%016x", uint64(max(t.UnixNano(), 0))))
}

// AppendAudit stores one entry under its id.
func (s *Store) AppendAudit(_ context.Context, e vault.AuditEntry) error {
	return s.update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		if b.Get([]byte(e.ID)) != nil {
			return vault.ErrDuplicate
		}
		return putJSON(b, []byte(e.ID), e)
	})
}

// ListAudit walks the bucket backwards from the newest (or from
// q.Before), down to q.Since.
func (s *Store) ListAudit(_ context.Context, q vault.AuditQuery) ([]vault.AuditEntry, error) {
	limit := vault.AuditLimit(q.Limit)
	var out []vault.AuditEntry
	var floor []byte
	if !q.Since.IsZero() {
		floor = auditTimeKey(q.Since)
	}
	err := s.view(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketAudit).Cursor()
		var k, data []byte
		if q.Before != "" {
			// Seek lands on the first key at or after Before: step back
			// from it (or from the end when there is none).
			if k, data = c.Seek([]byte(q.Before)); k == nil {
				k, data = c.Last()
			}
			for k != nil && bytes.Compare(k, []byte(q.Before)) >= 0 {
				k, data = c.Prev()
			}
		} else {
			k, data = c.Last()
		}
		for ; k != nil && len(out) < limit; k, data = c.Prev() {
			if floor != nil && bytes.Compare(k, floor) < 0 {
				break
			}
			var e vault.AuditEntry
			if err := json.Unmarshal(data, &e); err != nil {
				return fmt.Errorf("audit entry %q: %w", k, err)
			}
			if q.Match(e) {
				out = append(out, e)
			}
		}
		return nil
	})
	return out, err
}

// PurgeAudit deletes the entries before the cut from the start of the
// bucket, which holds them oldest first.
func (s *Store) PurgeAudit(_ context.Context, before time.Time) (int, error) {
	n := 0
	cut := auditTimeKey(before)
	err := s.update(func(tx *bbolt.Tx) error {
		n = 0
		c := tx.Bucket(bucketAudit).Cursor()
		for k, _ := c.First(); k != nil && bytes.Compare(k, cut) < 0; k, _ = c.First() {
			if err := c.Delete(); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

// ExportAudit reads every entry.
func (s *Store) ExportAudit(context.Context) ([]vault.AuditEntry, error) {
	var out []vault.AuditEntry
	err := exportBucket(s, bucketAudit, func(_ []byte, e vault.AuditEntry) { out = append(out, e) })
	return out, err
}
