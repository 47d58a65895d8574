// Package vault is the proxy's persistent state: users, API keys, encrypted
// ChatGPT token bundles, dashboard sessions, login tokens, OAuth sessions,
// request logs, per-day usage roll-ups and the latest upstream quota
// snapshot per user.
//
// It also owns the token broker ([Vault.AccessToken]): the single place
// that decides when a user's ChatGPT access token must be refreshed, makes
// sure only one refresh per user is in flight, and persists the rotated
// refresh token before anyone uses the new access token.
//
// The hot paths ([Vault.VerifyKey], [Vault.AccessToken] with a fresh token,
// [Vault.LogRequest] and [Vault.RecordQuota]) never touch storage: keys,
// decrypted tokens and quota snapshots are kept in memory; last-used times,
// request logs and quota snapshots are written by background goroutines.
//
// Storage sits behind the [Store] interface, implemented by the engines in
// their own packages: vault/bolt (one file) and vault/postgres; [New] takes
// any of them, and vault/engine opens the one a location names. vault
// imports no engine. Encryption, key
// hashing, the broker's rules and log batching are done here, once, above
// the interface: a Store only ever sees sealed bundles and hashes. The
// vault/storetest package is the contract an engine must pass.
//
// Secrets (API keys, tokens, the pepper, encryption keys, session tokens)
// never appear in errors, logs or String() output.
//
// bbolt holds an exclusive lock on the file: only one *Vault per file may be
// open at a time, in any process (a second open fails with [ErrLocked]).
// Share one *Vault across config reloads, and change its settings with
// [Vault.Reconfigure].
package vault
