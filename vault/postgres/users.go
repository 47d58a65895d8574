package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// userColumns are read by scanUser, in order.
const userColumns = `id, email, name, created, disabled, account_policy`

// scanUser reads userColumns.
func scanUser(r pgx.Row) (vault.User, error) {
	var u vault.User
	var created pgtype.Timestamptz
	err := r.Scan(&u.ID, &u.Email, &u.Name, &created, &u.Disabled, &u.AccountPolicy)
	u.Created = fromTS(created)
	return u, err
}

// CreateUser stores a new user.
func (s *Store) CreateUser(ctx context.Context, u vault.User) error {
	return s.tx(ctx, "create user", func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO codex_users (`+userColumns+`) VALUES ($1, $2, $3, $4, $5, $6)`,
			u.ID, u.Email, u.Name, ts(u.Created), u.Disabled, u.AccountPolicy); err != nil {
			return err
		}
		return notify(ctx, tx, changeUser, u.ID, "")
	})
}

// GetUser reads one user.
func (s *Store) GetUser(ctx context.Context, id string) (vault.User, error) {
	return queryOne(s, ctx, "get user", `SELECT `+userColumns+` FROM codex_users WHERE id = $1`, []any{id}, scanUser)
}

// UserByEmail reads the user with the email (unique, stored normalised).
func (s *Store) UserByEmail(ctx context.Context, email string) (vault.User, error) {
	return queryOne(s, ctx, "get user by email", `SELECT `+userColumns+` FROM codex_users WHERE email = $1`, []any{email}, scanUser)
}

// ListUsers reads every user.
func (s *Store) ListUsers(ctx context.Context) ([]vault.User, error) {
	return query(s, ctx, "list users", `SELECT `+userColumns+` FROM codex_users`, nil, scanUser)
}

// UpdateUser replaces a user's name, creation time, disabled flag and
// account policy.
func (s *Store) UpdateUser(ctx context.Context, u vault.User) error {
	return s.tx(ctx, "update user", func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE codex_users SET name = $2, created = $3, disabled = $4, account_policy = $5 WHERE id = $1`,
			u.ID, u.Name, ts(u.Created), u.Disabled, u.AccountPolicy)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return vault.ErrNotFound
		}
		return notify(ctx, tx, changeUser, u.ID, "")
	})
}

// DeleteUser removes a user; keys, tokens, sessions and the quota snapshot
// go with it (foreign keys), pending OAuth flows explicitly.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	return s.tx(ctx, "delete user", func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM codex_users WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return vault.ErrNotFound
		}
		if _, err := tx.Exec(ctx, `DELETE FROM codex_oauth_sessions WHERE user_id = $1`, id); err != nil {
			return err
		}
		return notify(ctx, tx, changeUser, id, "")
	})
}

// ts is a time for a nullable timestamptz column: NULL for the zero time.
func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC()
}

// fromTS reads a nullable timestamptz column as UTC, zero for NULL.
func fromTS(t pgtype.Timestamptz) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}
