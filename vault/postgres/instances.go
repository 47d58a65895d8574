package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// The instances sharing the database, with the encryption keys each holds
// and seals with (vault.InstanceRegistry), so that a rolling key rotation
// never has one instance seal a login another cannot open. Liveness is
// judged by the server's clock (now()), so the instances' clocks may
// differ.

var _ vault.InstanceRegistry = (*Store)(nil)

// instancesSchema is the schema step that adds the registry.
const instancesSchema = `
CREATE TABLE codex_instances (
	id          text PRIMARY KEY,
	name        text NOT NULL DEFAULT '',
	key_ids     text[] NOT NULL,
	seal_key_id text NOT NULL,
	started     timestamptz NOT NULL DEFAULT now(),
	seen        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX codex_tokens_seal_key_idx ON codex_tokens (seal_key_id);
`

// forgetAfter is how long a record of an instance that stopped without
// deregistering (killed) is kept, for an operator looking at the table.
const forgetAfter = "1 day"

// instanceSelect reads the columns scanInstance expects.
const instanceSelect = `SELECT id, name, key_ids, seal_key_id, seen FROM codex_instances`

// scanInstance reads one instanceSelect row.
func scanInstance(r pgx.Row) (vault.Instance, error) {
	var in vault.Instance
	var seen pgtype.Timestamptz
	err := r.Scan(&in.ID, &in.Name, &in.KeyIDs, &in.SealKeyID, &seen)
	in.Seen = fromTS(seen)
	return in, err
}

// Heartbeat records inst as seen now and returns the live instances, in
// one transaction; it also forgets instances gone for a day.
func (s *Store) Heartbeat(ctx context.Context, inst vault.Instance, window time.Duration) ([]vault.Instance, error) {
	var live []vault.Instance
	err := s.tx(ctx, "heartbeat", func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO codex_instances (id, name, key_ids, seal_key_id) VALUES ($1, $2, $3, $4)
ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, key_ids = EXCLUDED.key_ids, seal_key_id = EXCLUDED.seal_key_id, seen = now()`,
			inst.ID, inst.Name, inst.KeyIDs, inst.SealKeyID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM codex_instances WHERE seen < now() - interval '`+forgetAfter+`'`); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, instanceSelect+` WHERE seen >= now() - $1::interval ORDER BY name, id`, window)
		if err != nil {
			return err
		}
		live, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (vault.Instance, error) { return scanInstance(r) })
		return err
	})
	return live, err
}

// LiveInstances returns the instances seen within the last window.
func (s *Store) LiveInstances(ctx context.Context, window time.Duration) ([]vault.Instance, error) {
	return query(s, ctx, "list instances", instanceSelect+` WHERE seen >= now() - $1::interval ORDER BY name, id`, []any{window}, scanInstance)
}

// Deregister forgets an instance.
func (s *Store) Deregister(ctx context.Context, id string) error {
	_, err := s.exec(ctx, "deregister instance", `DELETE FROM codex_instances WHERE id = $1`, id)
	return err
}

// TokensByKey counts the token bundles per sealing key.
func (s *Store) TokensByKey(ctx context.Context) (map[string]int, error) {
	type count struct {
		id string
		n  int
	}
	rows, err := query(s, ctx, "count tokens by key", `SELECT seal_key_id, count(*) FROM codex_tokens GROUP BY 1`, nil, func(r pgx.Row) (count, error) {
		var c count
		err := r.Scan(&c.id, &c.n)
		return c, err
	})
	if err != nil {
		return nil, err
	}
	out := make(map[string]int, len(rows))
	for _, c := range rows {
		out[c.id] = c.n
	}
	return out, nil
}
