package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// tokenColumns are read by scanToken after the user id, in order.
const tokenColumns = `seal_key_id, nonce, ciphertext, account_id, plan_type, email, expiry, last_refresh, version, relink_needed, relink_reason, updated`

// scanToken reads user_id and tokenColumns.
func scanToken(r pgx.Row) (userToken, error) {
	var ut userToken
	rec := &ut.rec
	var expiry, lastRefresh, updated pgtype.Timestamptz
	var version int64
	err := r.Scan(&ut.userID, &rec.KeyID, &rec.Nonce, &rec.Ciphertext, &rec.AccountID, &rec.PlanType, &rec.Email,
		&expiry, &lastRefresh, &version, &rec.RelinkNeeded, &rec.RelinkReason, &updated)
	rec.Expiry, rec.LastRefresh, rec.Updated = fromTS(expiry), fromTS(lastRefresh), fromTS(updated)
	rec.Version = uint64(version)
	return ut, err
}

// userToken is a token record with its user.
type userToken struct {
	userID string
	rec    vault.TokenRecord
}

// maxUpdateAttempts bounds UpdateTokens' retries after serialisation
// failures and deadlocks.
const maxUpdateAttempts = 5

// GetTokens reads a user's token record.
func (s *Store) GetTokens(ctx context.Context, userID string) (vault.TokenRecord, error) {
	ut, err := queryOne(s, ctx, "get tokens", `SELECT user_id, `+tokenColumns+` FROM codex_tokens WHERE user_id = $1`, []any{userID}, scanToken)
	return ut.rec, err
}

// ListTokens reads every token record.
func (s *Store) ListTokens(ctx context.Context) (map[string]vault.TokenRecord, error) {
	all, err := query(s, ctx, "list tokens", `SELECT user_id, `+tokenColumns+` FROM codex_tokens`, nil, scanToken)
	if err != nil {
		return nil, err
	}
	out := make(map[string]vault.TokenRecord, len(all))
	for _, ut := range all {
		out[ut.userID] = ut.rec
	}
	return out, nil
}

// UpdateTokens is the compare-and-swap: in one transaction it locks the
// user's row (so it serialises with every other token write of the user,
// a first link included, and with deleting the user), reads the record
// FOR UPDATE, and writes what fn returns. A serialisation failure or
// deadlock runs the whole transaction again, fn included.
func (s *Store) UpdateTokens(ctx context.Context, userID string, fn func(cur *vault.TokenRecord) (*vault.TokenRecord, error)) error {
	var err error
	for attempt := 0; attempt < maxUpdateAttempts; attempt++ {
		err = s.tx(ctx, "update tokens", func(ctx context.Context, tx pgx.Tx) error {
			return updateTokens(ctx, tx, userID, fn)
		})
		if errors.Is(err, errNoWrite) {
			return nil
		}
		if !retryable(err) {
			return err
		}
	}
	return err
}

// updateTokens is one attempt of UpdateTokens.
func updateTokens(ctx context.Context, tx pgx.Tx, userID string, fn func(cur *vault.TokenRecord) (*vault.TokenRecord, error)) error {
	if err := lockUser(ctx, tx, userID); err != nil {
		return err
	}
	var cur *vault.TokenRecord
	ut, err := scanToken(tx.QueryRow(ctx, `SELECT user_id, `+tokenColumns+` FROM codex_tokens WHERE user_id = $1 FOR UPDATE`, userID))
	switch {
	case err == nil:
		cur = &ut.rec
	case !errors.Is(err, pgx.ErrNoRows):
		return err
	}
	next, err := fn(cur)
	if err != nil {
		return err
	}
	if next == nil {
		return errNoWrite
	}
	if _, err := tx.Exec(ctx, `INSERT INTO codex_tokens (user_id, `+tokenColumns+`)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
ON CONFLICT (user_id) DO UPDATE SET
	seal_key_id = excluded.seal_key_id, nonce = excluded.nonce, ciphertext = excluded.ciphertext,
	account_id = excluded.account_id, plan_type = excluded.plan_type, email = excluded.email,
	expiry = excluded.expiry, last_refresh = excluded.last_refresh, version = excluded.version,
	relink_needed = excluded.relink_needed, relink_reason = excluded.relink_reason, updated = excluded.updated`,
		userID, next.KeyID, next.Nonce, next.Ciphertext, next.AccountID, next.PlanType, next.Email,
		ts(next.Expiry), ts(next.LastRefresh), int64(next.Version), next.RelinkNeeded, next.RelinkReason, ts(next.Updated)); err != nil {
		return err
	}
	return notify(ctx, tx, changeTokens, userID, "")
}

// lockUser locks the user's row against other token writes and deletion
// until tx ends, or fails with vault.ErrNotFound.
func lockUser(ctx context.Context, tx pgx.Tx, userID string) error {
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM codex_users WHERE id = $1 FOR NO KEY UPDATE`, userID).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return vault.ErrNotFound
	}
	return err
}

// DeleteTokens forgets a user's record, serialised with UpdateTokens so a
// refresh that read the old record cannot write it back afterwards.
func (s *Store) DeleteTokens(ctx context.Context, userID string) error {
	err := s.tx(ctx, "delete tokens", func(ctx context.Context, tx pgx.Tx) error {
		if err := lockUser(ctx, tx, userID); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM codex_tokens WHERE user_id = $1`, userID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errNoWrite
		}
		return notify(ctx, tx, changeTokens, userID, "")
	})
	if errors.Is(err, errNoWrite) || errors.Is(err, vault.ErrNotFound) {
		return nil
	}
	return err
}
