package bolt

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// Bucket names. Keys inside are documented where each bucket is used.
var (
	bucketMeta          = []byte("meta")
	bucketUsers         = []byte("users")          // user id → User
	bucketUsersByEmail  = []byte("users_by_email") // normalised email → user id
	bucketKeys          = []byte("keys")           // key id → keyRecord
	bucketKeysByUser    = []byte("keys_by_user")   // user id \x00 key id → nil
	bucketTokens        = []byte("tokens")         // user id \x00 account id → tokenRecord (schema 3; user id before)
	bucketSessions      = []byte("sessions")       // sha256(token) → sessionRecord
	bucketLoginTokens   = []byte("login_tokens")   // sha256(token) → loginRecord
	bucketOAuthSessions = []byte("oauth_sessions") // sha256(state) → oauthRecord
	bucketRequests      = []byte("requests")       // time ‖ seq → LogRecord
	bucketRequestsByUsr = []byte("requests_by_user")
	bucketUsage         = []byte("usage")          // user id \x00 YYYY-MM-DD → DayUsage
	bucketKeysByHash    = []byte("keys_by_hash")   // key HMAC → key id (schema 2)
	bucketQuotas        = []byte("quotas")         // user id \x00 account id → QuotaSnapshot (schema 3; user id in 2)
	bucketResponses     = []byte("responses")      // user id \x00 response id → ResponseRecord (schema 5)
	bucketResponseItems = []byte("response_items") // user id \x00 item id → response id (schema 5)
	bucketKeyUsage      = []byte("key_usage")      // key id \x00 YYYY-MM-DD → tokens (schema 4)
	bucketSettings      = []byte("settings")       // setting name → the Vault's JSON (schema 6)
	bucketAudit         = []byte("audit")          // audit id (time-sortable) → AuditEntry (schema 7)
)

// keySchemaVersion stores the version the file has been migrated to.
var keySchemaVersion = []byte("schema_version")

// migration moves a file from version to-1 to version to.
type migration struct {
	to   uint64
	name string
	fn   func(tx *bbolt.Tx) error
}

// migrations run in order, each in its own transaction. Append only: a
// released migration never changes.
var migrations = []migration{
	{to: 1, name: "create buckets", fn: func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{
			bucketUsers, bucketUsersByEmail, bucketKeys, bucketKeysByUser,
			bucketTokens, bucketSessions, bucketLoginTokens, bucketOAuthSessions,
			bucketRequests, bucketRequestsByUsr, bucketUsage,
		} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	}},
	{to: 2, name: "index keys by hash; quota snapshots", fn: func(tx *bbolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketQuotas); err != nil {
			return err
		}
		idx, err := tx.CreateBucketIfNotExists(bucketKeysByHash)
		if err != nil {
			return err
		}
		return tx.Bucket(bucketKeys).ForEach(func(id, data []byte) error {
			var rec vault.KeyRecord
			if err := json.Unmarshal(data, &rec); err != nil {
				return fmt.Errorf("key record %q: %w", id, err)
			}
			if len(rec.Hash) == 0 {
				return nil
			}
			return idx.Put(rec.Hash, id)
		})
	}},
	{to: 3, name: "several ChatGPT accounts per user", fn: migrateAccounts},
	{to: 4, name: "token usage per key and day", fn: fillKeyUsage},
	{to: 5, name: "stored responses", fn: func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bucketResponses, bucketResponseItems} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	}},
	{to: 6, name: "operator settings", fn: func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketSettings)
		return err
	}},
	{to: 7, name: "audit log", fn: func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketAudit)
		return err
	}},
}

// migrateAccounts moves each user's one token bundle to their account 1
// (a new account id, position 1) and its quota snapshot with it. The
// bundle's ciphertext is moved as it is: it stays bound to the user alone
// until the vault re-seals it bound to the account (Vault.loadTokens).
func migrateAccounts(tx *bbolt.Tx) error {
	tokens, quotas := tx.Bucket(bucketTokens), tx.Bucket(bucketQuotas)
	type moved struct {
		user string
		rec  vault.TokenRecord
	}
	var all []moved
	err := tokens.ForEach(func(k, data []byte) error {
		if bytes.IndexByte(k, 0) >= 0 {
			return nil // migrated already
		}
		var rec vault.TokenRecord
		if err := json.Unmarshal(data, &rec); err != nil {
			return fmt.Errorf("token record %q: %w", k, err)
		}
		all = append(all, moved{user: string(k), rec: rec})
		return nil
	})
	if err != nil {
		return err
	}
	for _, m := range all {
		id := vault.NewAccountID()
		m.rec.Position = 1
		if m.rec.Linked.IsZero() {
			m.rec.Linked = m.rec.Updated
		}
		if err := putJSON(tokens, accountKey(m.user, id), m.rec); err != nil {
			return err
		}
		if err := tokens.Delete([]byte(m.user)); err != nil {
			return err
		}
		if q := quotas.Get([]byte(m.user)); q != nil {
			if err := quotas.Put(accountKey(m.user, id), bytes.Clone(q)); err != nil {
				return err
			}
		}
	}
	// Snapshots of users without tokens belong to no account.
	var stale [][]byte
	_ = quotas.ForEach(func(k, _ []byte) error {
		if bytes.IndexByte(k, 0) < 0 {
			stale = append(stale, bytes.Clone(k))
		}
		return nil
	})
	for _, k := range stale {
		if err := quotas.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// latestSchema is the version a file has once every migration ran.
func latestSchema() uint64 { return migrations[len(migrations)-1].to }

// schemaVersion reads the stored version; 0 for a new file.
func schemaVersion(tx *bbolt.Tx) uint64 {
	b := tx.Bucket(bucketMeta)
	if b == nil {
		return 0
	}
	v := b.Get(keySchemaVersion)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// migrate brings the file up to latestSchema, refusing files from the future.
func (s *Store) migrate() error {
	var cur uint64
	if err := s.db.View(func(tx *bbolt.Tx) error { cur = schemaVersion(tx); return nil }); err != nil {
		return err
	}
	if cur > latestSchema() {
		return fmt.Errorf("%w (file schema %d, this build knows %d)", vault.ErrSchemaTooNew, cur, latestSchema())
	}
	for _, m := range migrations {
		if m.to <= cur {
			continue
		}
		err := s.update(func(tx *bbolt.Tx) error {
			meta, err := tx.CreateBucketIfNotExists(bucketMeta)
			if err != nil {
				return err
			}
			if err := m.fn(tx); err != nil {
				return err
			}
			var buf [8]byte
			binary.BigEndian.PutUint64(buf[:], m.to)
			return meta.Put(keySchemaVersion, buf[:])
		})
		if err != nil {
			return fmt.Errorf("vault: migration to schema %d (%s): %w", m.to, m.name, err)
		}
		s.log.Info("vault schema migrated", "version", m.to, "migration", m.name)
	}
	return nil
}
