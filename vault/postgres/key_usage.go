package postgres

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/usemysub/caddy-codex-proxy/keypolicy"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// Token usage per key and UTC day (vault.KeyUsageStore), so every
// instance enforces a key's budgets on the cluster's total. AppendLogs
// adds each batch's tokens to codex_key_usage in its own transaction and
// announces the keys it changed; ResetKeyUsage clears a key's rows with
// its reset point. The two lock the key row against each other (a batch
// FOR KEY SHARE, a reset FOR UPDATE, which last-used updates take
// neither of), so a batch reads the reset point that holds when it
// commits: records that started before it are never added after the
// reset cleared the rows.

var _ vault.KeyUsageStore = (*Store)(nil)

// keyUsageSchema is the schema step that adds the table, filled from the
// request log's last 8 days (at least the current ISO week) after each
// key's reset point.
const keyUsageSchema = `
CREATE TABLE codex_key_usage (
	key_id text NOT NULL REFERENCES codex_keys (id) ON DELETE CASCADE,
	day    date NOT NULL,
	tokens bigint NOT NULL,
	PRIMARY KEY (key_id, day)
);
CREATE INDEX codex_key_usage_day_idx ON codex_key_usage (day);
INSERT INTO codex_key_usage (key_id, day, tokens)
SELECT l.key_id, (l.time AT TIME ZONE 'UTC')::date, sum(l.input_tokens + l.output_tokens)
FROM codex_request_log l JOIN codex_keys k ON k.id = l.key_id
WHERE l.time >= now() - interval '8 days' AND l.input_tokens + l.output_tokens > 0
	AND (k.usage_reset IS NULL OR l.time >= k.usage_reset)
GROUP BY 1, 2;
`

// maxNotifyKeys bounds the key ids of one notification: a payload must
// stay under 8000 bytes, and a key id is a 36-character UUID.
const maxNotifyKeys = 150

// addKeyUsage adds the tokens of recs to their keys' days inside
// AppendLogs' transaction and announces the keys. Records of keys that no
// longer exist, and records that started before their key's reset point,
// add nothing.
func addKeyUsage(ctx context.Context, tx pgx.Tx, recs []vault.LogRecord) error {
	var ids []string
	seen := map[string]bool{}
	for _, r := range recs {
		if r.KeyID != "" && r.InputTokens+r.OutputTokens > 0 && !seen[r.KeyID] {
			seen[r.KeyID] = true
			ids = append(ids, r.KeyID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	slices.Sort(ids) // lock in one order: concurrent batches cannot deadlock
	rows, err := tx.Query(ctx, `SELECT id, usage_reset FROM codex_keys WHERE id = ANY($1) ORDER BY id FOR KEY SHARE`, ids)
	if err != nil {
		return err
	}
	resets := map[string]time.Time{}
	var id string
	var reset pgtype.Timestamptz
	if _, err := pgx.ForEachRow(rows, []any{&id, &reset}, func() error {
		resets[id] = fromTS(reset)
		return nil
	}); err != nil {
		return err
	}
	type dayKey struct {
		key string
		day time.Time
	}
	sums := map[dayKey]int64{}
	var order []dayKey
	for _, r := range recs {
		n := r.InputTokens + r.OutputTokens
		reset, ok := resets[r.KeyID]
		if n <= 0 || !ok || r.Time.Before(reset) {
			continue
		}
		k := dayKey{r.KeyID, keypolicy.DayStart(r.Time)}
		if _, seen := sums[k]; !seen {
			order = append(order, k)
		}
		sums[k] += n
	}
	if len(order) == 0 {
		return nil
	}
	keys, days, tokens := make([]string, len(order)), make([]string, len(order)), make([]int64, len(order))
	var changed []string
	clear(seen)
	for i, k := range order {
		keys[i], days[i], tokens[i] = k.key, k.day.Format(time.DateOnly), sums[k]
		if !seen[k.key] {
			seen[k.key] = true
			changed = append(changed, k.key)
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO codex_key_usage AS u (key_id, day, tokens)
SELECT * FROM unnest($1::text[], $2::date[], $3::bigint[])
ON CONFLICT (key_id, day) DO UPDATE SET tokens = u.tokens + excluded.tokens`, keys, days, tokens); err != nil {
		return err
	}
	for chunk := range slices.Chunk(changed, maxNotifyKeys) {
		if err := notify(ctx, tx, changeKeyUsage, "", strings.Join(chunk, ",")); err != nil {
			return err
		}
	}
	return nil
}

// resetKeyUsage sets the user's key's reset point and clears its stored
// usage, inside tx, or fails with vault.ErrNotFound. The row lock comes
// first so that no batch adding to the key's usage is between reading
// the old reset point and committing (see addKeyUsage).
func resetKeyUsage(ctx context.Context, tx pgx.Tx, userID, keyID string, at time.Time) error {
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM codex_keys WHERE id = $1 AND user_id = $2 FOR UPDATE`, keyID, userID).Scan(&one)
	if err != nil {
		return err // no row: vault.ErrNotFound (Store.fail)
	}
	if _, err := tx.Exec(ctx, `UPDATE codex_keys SET usage_reset = $2 WHERE id = $1`, keyID, ts(at)); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM codex_key_usage WHERE key_id = $1`, keyID); err != nil {
		return err
	}
	return notify(ctx, tx, changeKey, userID, keyID)
}

// KeyUsage sums the stored usage of the keys ids (nil: all) over the day
// and the week.
func (s *Store) KeyUsage(ctx context.Context, ids []string, day, week time.Time) (map[string]keypolicy.Totals, error) {
	if ids != nil && len(ids) == 0 {
		return map[string]keypolicy.Totals{}, nil
	}
	sql := `SELECT key_id, coalesce(sum(tokens) FILTER (WHERE day = $1::date), 0)::bigint, sum(tokens)::bigint
FROM codex_key_usage WHERE day >= $2::date AND day < $2::date + 7`
	args := []any{day.UTC().Format(time.DateOnly), week.UTC().Format(time.DateOnly)}
	if ids != nil {
		sql += ` AND key_id = ANY($3)`
		args = append(args, ids)
	}
	sql += ` GROUP BY key_id`
	type row struct {
		id string
		t  keypolicy.Totals
	}
	rows, err := query(s, ctx, "read key usage", sql, args, func(r pgx.Row) (row, error) {
		var x row
		err := r.Scan(&x.id, &x.t.Day, &x.t.Week)
		return x, err
	})
	if err != nil {
		return nil, err
	}
	out := make(map[string]keypolicy.Totals, len(rows))
	for _, x := range rows {
		out[x.id] = x.t
	}
	return out, nil
}

// purgeKeyUsage drops the days no budget window reaches any more: 8 days
// before before, which is no later than now, is before this ISO week.
func purgeKeyUsage(ctx context.Context, conn *pgxpool.Conn, before time.Time) error {
	_, err := conn.Exec(ctx, `DELETE FROM codex_key_usage WHERE day < $1::date`, before.UTC().AddDate(0, 0, -8).Format(time.DateOnly))
	return err
}
