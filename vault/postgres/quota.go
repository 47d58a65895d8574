package postgres

import (
	"context"
	"encoding/json"

	"github.com/jackc/pgx/v5"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// PutQuotas upserts snapshots in one statement; the join on codex_tokens
// skips accounts removed (or users deleted) meanwhile.
func (s *Store) PutQuotas(ctx context.Context, snaps map[vault.AccountRef]vault.QuotaSnapshot) error {
	if len(snaps) == 0 {
		return nil
	}
	users := make([]string, 0, len(snaps))
	accts := make([]string, 0, len(snaps))
	docs := make([]string, 0, len(snaps))
	for ref, q := range snaps {
		b, err := json.Marshal(q)
		if err != nil {
			return err
		}
		users = append(users, ref.UserID)
		accts = append(accts, ref.ID)
		docs = append(docs, string(b))
	}
	_, err := s.exec(ctx, "put quota snapshots", `INSERT INTO codex_quotas (user_id, account, snapshot)
SELECT q.user_id, q.account, q.snapshot FROM unnest($1::text[], $2::text[], $3::jsonb[]) AS q(user_id, account, snapshot)
JOIN codex_tokens t ON t.user_id = q.user_id AND t.account = q.account
ON CONFLICT (user_id, account) DO UPDATE SET snapshot = excluded.snapshot`, users, accts, docs)
	return err
}

// ListQuotas reads every snapshot.
func (s *Store) ListQuotas(ctx context.Context) (map[vault.AccountRef]vault.QuotaSnapshot, error) {
	type row struct {
		ref vault.AccountRef
		q   vault.QuotaSnapshot
	}
	rows, err := query(s, ctx, "list quota snapshots", `SELECT user_id, account, snapshot::text FROM codex_quotas`, nil, func(r pgx.Row) (row, error) {
		var out row
		var doc string
		if err := r.Scan(&out.ref.UserID, &out.ref.ID, &doc); err != nil {
			return out, err
		}
		return out, json.Unmarshal([]byte(doc), &out.q)
	})
	if err != nil {
		return nil, err
	}
	m := make(map[vault.AccountRef]vault.QuotaSnapshot, len(rows))
	for _, r := range rows {
		m[r.ref] = r.q
	}
	return m, nil
}
