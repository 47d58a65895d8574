package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

var (
	_ vault.Exporter = (*Store)(nil)
	_ vault.Importer = (*Store)(nil)
)

// vaultTables are every table holding records, for DeleteAll.
const vaultTables = `codex_users, codex_keys, codex_tokens, codex_sessions, codex_login_tokens,
	codex_oauth_sessions, codex_request_log, codex_usage, codex_quotas, codex_key_usage, codex_responses, codex_response_items, codex_settings, codex_audit`

// countOrder is the order of the columns Count selects.
var countOrder = []vault.Kind{vault.KindUsers, vault.KindKeys, vault.KindTokens, vault.KindSessions, vault.KindLoginTokens,
	vault.KindOAuthSessions, vault.KindQuotas, vault.KindRequestLogs, vault.KindUsage, vault.KindResponses, vault.KindSettings, vault.KindAudit}

// Count counts every table in one statement.
func (s *Store) Count(ctx context.Context) (vault.Counts, error) {
	return queryOne(s, ctx, "count records", `SELECT
	(SELECT count(*) FROM codex_users), (SELECT count(*) FROM codex_keys), (SELECT count(*) FROM codex_tokens),
	(SELECT count(*) FROM codex_sessions), (SELECT count(*) FROM codex_login_tokens), (SELECT count(*) FROM codex_oauth_sessions),
	(SELECT count(*) FROM codex_quotas), (SELECT count(*) FROM codex_request_log), (SELECT count(*) FROM codex_usage),
	(SELECT count(*) FROM codex_responses), (SELECT count(*) FROM codex_settings), (SELECT count(*) FROM codex_audit)`, nil,
		func(r pgx.Row) (vault.Counts, error) {
			n := make([]int64, len(countOrder))
			dst := make([]any, len(n))
			for i := range n {
				dst[i] = &n[i]
			}
			if err := r.Scan(dst...); err != nil {
				return nil, err
			}
			c := vault.Counts{}
			for i, k := range countOrder {
				c[k] = int(n[i])
			}
			return c, nil
		})
}

// ExportSessions reads every dashboard session.
func (s *Store) ExportSessions(ctx context.Context) ([]vault.SessionEntry, error) {
	return query(s, ctx, "export sessions", `SELECT key, user_id, created, expires, admin_by_claim FROM codex_sessions`, nil,
		func(r pgx.Row) (vault.SessionEntry, error) {
			var e vault.SessionEntry
			var created pgtype.Timestamptz
			err := r.Scan(&e.Key, &e.UserID, &created, &e.Expires, &e.AdminByClaim)
			e.Created, e.Expires = fromTS(created), e.Expires.UTC()
			return e, err
		})
}

// ExportLoginTokens reads every login token.
func (s *Store) ExportLoginTokens(ctx context.Context) ([]vault.LoginEntry, error) {
	return query(s, ctx, "export login tokens", `SELECT key, email, expires FROM codex_login_tokens`, nil,
		func(r pgx.Row) (vault.LoginEntry, error) {
			var e vault.LoginEntry
			err := r.Scan(&e.Key, &e.Email, &e.Expires)
			e.Expires = e.Expires.UTC()
			return e, err
		})
}

// ExportOAuthSessions reads every pending OAuth flow.
func (s *Store) ExportOAuthSessions(ctx context.Context) ([]vault.OAuthEntry, error) {
	return query(s, ctx, "export OAuth sessions", `SELECT key, user_id, verifier_key_id, verifier_nonce, verifier_ciphertext, expires
FROM codex_oauth_sessions`, nil,
		func(r pgx.Row) (vault.OAuthEntry, error) {
			var e vault.OAuthEntry
			err := r.Scan(&e.Key, &e.UserID, &e.Verifier.KeyID, &e.Verifier.Nonce, &e.Verifier.Ciphertext, &e.Expires)
			e.Expires = e.Expires.UTC()
			return e, err
		})
}

// ExportLogs pages through the log in (time, seq) order, the order of the
// time index; a position is "<unix microseconds>:<seq>" of the last row.
func (s *Store) ExportLogs(ctx context.Context, after string, limit int) ([]vault.LogRecord, string, error) {
	sql := `SELECT seq, ` + strings.TrimPrefix(logSelect, "SELECT ")
	var args []any
	if after != "" {
		us, seq, ok := strings.Cut(after, ":")
		t, err1 := strconv.ParseInt(us, 10, 64)
		n, err2 := strconv.ParseInt(seq, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			return nil, "", fmt.Errorf("vault: bad request-log position %q", after)
		}
		sql += ` WHERE (time, seq) > ($1, $2)`
		args = append(args, time.UnixMicro(t).UTC(), n)
	}
	sql += ` ORDER BY time, seq LIMIT ` + strconv.Itoa(max(limit, 0))
	type row struct {
		seq int64
		rec vault.LogRecord
	}
	rows, err := query(s, ctx, "export request logs", sql, args, func(r pgx.Row) (row, error) {
		var out row
		var dur, ttfb int64
		var status int32
		rec := &out.rec
		err := r.Scan(&out.seq, &rec.Time, &rec.UserID, &rec.KeyID, &rec.RequestID, &rec.Route, &rec.Model, &rec.Effort, &rec.ServiceTier, &status,
			&dur, &ttfb, &rec.InputTokens, &rec.OutputTokens, &rec.CachedTokens, &rec.ReasoningTokens, &rec.ErrorCode,
			&rec.AccountID, &rec.FailoverFrom, &rec.Estimated, &rec.RequestedTier)
		rec.Time, rec.Status, rec.Duration, rec.TTFB = rec.Time.UTC(), int(status), time.Duration(dur), time.Duration(ttfb)
		return out, err
	})
	if err != nil {
		return nil, "", err
	}
	recs := make([]vault.LogRecord, len(rows))
	next := after
	for i, r := range rows {
		recs[i] = r.rec
		next = strconv.FormatInt(r.rec.Time.UnixMicro(), 10) + ":" + strconv.FormatInt(r.seq, 10)
	}
	return recs, next, nil
}

// ExportUsage reads every roll-up row.
func (s *Store) ExportUsage(ctx context.Context) ([]vault.UsageDelta, error) {
	return query(s, ctx, "export usage", `SELECT user_id, day, requests, errors, input_tokens, output_tokens, cached_tokens, reasoning_tokens
FROM codex_usage`, nil, func(r pgx.Row) (vault.UsageDelta, error) {
		var d vault.UsageDelta
		err := r.Scan(&d.UserID, &d.Day, &d.Requests, &d.Errors, &d.InputTokens, &d.OutputTokens, &d.CachedTokens, &d.ReasoningTokens)
		d.Day = time.Date(d.Day.Year(), d.Day.Month(), d.Day.Day(), 0, 0, 0, 0, time.UTC)
		return d, err
	})
}

// DeleteAll truncates every table in one transaction and tells the other
// instances that each user it held is gone.
func (s *Store) DeleteAll(ctx context.Context) error {
	return s.tx(ctx, "delete all records", func(ctx context.Context, tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id FROM codex_users`)
		if err != nil {
			return err
		}
		users, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `TRUNCATE `+vaultTables+` RESTART IDENTITY`); err != nil {
			return err
		}
		for _, id := range users {
			if err := notify(ctx, tx, changeUser, id, ""); err != nil {
				return err
			}
		}
		return nil
	})
}
