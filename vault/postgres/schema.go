package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// Advisory-lock namespaces (the first key of the two-key form), so the
// vault's locks cannot collide with another application's on the same
// database. Each is four ASCII letters read as a big-endian int32.
const (
	lockClassVault   int32 = 0x63647876 // "cdxv": schema migration, log purge
	lockClassRefresh int32 = 0x63647872 // "cdxr": one user's token refresh
)

// Second keys in lockClassVault.
const (
	lockMigrate int32 = 1
	lockPurge   int32 = 2
)

// migration is one step of the schema. compatible is the oldest schema
// version whose code still works on the result: additive steps keep it, so
// instances of the previous version keep running during a rolling upgrade.
type migration struct {
	compatible int
	sql        string
}

// migrations[i] takes the schema from version i to i+1.
var migrations = []migration{
	{compatible: 1, sql: `
CREATE TABLE codex_users (
	id       text PRIMARY KEY,
	email    text NOT NULL CONSTRAINT codex_users_email_key UNIQUE,
	name     text NOT NULL DEFAULT '',
	created  timestamptz,
	disabled boolean NOT NULL DEFAULT false
);
CREATE TABLE codex_keys (
	id        text PRIMARY KEY,
	user_id   text NOT NULL REFERENCES codex_users (id) ON DELETE CASCADE,
	hash      bytea NOT NULL CONSTRAINT codex_keys_hash_key UNIQUE,
	prefix    text NOT NULL DEFAULT '',
	label     text NOT NULL DEFAULT '',
	created   timestamptz,
	last_used timestamptz,
	disabled  boolean NOT NULL DEFAULT false
);
CREATE INDEX codex_keys_user_idx ON codex_keys (user_id);
CREATE TABLE codex_tokens (
	user_id       text PRIMARY KEY REFERENCES codex_users (id) ON DELETE CASCADE,
	seal_key_id   text NOT NULL,
	nonce         bytea NOT NULL,
	ciphertext    bytea NOT NULL,
	account_id    text NOT NULL DEFAULT '',
	plan_type     text NOT NULL DEFAULT '',
	email         text NOT NULL DEFAULT '',
	expiry        timestamptz,
	last_refresh  timestamptz,
	version       bigint NOT NULL,
	relink_needed boolean NOT NULL DEFAULT false,
	relink_reason text NOT NULL DEFAULT '',
	updated       timestamptz
);
CREATE TABLE codex_sessions (
	key     bytea PRIMARY KEY,
	user_id text NOT NULL REFERENCES codex_users (id) ON DELETE CASCADE,
	created timestamptz,
	expires timestamptz NOT NULL
);
CREATE INDEX codex_sessions_expires_idx ON codex_sessions (expires);
CREATE TABLE codex_login_tokens (
	key     bytea PRIMARY KEY,
	email   text NOT NULL,
	expires timestamptz NOT NULL
);
CREATE TABLE codex_oauth_sessions (
	key                  bytea PRIMARY KEY,
	user_id              text NOT NULL,
	verifier_key_id      text NOT NULL DEFAULT '',
	verifier_nonce       bytea,
	verifier_ciphertext  bytea,
	expires              timestamptz NOT NULL
);
CREATE INDEX codex_oauth_sessions_user_idx ON codex_oauth_sessions (user_id);
CREATE TABLE codex_request_log (
	seq              bigint GENERATED ALWAYS AS IDENTITY, -- append order; no index of its own (ingest speed)
	time             timestamptz NOT NULL,
	user_id          text NOT NULL DEFAULT '',
	key_id           text NOT NULL DEFAULT '',
	request_id       text NOT NULL DEFAULT '',
	route            text NOT NULL DEFAULT '',
	model            text NOT NULL DEFAULT '',
	effort           text NOT NULL DEFAULT '',
	service_tier     text NOT NULL DEFAULT '',
	status           integer NOT NULL,
	duration_ns      bigint NOT NULL DEFAULT 0,
	ttfb_ns          bigint NOT NULL DEFAULT 0,
	input_tokens     bigint NOT NULL DEFAULT 0,
	output_tokens    bigint NOT NULL DEFAULT 0,
	cached_tokens    bigint NOT NULL DEFAULT 0,
	reasoning_tokens bigint NOT NULL DEFAULT 0,
	error_code       text NOT NULL DEFAULT ''
);
CREATE INDEX codex_request_log_time_idx ON codex_request_log (time, seq);
CREATE INDEX codex_request_log_user_idx ON codex_request_log (user_id, time, seq);
CREATE TABLE codex_usage (
	user_id          text NOT NULL,
	day              date NOT NULL,
	requests         bigint NOT NULL DEFAULT 0,
	errors           bigint NOT NULL DEFAULT 0,
	input_tokens     bigint NOT NULL DEFAULT 0,
	output_tokens    bigint NOT NULL DEFAULT 0,
	cached_tokens    bigint NOT NULL DEFAULT 0,
	reasoning_tokens bigint NOT NULL DEFAULT 0,
	PRIMARY KEY (user_id, day)
);
CREATE INDEX codex_usage_day_idx ON codex_usage (day);
CREATE TABLE codex_quotas (
	user_id  text PRIMARY KEY REFERENCES codex_users (id) ON DELETE CASCADE,
	snapshot jsonb NOT NULL
);
`},
	// Per-key policies (keypolicy.Policy as JSON) and usage reset points.
	// Additive: instances of schema 1 keep running beside it.
	{compatible: 1, sql: `
ALTER TABLE codex_keys ADD COLUMN policy jsonb;
ALTER TABLE codex_keys ADD COLUMN usage_reset timestamptz;
`},
	// Each key's tokens per UTC day, so token budgets hold for the total
	// of every instance (key_usage.go); filled from the last 8 days of the
	// request log. Additive: instances of schema 1 and 2 keep running
	// beside it (without adding to it).
	{compatible: 1, sql: keyUsageSchema},
	// Several ChatGPT accounts per user: a token bundle (and its quota
	// snapshot) per (user, account); each user's one bundle becomes their
	// account 1. Its ciphertext moves as it is: it stays bound to the user
	// alone until the vault re-seals it bound to the account at its next
	// start. Not additive: instances of schema 3 and older write tokens by user and
	// must be stopped first (compatible 4).
	{compatible: 4, sql: `
ALTER TABLE codex_tokens ADD COLUMN account text;
UPDATE codex_tokens SET account = substr(md5(user_id || ':' || random()::text || ':' || clock_timestamp()::text), 1, 12);
ALTER TABLE codex_tokens ALTER COLUMN account SET NOT NULL;
ALTER TABLE codex_tokens ADD COLUMN label text NOT NULL DEFAULT '';
ALTER TABLE codex_tokens ADD COLUMN position integer NOT NULL DEFAULT 1;
ALTER TABLE codex_tokens ADD COLUMN linked timestamptz;
UPDATE codex_tokens SET linked = COALESCE(updated, last_refresh);
ALTER TABLE codex_tokens DROP CONSTRAINT codex_tokens_pkey;
ALTER TABLE codex_tokens ADD PRIMARY KEY (user_id, account);
ALTER TABLE codex_quotas ADD COLUMN account text;
UPDATE codex_quotas q SET account = t.account FROM codex_tokens t WHERE t.user_id = q.user_id;
DELETE FROM codex_quotas WHERE account IS NULL;
ALTER TABLE codex_quotas ALTER COLUMN account SET NOT NULL;
ALTER TABLE codex_quotas DROP CONSTRAINT codex_quotas_pkey;
ALTER TABLE codex_quotas ADD PRIMARY KEY (user_id, account);
ALTER TABLE codex_quotas ADD CONSTRAINT codex_quotas_account_fkey
	FOREIGN KEY (user_id, account) REFERENCES codex_tokens (user_id, account) ON DELETE CASCADE;
ALTER TABLE codex_users ADD COLUMN account_policy text NOT NULL DEFAULT '';
ALTER TABLE codex_request_log ADD COLUMN account text NOT NULL DEFAULT '';
ALTER TABLE codex_request_log ADD COLUMN failover_from text NOT NULL DEFAULT '';
`},
	// Token counts the proxy estimated (a generation that ended without the
	// upstream's usage). Additive, with a default: instances of schema 4
	// keep writing (compatible 4).
	{compatible: 4, sql: `
ALTER TABLE codex_request_log ADD COLUMN estimated boolean NOT NULL DEFAULT false;
`},
	// The instances on the database and the encryption keys each holds
	// (vault.InstanceRegistry, instances.go). Additive: instances of
	// schema 5 keep running beside it, unregistered (compatible 4).
	{compatible: 4, sql: instancesSchema},
	// Stored responses (responses.go). Additive: instances of schema 6
	// keep running beside it (compatible 4).
	{compatible: 4, sql: responsesSchema},
	// Sessions that an OpenID Connect sign-in made admin by its claim
	// (vault.SessionRecord.AdminByClaim). Additive, with a default:
	// instances of schema 7 keep running beside it (compatible 4), their
	// sessions members'. IF NOT EXISTS: the column is the same whichever
	// branch of the dashboard's single sign-on and roles adds it first.
	{compatible: 4, sql: `
ALTER TABLE codex_sessions ADD COLUMN IF NOT EXISTS admin_by_claim boolean NOT NULL DEFAULT false;
`},
	// Operator settings (settings.go: the sign-up override). Additive:
	// instances of schema 8 keep running beside it (compatible 4), with
	// the Caddyfile's sign-up policy.
	{compatible: 4, sql: settingsSchema},
	// The service tier a request asked for (vault.LogRecord.RequestedTier),
	// beside the one sent (service_tier). Additive, with a default:
	// instances of schemas 8 and 9 keep writing (compatible 4), their records
	// without it.
	{compatible: 4, sql: `
ALTER TABLE codex_request_log ADD COLUMN IF NOT EXISTS requested_tier text NOT NULL DEFAULT '';
`},
	// The audit log (audit.go). Additive: instances of schema 10 keep
	// running beside it, writing no entries (compatible 4).
	{compatible: 4, sql: auditSchema},
}

// SchemaVersion is the schema this code writes.
var SchemaVersion = len(migrations)

// migrate brings the schema to SchemaVersion in one transaction, under an
// advisory lock so instances starting together migrate once, one after
// the other. A schema newer than this code is accepted if it declares this
// version compatible, refused with vault.ErrSchemaTooNew otherwise.
func (s *Store) migrate(ctx context.Context) error {
	return s.migrateTo(ctx, migrations)
}

// migrateTo is migrate with the list of steps, for tests.
func (s *Store) migrateTo(ctx context.Context, steps []migration) error {
	// A migration on a large request log may take longer than a query.
	cctx, cancel := context.WithTimeout(ctx, 10*s.opts.QueryTimeout)
	defer cancel()
	err := pgx.BeginFunc(cctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(cctx, `SELECT pg_advisory_xact_lock($1, $2)`, lockClassVault, lockMigrate); err != nil {
			return err
		}
		if _, err := tx.Exec(cctx, `CREATE TABLE IF NOT EXISTS codex_proxy_schema (
	version    integer NOT NULL,
	compatible integer NOT NULL,
	updated    timestamptz NOT NULL DEFAULT now()
)`); err != nil {
			return err
		}
		var version, compatible int
		err := tx.QueryRow(cctx, `SELECT version, compatible FROM codex_proxy_schema`).Scan(&version, &compatible)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			if _, err := tx.Exec(cctx, `INSERT INTO codex_proxy_schema (version, compatible) VALUES (0, 0)`); err != nil {
				return err
			}
		case err != nil:
			return err
		}
		if version > len(steps) {
			if compatible > len(steps) {
				return fmt.Errorf("%w: schema version %d needs at least version %d of this code's schema, which is %d",
					vault.ErrSchemaTooNew, version, compatible, len(steps))
			}
			return nil
		}
		for v := version; v < len(steps); v++ {
			if _, err := tx.Exec(cctx, steps[v].sql); err != nil {
				return fmt.Errorf("migrating to schema version %d: %w", v+1, err)
			}
			if _, err := tx.Exec(cctx, `UPDATE codex_proxy_schema SET version = $1, compatible = $2, updated = now()`, v+1, steps[v].compatible); err != nil {
				return err
			}
			s.opts.Logger.Info("vault: PostgreSQL schema migrated", "version", v+1)
		}
		return nil
	})
	return s.fail(ctx, "migrate schema", err)
}
