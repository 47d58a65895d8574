package postgres

import (
	"context"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// logColumns are written by AppendLogs and read by scanLog, in order.
var logColumns = []string{"time", "user_id", "key_id", "request_id", "route", "model", "effort", "service_tier", "status",
	"duration_ns", "ttfb_ns", "input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens", "error_code", "account", "failover_from", "estimated",
	"requested_tier"}

// logSelect reads logColumns.
const logSelect = `SELECT time, user_id, key_id, request_id, route, model, effort, service_tier, status,
	duration_ns, ttfb_ns, input_tokens, output_tokens, cached_tokens, reasoning_tokens, error_code, account, failover_from, estimated,
	requested_tier FROM codex_request_log`

// purgeChunk is how many records one purge statement deletes, so no
// transaction holds many row locks for long.
const purgeChunk = 10000

// scanLog reads logColumns.
func scanLog(r pgx.Row) (vault.LogRecord, error) {
	var rec vault.LogRecord
	var dur, ttfb int64
	var status int32
	err := r.Scan(&rec.Time, &rec.UserID, &rec.KeyID, &rec.RequestID, &rec.Route, &rec.Model, &rec.Effort, &rec.ServiceTier, &status,
		&dur, &ttfb, &rec.InputTokens, &rec.OutputTokens, &rec.CachedTokens, &rec.ReasoningTokens, &rec.ErrorCode, &rec.AccountID, &rec.FailoverFrom,
		&rec.Estimated, &rec.RequestedTier)
	rec.Time, rec.Status, rec.Duration, rec.TTFB = rec.Time.UTC(), int(status), time.Duration(dur), time.Duration(ttfb)
	return rec, err
}

// AppendLogs copies the records in (COPY keeps their order, so the
// sequence says which came later) and adds the usage deltas, in one
// transaction.
func (s *Store) AppendLogs(ctx context.Context, recs []vault.LogRecord, usage []vault.UsageDelta) error {
	if len(recs) == 0 && len(usage) == 0 {
		return nil
	}
	return s.tx(ctx, "append request logs", func(ctx context.Context, tx pgx.Tx) error {
		if len(recs) > 0 {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"codex_request_log"}, logColumns, &logRows{recs: recs}); err != nil {
				return err
			}
		}
		if err := addUsage(ctx, tx, usage); err != nil {
			return err
		}
		return addKeyUsage(ctx, tx, recs)
	})
}

// logRows is the pgx.CopyFromSource of AppendLogs. Its row holds
// pointers into the records (and into conv for the values converted to
// their column types), which an interface holds without an allocation:
// copying a record in costs no allocation per field, as boxing each value
// did. CopyFrom encodes a row before it asks for the next, so one row and
// one conv serve them all.
type logRows struct {
	recs []vault.LogRecord
	i    int
	row  [20]any
	conv struct {
		time      time.Time
		status    int32
		dur, ttfb int64
	}
}

func (l *logRows) Next() bool {
	l.i++
	return l.i <= len(l.recs)
}

func (l *logRows) Values() ([]any, error) {
	r, c := &l.recs[l.i-1], &l.conv
	c.time, c.status, c.dur, c.ttfb = r.Time.UTC(), int32(r.Status), int64(r.Duration), int64(r.TTFB)
	l.row = [...]any{&c.time, &r.UserID, &r.KeyID, &r.RequestID, &r.Route, &r.Model, &r.Effort, &r.ServiceTier, &c.status,
		&c.dur, &c.ttfb, &r.InputTokens, &r.OutputTokens, &r.CachedTokens, &r.ReasoningTokens, &r.ErrorCode, &r.AccountID, &r.FailoverFrom, &r.Estimated,
		&r.RequestedTier}
	return l.row[:], nil
}

func (l *logRows) Err() error { return nil }

// addUsage upserts the roll-ups in one statement. Deltas for the same user
// and day are summed first: one statement may not update a row twice.
func addUsage(ctx context.Context, tx pgx.Tx, usage []vault.UsageDelta) error {
	if len(usage) == 0 {
		return nil
	}
	type dayKey struct {
		user string
		day  time.Time
	}
	sums := map[dayKey]*vault.DayUsage{}
	var order []dayKey
	for _, d := range usage {
		t := d.Day.UTC()
		k := dayKey{d.UserID, time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)}
		sum := sums[k]
		if sum == nil {
			sum = &vault.DayUsage{}
			sums[k] = sum
			order = append(order, k)
		}
		sum.Requests += d.Requests
		sum.Errors += d.Errors
		sum.InputTokens += d.InputTokens
		sum.OutputTokens += d.OutputTokens
		sum.CachedTokens += d.CachedTokens
		sum.ReasoningTokens += d.ReasoningTokens
	}
	n := len(order)
	users, days := make([]string, n), make([]string, n)
	reqs, errs, in, out, cached, reasoning := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	for i, k := range order {
		u := sums[k]
		users[i], days[i] = k.user, k.day.Format(time.DateOnly)
		reqs[i], errs[i], in[i], out[i], cached[i], reasoning[i] = u.Requests, u.Errors, u.InputTokens, u.OutputTokens, u.CachedTokens, u.ReasoningTokens
	}
	_, err := tx.Exec(ctx, `INSERT INTO codex_usage AS u
	(user_id, day, requests, errors, input_tokens, output_tokens, cached_tokens, reasoning_tokens)
SELECT * FROM unnest($1::text[], $2::date[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[])
ON CONFLICT (user_id, day) DO UPDATE SET
	requests = u.requests + excluded.requests, errors = u.errors + excluded.errors,
	input_tokens = u.input_tokens + excluded.input_tokens, output_tokens = u.output_tokens + excluded.output_tokens,
	cached_tokens = u.cached_tokens + excluded.cached_tokens, reasoning_tokens = u.reasoning_tokens + excluded.reasoning_tokens`,
		users, days, reqs, errs, in, out, cached, reasoning)
	return err
}

// RecentLogs reads up to q.Limit matching records, newest first. The
// query is assembled from fixed fragments so each shape gets its own plan
// (and index); values are always parameters.
func (s *Store) RecentLogs(ctx context.Context, q vault.LogQuery) ([]vault.LogRecord, error) {
	sql := logSelect + ` WHERE true`
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if q.UserID != "" {
		sql += ` AND user_id = ` + arg(q.UserID)
	}
	if !q.Before.IsZero() {
		sql += ` AND time < ` + arg(q.Before.UTC())
	}
	switch q.Filter {
	case vault.StatusSuccess:
		sql += ` AND status < 400 AND error_code = ''`
	case vault.StatusFailed:
		sql += ` AND (status >= 400 OR error_code <> '')`
	}
	if q.UserID != "" {
		sql += ` ORDER BY user_id DESC, time DESC, seq DESC`
	} else {
		sql += ` ORDER BY time DESC, seq DESC`
	}
	sql += ` LIMIT ` + arg(max(q.Limit, 0))
	return query(s, ctx, "read request logs", sql, args, scanLog)
}

// Usage sums the roll-ups of the UTC days from..to by day.
func (s *Store) Usage(ctx context.Context, userID string, from, to time.Time) ([]vault.DayUsage, error) {
	sql := `SELECT day, sum(requests)::bigint, sum(errors)::bigint, sum(input_tokens)::bigint, sum(output_tokens)::bigint,
	sum(cached_tokens)::bigint, sum(reasoning_tokens)::bigint
FROM codex_usage WHERE day BETWEEN $1::date AND $2::date`
	args := []any{from.UTC().Format(time.DateOnly), to.UTC().Format(time.DateOnly)}
	if userID != "" {
		sql += ` AND user_id = $3`
		args = append(args, userID)
	}
	sql += ` GROUP BY day ORDER BY day`
	return query(s, ctx, "read usage", sql, args, func(r pgx.Row) (vault.DayUsage, error) {
		var d vault.DayUsage
		err := r.Scan(&d.Day, &d.Requests, &d.Errors, &d.InputTokens, &d.OutputTokens, &d.CachedTokens, &d.ReasoningTokens)
		d.Day = time.Date(d.Day.Year(), d.Day.Month(), d.Day.Day(), 0, 0, 0, 0, time.UTC)
		return d, err
	})
}

// PurgeLogs deletes records older than before, in chunks. One instance
// purges at a time: it holds a session advisory lock on a pooled
// connection while it works, and the others skip (returning 0) rather
// than queue up behind it to delete nothing.
func (s *Store) PurgeLogs(ctx context.Context, before time.Time) (int, error) {
	if s.closed.Load() {
		return 0, vault.ErrClosed
	}
	// Deleting a month of logs may take longer than one query.
	cctx, cancel := context.WithTimeout(ctx, 10*s.opts.QueryTimeout)
	defer cancel()
	conn, err := s.pool.Acquire(cctx)
	if err != nil {
		return 0, s.fail(ctx, "purge request logs", err)
	}
	defer conn.Release()
	var got bool
	if err := conn.QueryRow(cctx, `SELECT pg_try_advisory_lock($1, $2)`, lockClassVault, lockPurge).Scan(&got); err != nil {
		return 0, s.fail(ctx, "purge request logs", err)
	}
	if !got {
		s.opts.Logger.Debug("vault: another instance is purging request logs; skipping")
		return 0, nil
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.Background(), s.opts.QueryTimeout)
		defer cancel()
		if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock($1, $2)`, lockClassVault, lockPurge); err != nil {
			// Unsure whether the lock is still held: drop the connection,
			// which ends it.
			conn.Conn().Close(context.Background())
		}
	}()
	total := 0
	for {
		tag, err := conn.Exec(cctx, `DELETE FROM codex_request_log WHERE ctid = ANY (ARRAY(
	SELECT ctid FROM codex_request_log WHERE time < $1 ORDER BY time LIMIT $2))`, before.UTC(), purgeChunk)
		if err != nil {
			return total, s.fail(ctx, "purge request logs", err)
		}
		n := int(tag.RowsAffected())
		total += n
		if n < purgeChunk {
			return total, s.fail(ctx, "purge key usage", purgeKeyUsage(cctx, conn, before))
		}
	}
}
