package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// PutSession stores a dashboard session; the foreign key refuses an
// unknown user with vault.ErrNotFound.
func (s *Store) PutSession(ctx context.Context, key []byte, rec vault.SessionRecord) error {
	_, err := s.exec(ctx, "put session", `INSERT INTO codex_sessions (key, user_id, created, expires, admin_by_claim) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (key) DO UPDATE SET user_id = excluded.user_id, created = excluded.created, expires = excluded.expires,
	admin_by_claim = excluded.admin_by_claim`,
		key, rec.UserID, ts(rec.Created), rec.Expires.UTC(), rec.AdminByClaim)
	return err
}

// GetSession reads a dashboard session.
func (s *Store) GetSession(ctx context.Context, key []byte) (vault.SessionRecord, error) {
	return queryOne(s, ctx, "get session", `SELECT user_id, created, expires, admin_by_claim FROM codex_sessions WHERE key = $1`, []any{key},
		func(r pgx.Row) (vault.SessionRecord, error) {
			var rec vault.SessionRecord
			var created pgtype.Timestamptz
			err := r.Scan(&rec.UserID, &created, &rec.Expires, &rec.AdminByClaim)
			rec.Created, rec.Expires = fromTS(created), rec.Expires.UTC()
			return rec, err
		})
}

// DeleteSession removes a dashboard session.
func (s *Store) DeleteSession(ctx context.Context, key []byte) error {
	_, err := s.exec(ctx, "delete session", `DELETE FROM codex_sessions WHERE key = $1`, key)
	return err
}

// PutLoginToken stores a login token.
func (s *Store) PutLoginToken(ctx context.Context, key []byte, rec vault.LoginRecord) error {
	_, err := s.exec(ctx, "put login token", `INSERT INTO codex_login_tokens (key, email, expires) VALUES ($1, $2, $3)
ON CONFLICT (key) DO UPDATE SET email = excluded.email, expires = excluded.expires`, key, rec.Email, rec.Expires.UTC())
	return err
}

// TakeLoginToken deletes a login token and returns it, in one statement:
// of two concurrent takes, only one gets the row.
func (s *Store) TakeLoginToken(ctx context.Context, key []byte) (vault.LoginRecord, error) {
	return queryOne(s, ctx, "take login token", `DELETE FROM codex_login_tokens WHERE key = $1 RETURNING email, expires`, []any{key},
		func(r pgx.Row) (vault.LoginRecord, error) {
			var rec vault.LoginRecord
			err := r.Scan(&rec.Email, &rec.Expires)
			rec.Expires = rec.Expires.UTC()
			return rec, err
		})
}

// PutOAuthSession stores a pending OAuth flow.
func (s *Store) PutOAuthSession(ctx context.Context, key []byte, rec vault.OAuthRecord) error {
	_, err := s.exec(ctx, "put OAuth session", `INSERT INTO codex_oauth_sessions
	(key, user_id, verifier_key_id, verifier_nonce, verifier_ciphertext, expires) VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (key) DO UPDATE SET user_id = excluded.user_id, verifier_key_id = excluded.verifier_key_id,
	verifier_nonce = excluded.verifier_nonce, verifier_ciphertext = excluded.verifier_ciphertext, expires = excluded.expires`,
		key, rec.UserID, rec.Verifier.KeyID, rec.Verifier.Nonce, rec.Verifier.Ciphertext, rec.Expires.UTC())
	return err
}

// TakeOAuthSession deletes a pending OAuth flow and returns it.
func (s *Store) TakeOAuthSession(ctx context.Context, key []byte) (vault.OAuthRecord, error) {
	return queryOne(s, ctx, "take OAuth session", `DELETE FROM codex_oauth_sessions WHERE key = $1
RETURNING user_id, verifier_key_id, verifier_nonce, verifier_ciphertext, expires`, []any{key},
		func(r pgx.Row) (vault.OAuthRecord, error) {
			var rec vault.OAuthRecord
			err := r.Scan(&rec.UserID, &rec.Verifier.KeyID, &rec.Verifier.Nonce, &rec.Verifier.Ciphertext, &rec.Expires)
			rec.Expires = rec.Expires.UTC()
			return rec, err
		})
}

// PurgeExpiredSessions deletes what expired at or before now.
func (s *Store) PurgeExpiredSessions(ctx context.Context, now time.Time) (int, error) {
	var n int
	err := s.tx(ctx, "purge expired sessions", func(ctx context.Context, tx pgx.Tx) error {
		for _, table := range []string{"codex_sessions", "codex_login_tokens", "codex_oauth_sessions"} {
			tag, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE expires <= $1`, now.UTC())
			if err != nil {
				return err
			}
			n += int(tag.RowsAffected())
		}
		return nil
	})
	return n, err
}

// GetLoginToken reads a login token without using it up.
func (s *Store) GetLoginToken(ctx context.Context, key []byte) (vault.LoginRecord, error) {
	return queryOne(s, ctx, "read login token", `SELECT email, expires FROM codex_login_tokens WHERE key = $1`, []any{key},
		func(r pgx.Row) (vault.LoginRecord, error) {
			var rec vault.LoginRecord
			err := r.Scan(&rec.Email, &rec.Expires)
			rec.Expires = rec.Expires.UTC()
			return rec, err
		})
}

// DeleteUserSessions removes a user's dashboard sessions and pending OAuth
// flows in one transaction and returns how many sessions it removed.
func (s *Store) DeleteUserSessions(ctx context.Context, userID string) (int, error) {
	n := 0
	err := s.tx(ctx, "delete user sessions", func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM codex_sessions WHERE user_id = $1`, userID)
		if err != nil {
			return err
		}
		n = int(tag.RowsAffected())
		_, err = tx.Exec(ctx, `DELETE FROM codex_oauth_sessions WHERE user_id = $1`, userID)
		return err
	})
	return n, err
}
