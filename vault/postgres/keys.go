package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// keyColumns are read by scanKey, in order.
const keyColumns = `id, user_id, hash, prefix, label, created, last_used, disabled`

// scanKey reads keyColumns.
func scanKey(r pgx.Row) (vault.KeyRecord, error) {
	var k vault.KeyRecord
	var created, lastUsed pgtype.Timestamptz
	err := r.Scan(&k.ID, &k.UserID, &k.Hash, &k.Prefix, &k.Label, &created, &lastUsed, &k.Disabled)
	k.Created, k.LastUsed = fromTS(created), fromTS(lastUsed)
	return k, err
}

// CreateKey stores a new key; the foreign key turns an unknown user into
// vault.ErrNotFound, the unique hash and id into vault.ErrDuplicate.
func (s *Store) CreateKey(ctx context.Context, rec vault.KeyRecord) error {
	return s.tx(ctx, "create key", func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO codex_keys (`+keyColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			rec.ID, rec.UserID, rec.Hash, rec.Prefix, rec.Label, ts(rec.Created), ts(rec.LastUsed), rec.Disabled); err != nil {
			return err
		}
		return notify(ctx, tx, changeKey, rec.UserID, rec.ID)
	})
}

// GetKey reads one key.
func (s *Store) GetKey(ctx context.Context, id string) (vault.KeyRecord, error) {
	return queryOne(s, ctx, "get key", `SELECT `+keyColumns+` FROM codex_keys WHERE id = $1`, []any{id}, scanKey)
}

// ListKeys reads a user's keys.
func (s *Store) ListKeys(ctx context.Context, userID string) ([]vault.KeyRecord, error) {
	return query(s, ctx, "list keys", `SELECT `+keyColumns+` FROM codex_keys WHERE user_id = $1`, []any{userID}, scanKey)
}

// ListAllKeys reads every key.
func (s *Store) ListAllKeys(ctx context.Context) ([]vault.KeyRecord, error) {
	return query(s, ctx, "list keys", `SELECT `+keyColumns+` FROM codex_keys`, nil, scanKey)
}

// RevokeKey disables the user's key and moves its last use forward.
func (s *Store) RevokeKey(ctx context.Context, userID, keyID string, lastUsed time.Time) error {
	return s.tx(ctx, "revoke key", func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE codex_keys SET disabled = true,
	last_used = CASE WHEN $3::timestamptz > last_used OR last_used IS NULL THEN $3::timestamptz ELSE last_used END
WHERE id = $1 AND user_id = $2`, keyID, userID, ts(lastUsed))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return vault.ErrNotFound
		}
		return notify(ctx, tx, changeKey, userID, keyID)
	})
}

// TouchKeys moves last-used times forward in one statement; unknown ids
// match no row.
func (s *Store) TouchKeys(ctx context.Context, uses map[string]time.Time) error {
	if len(uses) == 0 {
		return nil
	}
	ids := make([]string, 0, len(uses))
	times := make([]time.Time, 0, len(uses))
	for id, t := range uses {
		if t.IsZero() {
			continue
		}
		ids = append(ids, id)
		times = append(times, t.UTC())
	}
	_, err := s.exec(ctx, "touch keys", `UPDATE codex_keys AS k SET last_used = u.t
FROM unnest($1::text[], $2::timestamptz[]) AS u(id, t)
WHERE k.id = u.id AND (k.last_used IS NULL OR k.last_used < u.t)`, ids, times)
	return err
}
