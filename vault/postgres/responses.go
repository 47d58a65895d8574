package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

var _ vault.ResponseStore = (*Store)(nil)

// responsesSchema keeps stored responses and their item index, both gone
// with their user (foreign keys). Additive: older instances ignore it.
const responsesSchema = `
CREATE TABLE codex_responses (
	user_id     text NOT NULL REFERENCES codex_users (id) ON DELETE CASCADE,
	id          text NOT NULL,
	item_ids    text[] NOT NULL DEFAULT '{}',
	created     timestamptz NOT NULL,
	expires     timestamptz NOT NULL,
	size        bigint NOT NULL,
	seal_key_id text NOT NULL,
	nonce       bytea NOT NULL,
	ciphertext  bytea NOT NULL,
	PRIMARY KEY (user_id, id)
);
CREATE INDEX codex_responses_expires_idx ON codex_responses (expires);
CREATE TABLE codex_response_items (
	user_id     text NOT NULL,
	item_id     text NOT NULL,
	response_id text NOT NULL,
	PRIMARY KEY (user_id, item_id),
	FOREIGN KEY (user_id, response_id) REFERENCES codex_responses (user_id, id) ON DELETE CASCADE
);
CREATE INDEX codex_response_items_response_idx ON codex_response_items (user_id, response_id);
`

// responseColumns is what every read selects, in scanResponse's order.
const responseColumns = `r.user_id, r.id, r.item_ids, r.created, r.expires, r.seal_key_id, r.nonce, r.ciphertext`

// scanResponse reads one row of responseColumns.
func scanResponse(row pgx.Row) (vault.ResponseRecord, error) {
	var r vault.ResponseRecord
	err := row.Scan(&r.UserID, &r.ID, &r.ItemIDs, &r.Created, &r.Expires, &r.Sealed.KeyID, &r.Sealed.Nonce, &r.Sealed.Ciphertext)
	r.Created, r.Expires = r.Created.UTC(), r.Expires.UTC()
	return r, err
}

// PutResponse upserts the record and its item index and drops the user's
// oldest records over the cap, in one transaction. The user's row is
// locked (FOR NO KEY UPDATE, which foreign-key checks do not wait for) so
// two instances storing for one user apply the cap one after the other.
func (s *Store) PutResponse(ctx context.Context, rec vault.ResponseRecord, lim vault.ResponseLimits) (int, error) {
	dropped := 0
	err := s.tx(ctx, "put response", func(ctx context.Context, tx pgx.Tx) error {
		dropped = 0
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM codex_users WHERE id = $1 FOR NO KEY UPDATE`, rec.UserID).Scan(&one); err != nil {
			return err
		}
		ids := rec.ItemIDs
		if ids == nil {
			ids = []string{}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO codex_responses (user_id, id, item_ids, created, expires, size, seal_key_id, nonce, ciphertext)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (user_id, id) DO UPDATE SET item_ids = excluded.item_ids, created = excluded.created, expires = excluded.expires,
	size = excluded.size, seal_key_id = excluded.seal_key_id, nonce = excluded.nonce, ciphertext = excluded.ciphertext`,
			rec.UserID, rec.ID, ids, rec.Created.UTC(), rec.Expires.UTC(), rec.Size(), rec.Sealed.KeyID, rec.Sealed.Nonce, rec.Sealed.Ciphertext); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO codex_response_items (user_id, item_id, response_id)
SELECT $1, i, $2 FROM unnest($3::text[]) AS i
ON CONFLICT (user_id, item_id) DO UPDATE SET response_id = excluded.response_id`, rec.UserID, rec.ID, ids); err != nil {
			return err
		}
		if lim.MaxUserBytes <= 0 {
			return nil
		}
		// Newest first, a running total: whatever is past the cap is older
		// than what fits.
		tag, err := tx.Exec(ctx, `DELETE FROM codex_responses r USING (
	SELECT id, sum(size) OVER (ORDER BY created DESC, id DESC) AS running FROM codex_responses WHERE user_id = $1
) x WHERE r.user_id = $1 AND r.id = x.id AND x.running > $2 AND r.id <> $3`, rec.UserID, lim.MaxUserBytes, rec.ID)
		if err != nil {
			return err
		}
		dropped = int(tag.RowsAffected())
		return nil
	})
	return dropped, err
}

// GetResponse reads one record.
func (s *Store) GetResponse(ctx context.Context, userID, id string) (vault.ResponseRecord, error) {
	return queryOne(s, ctx, "get response", `SELECT `+responseColumns+` FROM codex_responses r WHERE r.user_id = $1 AND r.id = $2`,
		[]any{userID, id}, scanResponse)
}

// ResponseByItem follows the item index to its record.
func (s *Store) ResponseByItem(ctx context.Context, userID, itemID string) (vault.ResponseRecord, error) {
	return queryOne(s, ctx, "get response by item", `SELECT `+responseColumns+` FROM codex_response_items i
JOIN codex_responses r ON r.user_id = i.user_id AND r.id = i.response_id WHERE i.user_id = $1 AND i.item_id = $2`,
		[]any{userID, itemID}, scanResponse)
}

// DeleteResponse removes one record; its index entries go with it.
func (s *Store) DeleteResponse(ctx context.Context, userID, id string) error {
	n, err := s.exec(ctx, "delete response", `DELETE FROM codex_responses WHERE user_id = $1 AND id = $2`, userID, id)
	if err == nil && n == 0 {
		err = vault.ErrNotFound
	}
	return err
}

// PurgeResponses deletes expired records (by the expires index), and
// those created up to createdUpTo when it is set (a scan, which the vault
// asks for once after it opens or its retention was shortened).
func (s *Store) PurgeResponses(ctx context.Context, now, createdUpTo time.Time) (int, error) {
	if createdUpTo.IsZero() {
		n, err := s.exec(ctx, "purge responses", `DELETE FROM codex_responses WHERE expires <= $1`, now.UTC())
		return int(n), err
	}
	n, err := s.exec(ctx, "purge responses", `DELETE FROM codex_responses WHERE expires <= $1 OR created <= $2`, now.UTC(), createdUpTo.UTC())
	return int(n), err
}

// ExportResponses reads every record.
func (s *Store) ExportResponses(ctx context.Context) ([]vault.ResponseRecord, error) {
	return query(s, ctx, "export responses", `SELECT `+responseColumns+` FROM codex_responses r`, nil, scanResponse)
}
