package bolt

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	bbolt "go.etcd.io/bbolt"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

var (
	_ vault.Exporter = (*Store)(nil)
	_ vault.Importer = (*Store)(nil)
	_ vault.Backuper = (*Store)(nil)
)

// Count reads each bucket's key count.
func (s *Store) Count(context.Context) (vault.Counts, error) {
	c := vault.Counts{}
	err := s.view(func(tx *bbolt.Tx) error {
		for kind, name := range map[vault.Kind][]byte{
			vault.KindUsers: bucketUsers, vault.KindKeys: bucketKeys, vault.KindTokens: bucketTokens,
			vault.KindSessions: bucketSessions, vault.KindLoginTokens: bucketLoginTokens, vault.KindOAuthSessions: bucketOAuthSessions,
			vault.KindQuotas: bucketQuotas, vault.KindRequestLogs: bucketRequests, vault.KindUsage: bucketUsage,
			vault.KindResponses: bucketResponses, vault.KindSettings: bucketSettings, vault.KindAudit: bucketAudit,
		} {
			c[kind] = tx.Bucket(name).Stats().KeyN
		}
		return nil
	})
	return c, err
}

// ExportSessions reads the sessions bucket.
func (s *Store) ExportSessions(context.Context) ([]vault.SessionEntry, error) {
	var out []vault.SessionEntry
	err := exportBucket(s, bucketSessions, func(k []byte, rec vault.SessionRecord) {
		out = append(out, vault.SessionEntry{Key: k, SessionRecord: rec})
	})
	return out, err
}

// ExportLoginTokens reads the login tokens bucket.
func (s *Store) ExportLoginTokens(context.Context) ([]vault.LoginEntry, error) {
	var out []vault.LoginEntry
	err := exportBucket(s, bucketLoginTokens, func(k []byte, rec vault.LoginRecord) {
		out = append(out, vault.LoginEntry{Key: k, LoginRecord: rec})
	})
	return out, err
}

// ExportOAuthSessions reads the OAuth sessions bucket.
func (s *Store) ExportOAuthSessions(context.Context) ([]vault.OAuthEntry, error) {
	var out []vault.OAuthEntry
	err := exportBucket(s, bucketOAuthSessions, func(k []byte, rec vault.OAuthRecord) {
		out = append(out, vault.OAuthEntry{Key: k, OAuthRecord: rec})
	})
	return out, err
}

// exportBucket decodes every JSON record of a bucket, keys copied out of
// the transaction.
func exportBucket[T any](s *Store, name []byte, add func(key []byte, rec T)) error {
	return s.view(func(tx *bbolt.Tx) error {
		return tx.Bucket(name).ForEach(func(k, data []byte) error {
			var rec T
			if err := json.Unmarshal(data, &rec); err != nil {
				return fmt.Errorf("vault: %s record: %w", name, err)
			}
			add(bytes.Clone(k), rec)
			return nil
		})
	})
}

// ExportLogs walks the time-ordered requests bucket forwards; a position
// is the hex of the last key returned.
func (s *Store) ExportLogs(_ context.Context, after string, limit int) ([]vault.LogRecord, string, error) {
	start, err := hex.DecodeString(after)
	if err != nil {
		return nil, "", fmt.Errorf("vault: bad request-log position %q", after)
	}
	var out []vault.LogRecord
	next := after
	err = s.view(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketRequests).Cursor()
		k, data := c.First()
		if len(start) > 0 {
			if k, data = c.Seek(start); k != nil && bytes.Equal(k, start) {
				k, data = c.Next()
			}
		}
		for ; k != nil && len(out) < limit; k, data = c.Next() {
			var r vault.LogRecord
			if err := json.Unmarshal(data, &r); err != nil {
				return fmt.Errorf("vault: request log record: %w", err)
			}
			out = append(out, r)
			next = hex.EncodeToString(k)
		}
		return nil
	})
	return out, next, err
}

// ExportUsage reads the usage bucket.
func (s *Store) ExportUsage(context.Context) ([]vault.UsageDelta, error) {
	var out []vault.UsageDelta
	err := s.view(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketUsage).ForEach(func(k, data []byte) error {
			var d vault.DayUsage
			if err := json.Unmarshal(data, &d); err != nil {
				return fmt.Errorf("vault: usage record: %w", err)
			}
			user, _, _ := strings.Cut(string(k), "\x00")
			d.Day = dayOf(string(k))
			out = append(out, vault.UsageDelta{UserID: user, DayUsage: d})
			return nil
		})
	})
	return out, err
}

// DeleteAll drops and recreates every record bucket in one transaction;
// the schema version in meta stays.
func (s *Store) DeleteAll(context.Context) error {
	return s.update(func(tx *bbolt.Tx) error {
		var names [][]byte
		err := tx.ForEach(func(name []byte, _ *bbolt.Bucket) error {
			if !bytes.Equal(name, bucketMeta) {
				names = append(names, bytes.Clone(name))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, name := range names {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		return nil
	})
}

// Backup writes the file as one read transaction sees it: a consistent
// copy while writers carry on.
func (s *Store) Backup(w io.Writer) (int64, error) {
	var n int64
	err := s.view(func(tx *bbolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}
