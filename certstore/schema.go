package certstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrations are applied in order; the schema table records how many ran.
// Append only: a running cluster may hold an older binary's version.
func (s *Storage) migrations() []string {
	return []string{
		// key uses the "C" collation so that "below a directory" is a
		// byte range the primary key's index answers (see under).
		`CREATE TABLE IF NOT EXISTS ` + s.data + ` (
			key      text COLLATE "C" PRIMARY KEY,
			value    bytea NOT NULL,
			modified timestamptz NOT NULL DEFAULT now()
		)`,
	}
}

// migrate brings the tables to the current version inside one transaction
// holding a transaction-level advisory lock, so instances starting at the
// same time take turns and the later ones find the work done.
func (s *Storage) migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext($1), 0)`, s.cfg.TablePrefix+":schema"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+s.schema+` (version integer NOT NULL)`); err != nil {
			return err
		}
		var version int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM `+s.schema).Scan(&version); err != nil {
			return err
		}
		all := s.migrations()
		if version > len(all) {
			return fmt.Errorf("schema version %d is newer than this build knows (%d)", version, len(all))
		}
		for i := version; i < len(all); i++ {
			if _, err := tx.Exec(ctx, all[i]); err != nil {
				return fmt.Errorf("migration %d: %w", i+1, err)
			}
		}
		if version < len(all) {
			if _, err := tx.Exec(ctx, `DELETE FROM `+s.schema); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO `+s.schema+` (version) VALUES ($1)`, len(all)); err != nil {
				return err
			}
		}
		return nil
	})
}
