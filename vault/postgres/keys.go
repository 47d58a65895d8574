package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/usemysub/caddy-codex-proxy/keypolicy"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// keyColumns are read by scanKey, in order.
const keyColumns = `id, user_id, hash, prefix, label, created, last_used, disabled, policy, usage_reset`

// scanKey reads keyColumns.
func scanKey(r pgx.Row) (vault.KeyRecord, error) {
	var k vault.KeyRecord
	var created, lastUsed, reset pgtype.Timestamptz
	var policy []byte
	err := r.Scan(&k.ID, &k.UserID, &k.Hash, &k.Prefix, &k.Label, &created, &lastUsed, &k.Disabled, &policy, &reset)
	k.Created, k.LastUsed, k.UsageReset = fromTS(created), fromTS(lastUsed), fromTS(reset)
	if err == nil && len(policy) > 0 {
		if jerr := json.Unmarshal(policy, &k.Policy); jerr != nil {
			return k, fmt.Errorf("key %s: policy: %w", k.ID, jerr)
		}
	}
	return k, err
}

// policyJSON is a policy for the jsonb column: NULL when it limits
// nothing.
func policyJSON(p keypolicy.Policy) (any, error) {
	b, err := json.Marshal(p)
	if err != nil || string(b) == "{}" {
		return nil, err
	}
	return b, nil
}

// CreateKey stores a new key; the foreign key turns an unknown user into
// vault.ErrNotFound, the unique hash and id into vault.ErrDuplicate.
func (s *Store) CreateKey(ctx context.Context, rec vault.KeyRecord) error {
	return s.tx(ctx, "create key", func(ctx context.Context, tx pgx.Tx) error {
		policy, err := policyJSON(rec.Policy)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO codex_keys (`+keyColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			rec.ID, rec.UserID, rec.Hash, rec.Prefix, rec.Label, ts(rec.Created), ts(rec.LastUsed), rec.Disabled, policy, ts(rec.UsageReset)); err != nil {
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

// UpdateKeyPolicy replaces the policy of the user's key.
func (s *Store) UpdateKeyPolicy(ctx context.Context, userID, keyID string, p keypolicy.Policy) error {
	policy, err := policyJSON(p)
	if err != nil {
		return err
	}
	return s.updateUserKey(ctx, "update key policy", userID, keyID, `policy = $3`, policy)
}

// ResetKeyUsage sets the usage reset point of the user's key and clears
// its stored token usage (key_usage.go).
func (s *Store) ResetKeyUsage(ctx context.Context, userID, keyID string, at time.Time) error {
	return s.tx(ctx, "reset key usage", func(ctx context.Context, tx pgx.Tx) error {
		return resetKeyUsage(ctx, tx, userID, keyID, at)
	})
}

// updateUserKey sets one column of the user's key and announces the
// change, or fails with vault.ErrNotFound.
func (s *Store) updateUserKey(ctx context.Context, what, userID, keyID, set string, value any) error {
	return s.tx(ctx, what, func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE codex_keys SET `+set+` WHERE id = $1 AND user_id = $2`, keyID, userID, value)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return vault.ErrNotFound
		}
		return notify(ctx, tx, changeKey, userID, keyID)
	})
}
