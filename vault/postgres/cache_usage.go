package postgres

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// The prompt-cache roll-up (vault.CacheRow): codex_cache_usage holds a
// row per user, UTC day, key and model, upserted in AppendLogs'
// transaction, so every instance reads the cluster's exact figures.

// cacheUsageSchema is the schema step that adds the table, filled from
// every record the request log holds (the roll-up keeps what the log
// keeps), with the rules of vault.LogRecord.CacheDelta: records without
// input add nothing, cached tokens count at most the input.
const cacheUsageSchema = `
CREATE TABLE IF NOT EXISTS codex_cache_usage (
	user_id       text NOT NULL,
	day           date NOT NULL,
	key_id        text NOT NULL,
	model         text NOT NULL,
	requests      bigint NOT NULL DEFAULT 0,
	input_tokens  bigint NOT NULL DEFAULT 0,
	cached_tokens bigint NOT NULL DEFAULT 0,
	resets        bigint NOT NULL DEFAULT 0,
	PRIMARY KEY (user_id, day, key_id, model)
);
CREATE INDEX IF NOT EXISTS codex_cache_usage_day_idx ON codex_cache_usage (day);
INSERT INTO codex_cache_usage AS u (user_id, day, key_id, model, requests, input_tokens, cached_tokens, resets)
SELECT user_id, (time AT TIME ZONE 'UTC')::date, key_id, model, count(*),
	sum(input_tokens), sum(least(greatest(cached_tokens, 0), input_tokens)), count(*) FILTER (WHERE failover_from <> '')
FROM codex_request_log WHERE input_tokens > 0
GROUP BY 1, 2, 3, 4
ON CONFLICT (user_id, day, key_id, model) DO NOTHING;
`

// addCacheUsage upserts the CacheDelta of each of recs in one statement
// inside AppendLogs' transaction. A batch's deltas are summed first (one
// statement may not update a row twice) and sent in key order, so
// concurrent batches of several instances lock rows in one order and
// cannot deadlock.
func addCacheUsage(ctx context.Context, tx pgx.Tx, recs []vault.LogRecord) error {
	type rowKey struct {
		user, key, model string
		day              time.Time
	}
	var sums map[rowKey]vault.CacheRow
	var order []rowKey
	for i := range recs {
		d, ok := recs[i].CacheDelta()
		if !ok {
			continue
		}
		if sums == nil {
			sums = make(map[rowKey]vault.CacheRow)
		}
		k := rowKey{d.UserID, d.KeyID, d.Model, d.Day}
		sum, seen := sums[k]
		if !seen {
			order = append(order, k)
		}
		sum.Add(d)
		sums[k] = sum
	}
	if len(order) == 0 {
		return nil
	}
	slices.SortFunc(order, func(a, b rowKey) int {
		return cmp.Or(cmp.Compare(a.user, b.user), a.day.Compare(b.day), cmp.Compare(a.key, b.key), cmp.Compare(a.model, b.model))
	})
	n := len(order)
	users, days, keys, models := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	reqs, in, cached, resets := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	for i, k := range order {
		d := sums[k]
		users[i], days[i], keys[i], models[i] = k.user, k.day.Format(time.DateOnly), k.key, k.model
		reqs[i], in[i], cached[i], resets[i] = d.Requests, d.InputTokens, d.CachedTokens, d.Resets
	}
	_, err := tx.Exec(ctx, `INSERT INTO codex_cache_usage AS u
	(user_id, day, key_id, model, requests, input_tokens, cached_tokens, resets)
SELECT * FROM unnest($1::text[], $2::date[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[])
ON CONFLICT (user_id, day, key_id, model) DO UPDATE SET
	requests = u.requests + excluded.requests, input_tokens = u.input_tokens + excluded.input_tokens,
	cached_tokens = u.cached_tokens + excluded.cached_tokens, resets = u.resets + excluded.resets`,
		users, days, keys, models, reqs, in, cached, resets)
	return err
}

// CacheRollup reads the user's rows from the day of from on (the primary
// key's range).
func (s *Store) CacheRollup(ctx context.Context, userID, keyID string, from time.Time) ([]vault.CacheRow, error) {
	sql := `SELECT day, key_id, model, requests, input_tokens, cached_tokens, resets
FROM codex_cache_usage WHERE user_id = $1 AND day >= $2::date`
	args := []any{userID, from.UTC().Format(time.DateOnly)}
	if keyID != "" {
		sql += ` AND key_id = $3`
		args = append(args, keyID)
	}
	return query(s, ctx, "read the prompt-cache roll-up", sql, args, func(r pgx.Row) (vault.CacheRow, error) {
		row := vault.CacheRow{UserID: userID}
		err := r.Scan(&row.Day, &row.KeyID, &row.Model, &row.Requests, &row.InputTokens, &row.CachedTokens, &row.Resets)
		row.Day = time.Date(row.Day.Year(), row.Day.Month(), row.Day.Day(), 0, 0, 0, 0, time.UTC)
		return row, err
	})
}

// purgeCacheUsage drops the rows of the days before before's UTC day:
// days no record of the log is left of.
func purgeCacheUsage(ctx context.Context, conn *pgxpool.Conn, before time.Time) error {
	_, err := conn.Exec(ctx, `DELETE FROM codex_cache_usage WHERE day < $1::date`, before.UTC().Format(time.DateOnly))
	return err
}
