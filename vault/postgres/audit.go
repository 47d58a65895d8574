package postgres

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

var _ vault.AuditStore = (*Store)(nil)

// auditSchema keeps the audit log: one row per entry, its fields in
// columns so listings filter in SQL. No foreign keys: entries about a
// deleted user stay. Additive: older instances ignore it.
const auditSchema = `
CREATE TABLE codex_audit (
	id                text COLLATE "C" PRIMARY KEY, -- byte order: ids sort as their times
	time              timestamptz NOT NULL,
	actor_kind        text NOT NULL DEFAULT '',
	actor_user_id     text NOT NULL DEFAULT '',
	actor_email       text NOT NULL DEFAULT '',
	actor_os_user     text NOT NULL DEFAULT '',
	actor_via         text NOT NULL DEFAULT '',
	action            text NOT NULL,
	detail            text NOT NULL DEFAULT '',
	target_user_id    text NOT NULL DEFAULT '',
	target_email      text NOT NULL DEFAULT '',
	target_key_id     text NOT NULL DEFAULT '',
	target_account_id text NOT NULL DEFAULT '',
	source            text NOT NULL DEFAULT '',
	outcome           text NOT NULL DEFAULT '',
	reason            text NOT NULL DEFAULT ''
);
CREATE INDEX codex_audit_time_idx ON codex_audit (time);
CREATE INDEX codex_audit_target_idx ON codex_audit (target_user_id, id);
CREATE INDEX codex_audit_actor_idx ON codex_audit (actor_user_id, id);
`

// auditColumns is what every read selects, in scanAudit's order.
const auditColumns = `id, time, actor_kind, actor_user_id, actor_email, actor_os_user, actor_via, action, detail,
	target_user_id, target_email, target_key_id, target_account_id, source, outcome, reason`

// scanAudit reads one row of auditColumns.
func scanAudit(row pgx.Row) (vault.AuditEntry, error) {
	var e vault.AuditEntry
	var action string
	err := row.Scan(&e.ID, &e.Time, &e.Actor.Kind, &e.Actor.UserID, &e.Actor.Email, &e.Actor.OSUser, &e.Actor.Via, &action, &e.Detail,
		&e.Target.UserID, &e.Target.Email, &e.Target.KeyID, &e.Target.AccountID, &e.Source, &e.Outcome, &e.Reason)
	e.Time, e.Action = e.Time.UTC(), vault.AuditAction(action)
	return e, err
}

// AppendAudit inserts one row; a taken id is vault.ErrDuplicate.
func (s *Store) AppendAudit(ctx context.Context, e vault.AuditEntry) error {
	_, err := s.exec(ctx, "append audit entry", `INSERT INTO codex_audit (`+auditColumns+`)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
		e.ID, e.Time.UTC(), e.Actor.Kind, e.Actor.UserID, e.Actor.Email, e.Actor.OSUser, e.Actor.Via, string(e.Action), e.Detail,
		e.Target.UserID, e.Target.Email, e.Target.KeyID, e.Target.AccountID, e.Source, e.Outcome, e.Reason)
	return err
}

// ListAudit filters in SQL, newest id first.
func (s *Store) ListAudit(ctx context.Context, q vault.AuditQuery) ([]vault.AuditEntry, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if !q.Since.IsZero() {
		add("time >= ?", q.Since.UTC())
	}
	if !q.Until.IsZero() {
		add("time < ?", q.Until.UTC())
	}
	switch {
	case q.UserID != "" && q.Email != "":
		add("(actor_user_id = ? OR target_user_id = ?", q.UserID)
		add("actor_email = ? OR target_email = ?)", q.Email)
		n := len(where)
		where = append(where[:n-2], where[n-2]+" OR "+where[n-1])
	case q.UserID != "":
		add("(actor_user_id = ? OR target_user_id = ?)", q.UserID)
	case q.Email != "":
		add("(actor_email = ? OR target_email = ?)", q.Email)
	}
	if q.TargetUserID != "" {
		add("target_user_id = ?", q.TargetUserID)
	}
	if q.ActorKind != "" {
		add("actor_kind = ?", q.ActorKind)
	}
	if q.Action != "" {
		add("action = ?", string(q.Action))
	}
	if q.Before != "" {
		add("id < ?", q.Before)
	}
	sql := `SELECT ` + auditColumns + ` FROM codex_audit`
	if len(where) > 0 {
		sql += ` WHERE ` + strings.Join(where, " AND ")
	}
	sql += ` ORDER BY id DESC LIMIT ` + strconv.Itoa(vault.AuditLimit(q.Limit))
	return query(s, ctx, "list audit entries", sql, args, scanAudit)
}

// PurgeAudit deletes old rows; two instances purging at once delete each
// row once.
func (s *Store) PurgeAudit(ctx context.Context, before time.Time) (int, error) {
	n, err := s.exec(ctx, "purge audit entries", `DELETE FROM codex_audit WHERE time < $1`, before.UTC())
	return int(n), err
}

// ExportAudit reads every row.
func (s *Store) ExportAudit(ctx context.Context) ([]vault.AuditEntry, error) {
	return query(s, ctx, "export audit entries", `SELECT `+auditColumns+` FROM codex_audit`, nil, scanAudit)
}
