package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

var _ vault.SettingStore = (*Store)(nil)

// settingsSchema keeps the operator settings. Additive: older instances
// ignore it. IF NOT EXISTS, so a step added beside it by a parallel
// branch can come first.
const settingsSchema = `
CREATE TABLE IF NOT EXISTS codex_settings (
	name    text PRIMARY KEY,
	value   bytea NOT NULL,
	updated timestamptz NOT NULL DEFAULT now()
);
`

// GetSetting reads one setting.
func (s *Store) GetSetting(ctx context.Context, name string) ([]byte, error) {
	return queryOne(s, ctx, "get setting", `SELECT value FROM codex_settings WHERE name = $1`, []any{name},
		func(r pgx.Row) ([]byte, error) {
			var v []byte
			err := r.Scan(&v)
			return v, err
		})
}

// PutSetting upserts one setting.
func (s *Store) PutSetting(ctx context.Context, name string, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	_, err := s.exec(ctx, "put setting", `INSERT INTO codex_settings (name, value) VALUES ($1, $2)
ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated = now()`, name, value)
	return err
}

// DeleteSetting removes one setting.
func (s *Store) DeleteSetting(ctx context.Context, name string) error {
	_, err := s.exec(ctx, "delete setting", `DELETE FROM codex_settings WHERE name = $1`, name)
	return err
}

// ExportSettings reads every setting.
func (s *Store) ExportSettings(ctx context.Context) (map[string][]byte, error) {
	type row struct {
		name  string
		value []byte
	}
	rows, err := query(s, ctx, "export settings", `SELECT name, value FROM codex_settings`, nil,
		func(r pgx.Row) (row, error) {
			var x row
			err := r.Scan(&x.name, &x.value)
			return x, err
		})
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(rows))
	for _, x := range rows {
		out[x.name] = x.value
	}
	return out, nil
}
