// Package vault is the proxy's persistent state: users, API keys, encrypted
// ChatGPT token bundles, dashboard sessions, login tokens, OAuth sessions,
// request logs and per-day usage roll-ups, all in one bbolt file.
//
// It also owns the token broker ([Vault.AccessToken]): the single place
// that decides when a user's ChatGPT access token must be refreshed, makes
// sure only one refresh per user is in flight, and persists the rotated
// refresh token before anyone uses the new access token.
//
// The hot paths ([Vault.VerifyKey], [Vault.AccessToken] with a fresh token and
// [Vault.LogRequest]) never touch the disk: keys and decrypted tokens are kept
// in memory, last-used times and request logs are written by background
// goroutines.
//
// Secrets (API keys, tokens, the pepper, encryption keys, session tokens)
// never appear in errors, logs or String() output.
//
// bbolt holds an exclusive lock on the file: only one *Vault per file may be
// open at a time, in any process. Share one *Vault across config reloads.
package vault
