package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// tokenColumns are read by scanToken after the user id and the account, in
// order.
const tokenColumns = `seal_key_id, nonce, ciphertext, account_id, plan_type, email, expiry, last_refresh, version, relink_needed, relink_reason, updated, label, position, linked`

// scanToken reads user_id, account and tokenColumns.
func scanToken(r pgx.Row) (accountToken, error) {
	var at accountToken
	rec := &at.rec
	var expiry, lastRefresh, updated, linked pgtype.Timestamptz
	var version int64
	var position int32
	err := r.Scan(&at.ref.UserID, &at.ref.ID, &rec.KeyID, &rec.Nonce, &rec.Ciphertext, &rec.AccountID, &rec.PlanType, &rec.Email,
		&expiry, &lastRefresh, &version, &rec.RelinkNeeded, &rec.RelinkReason, &updated, &rec.Label, &position, &linked)
	rec.Expiry, rec.LastRefresh, rec.Updated, rec.Linked = fromTS(expiry), fromTS(lastRefresh), fromTS(updated), fromTS(linked)
	rec.Version, rec.Position = uint64(version), int(position)
	return at, err
}

// accountToken is a token record with its account.
type accountToken struct {
	ref vault.AccountRef
	rec vault.TokenRecord
}

// maxUpdateAttempts bounds UpdateTokens' retries after serialisation
// failures and deadlocks.
const maxUpdateAttempts = 5

// tokenSelect reads user_id, account and tokenColumns.
const tokenSelect = `SELECT user_id, account, ` + tokenColumns + ` FROM codex_tokens`

// GetTokens reads one account's token record.
func (s *Store) GetTokens(ctx context.Context, userID, accountID string) (vault.TokenRecord, error) {
	at, err := queryOne(s, ctx, "get tokens", tokenSelect+` WHERE user_id = $1 AND account = $2`, []any{userID, accountID}, scanToken)
	return at.rec, err
}

// ListTokens reads every token record.
func (s *Store) ListTokens(ctx context.Context) (map[vault.AccountRef]vault.TokenRecord, error) {
	all, err := query(s, ctx, "list tokens", tokenSelect, nil, scanToken)
	if err != nil {
		return nil, err
	}
	out := make(map[vault.AccountRef]vault.TokenRecord, len(all))
	for _, at := range all {
		out[at.ref] = at.rec
	}
	return out, nil
}

// ListUserTokens reads the records of one user's accounts.
func (s *Store) ListUserTokens(ctx context.Context, userID string) (map[string]vault.TokenRecord, error) {
	all, err := query(s, ctx, "list user tokens", tokenSelect+` WHERE user_id = $1`, []any{userID}, scanToken)
	if err != nil {
		return nil, err
	}
	out := make(map[string]vault.TokenRecord, len(all))
	for _, at := range all {
		out[at.ref.ID] = at.rec
	}
	return out, nil
}

// UpdateTokens is the compare-and-swap: in one transaction it locks the
// user's row (so it serialises with every other token write of the user,
// a first link included, and with deleting the user), reads the record
// FOR UPDATE, and writes what fn returns. A serialisation failure or
// deadlock runs the whole transaction again, fn included.
func (s *Store) UpdateTokens(ctx context.Context, userID, accountID string, fn func(cur *vault.TokenRecord) (*vault.TokenRecord, error)) error {
	var err error
	for attempt := 0; attempt < maxUpdateAttempts; attempt++ {
		err = s.tx(ctx, "update tokens", func(ctx context.Context, tx pgx.Tx) error {
			return updateTokens(ctx, tx, userID, accountID, fn)
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
func updateTokens(ctx context.Context, tx pgx.Tx, userID, accountID string, fn func(cur *vault.TokenRecord) (*vault.TokenRecord, error)) error {
	if err := lockUser(ctx, tx, userID); err != nil {
		return err
	}
	var cur *vault.TokenRecord
	at, err := scanToken(tx.QueryRow(ctx, tokenSelect+` WHERE user_id = $1 AND account = $2 FOR UPDATE`, userID, accountID))
	switch {
	case err == nil:
		cur = &at.rec
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
	if _, err := tx.Exec(ctx, `INSERT INTO codex_tokens (user_id, account, `+tokenColumns+`)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
ON CONFLICT (user_id, account) DO UPDATE SET
	seal_key_id = excluded.seal_key_id, nonce = excluded.nonce, ciphertext = excluded.ciphertext,
	account_id = excluded.account_id, plan_type = excluded.plan_type, email = excluded.email,
	expiry = excluded.expiry, last_refresh = excluded.last_refresh, version = excluded.version,
	relink_needed = excluded.relink_needed, relink_reason = excluded.relink_reason, updated = excluded.updated,
	label = excluded.label, position = excluded.position, linked = excluded.linked`,
		userID, accountID, next.KeyID, next.Nonce, next.Ciphertext, next.AccountID, next.PlanType, next.Email,
		ts(next.Expiry), ts(next.LastRefresh), int64(next.Version), next.RelinkNeeded, next.RelinkReason, ts(next.Updated),
		next.Label, int32(next.Position), ts(next.Linked)); err != nil {
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

// DeleteTokens forgets one account's record (its quota snapshot goes with
// it, a foreign key), serialised with UpdateTokens so a refresh that read
// the old record cannot write it back afterwards.
func (s *Store) DeleteTokens(ctx context.Context, userID, accountID string) error {
	err := s.tx(ctx, "delete tokens", func(ctx context.Context, tx pgx.Tx) error {
		if err := lockUser(ctx, tx, userID); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM codex_tokens WHERE user_id = $1 AND account = $2`, userID, accountID)
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
