package postgres

import (
	"context"
	"encoding/json"

	"github.com/jackc/pgx/v5"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// PutQuotas upserts snapshots in one statement; the join on codex_users
// skips users deleted meanwhile.
func (s *Store) PutQuotas(ctx context.Context, snaps map[string]vault.QuotaSnapshot) error {
	if len(snaps) == 0 {
		return nil
	}
	users := make([]string, 0, len(snaps))
	docs := make([]string, 0, len(snaps))
	for id, q := range snaps {
		b, err := json.Marshal(q)
		if err != nil {
			return err
		}
		users = append(users, id)
		docs = append(docs, string(b))
	}
	_, err := s.exec(ctx, "put quota snapshots", `INSERT INTO codex_quotas (user_id, snapshot)
SELECT q.user_id, q.snapshot FROM unnest($1::text[], $2::jsonb[]) AS q(user_id, snapshot)
JOIN codex_users u ON u.id = q.user_id
ON CONFLICT (user_id) DO UPDATE SET snapshot = excluded.snapshot`, users, docs)
	return err
}

// ListQuotas reads every snapshot.
func (s *Store) ListQuotas(ctx context.Context) (map[string]vault.QuotaSnapshot, error) {
	type row struct {
		user string
		q    vault.QuotaSnapshot
	}
	rows, err := query(s, ctx, "list quota snapshots", `SELECT user_id, snapshot::text FROM codex_quotas`, nil, func(r pgx.Row) (row, error) {
		var out row
		var doc string
		if err := r.Scan(&out.user, &doc); err != nil {
			return out, err
		}
		return out, json.Unmarshal([]byte(doc), &out.q)
	})
	if err != nil {
		return nil, err
	}
	m := make(map[string]vault.QuotaSnapshot, len(rows))
	for _, r := range rows {
		m[r.user] = r.q
	}
	return m, nil
}
