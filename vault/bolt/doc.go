// Package bolt is the vault's single-file storage engine: a vault.Store on
// one bbolt database, the default for a single Caddy. bbolt locks the file,
// so one process at a time holds it; a second open waits Options.Timeout
// and fails with an error matching vault.ErrLocked. vault/postgres is the
// engine for several instances sharing one vault; vault/engine picks
// between the two from a location.
package bolt
