package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/usemysub/caddy-codex-proxy/ops"
	"github.com/usemysub/caddy-codex-proxy/vault"
	"github.com/usemysub/caddy-codex-proxy/vault/migrate"
)

// `caddy codex-proxy vault migrate|backup`.

// migrateTimeout bounds a whole migration.
const migrateTimeout = 6 * time.Hour

// vaultCommand builds `vault migrate|backup`.
func (c *CLI) vaultCommand() *cobra.Command {
	migrate := command("migrate --from <bbolt file|postgres DSN> --to <postgres DSN|bbolt file> [--force] [--config <Caddyfile> | --encryption-key <key>...]",
		"Copies a whole vault between a bbolt file and PostgreSQL", c.vaultMigrate)
	migrate.Long = `
Copies everything in a vault to another storage engine, in either direction:
users, API keys with their policies and usage reset points, the sealed ChatGPT
logins as they are (nothing is decrypted to copy them), dashboard sessions,
login tokens, pending OAuth flows, quota snapshots, the request log with its
exact times and the usage roll-ups.

A bbolt source must not be open in a running Caddy: stop Caddy first, or take a
consistent copy with "vault backup" and migrate from the copy. The target must
be empty; --force deletes everything in it first.

Afterwards every kind is counted and compared record by record, and a sample of
the copied ChatGPT logins is decrypted with the encryption keys of --config (its
codex_proxy encryption_key, {env.*} expanded) or of --encryption-key; with
neither, the generated key beside a bbolt vault is used if there is one, else
the decrypt check is skipped with a warning.`
	migrate.Flags().String("from", "", "Vault to copy: a bbolt file or a postgres:// DSN (required)")
	migrate.Flags().String("to", "", "Where to copy it: a postgres:// DSN or a bbolt file (required)")
	migrate.Flags().Bool("force", false, "Delete everything in a non-empty target before copying")
	migrate.Flags().StringP("config", "c", "", "Config whose codex_proxy encryption_key checks the copy")
	migrate.Flags().StringP("adapter", "a", "", "Name of the config adapter to apply")
	migrate.Flags().String("vault", "", "Vault in --config whose keys to use, when it has several")
	migrate.Flags().StringArray("encryption-key", nil, "Encryption key that checks the copy (repeatable; {env.*} expanded)")
	_ = migrate.MarkFlagRequired("from")
	_ = migrate.MarkFlagRequired("to")

	backup := leaf("backup --config <Caddyfile> --out <file>", "Writes a consistent copy of a bbolt vault, Caddy running or not", c.vaultBackup)
	backup.Long = `
Writes a consistent copy of the codex_proxy vault file to --out (mode 0600) and
checks it by opening it. While Caddy runs, the copy comes through its local
admin API from the open database; when Caddy is stopped, from the file. For a
PostgreSQL vault it prints the pg_dump command that backs it up instead.`
	backup.Flags().String("out", "", "File to write the copy to; must not exist (required)")
	_ = backup.MarkFlagRequired("out")

	v := &cobra.Command{Use: "vault", Short: "Migrates a vault between storage engines and backs it up"}
	v.AddCommand(migrate, backup)
	return v
}

// vaultMigrate implements `caddy codex-proxy vault migrate`.
func (c *CLI) vaultMigrate(fl flags) error {
	from := strings.TrimSpace(c.Host.Expand(fl.String("from")))
	to := strings.TrimSpace(c.Host.Expand(fl.String("to")))
	if from == "" || to == "" {
		return errors.New("--from and --to must name a bbolt file or a postgres:// DSN (after {env.*} expansion)")
	}
	fromDSN, fromShown := c.Host.Describe(from)
	toDSN, toShown := c.Host.Describe(to)
	if !fromDSN && !toDSN {
		// bbolt to bbolt is a file copy; vault backup does it safely.
		fmt.Fprintln(c.Stderr, "note: both sides are bbolt files; `vault backup` copies a vault file too, Caddy running or not")
	}
	if c.sameVault(from, to) {
		return fmt.Errorf("--from and --to are the same vault (%s)", fromShown)
	}
	keys, keysFrom, err := c.migrateKeys(fl, from, to)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), migrateTimeout)
	defer cancel()

	src, err := c.openStore(ctx, from, true)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := c.openStore(ctx, to, false)
	if err != nil {
		return err
	}
	defer dst.Close()

	fmt.Fprintf(c.Stderr, "copying %s → %s\n", fromShown, toShown)
	res, err := ops.Migrate(ctx, src, dst, fl.Bool("force"))
	var ne *migrate.NotEmptyError
	switch {
	case errors.As(err, &ne):
		return fmt.Errorf("the target %s is not empty: it holds %s; nothing was copied. Run again with --force to delete all of that first", toShown, ne.Counts)
	case errors.Is(err, ops.ErrVerify):
		return err
	case err != nil:
		return fmt.Errorf("the copy stopped: %w; the target is incomplete: fix the cause and run again with --force", err)
	}
	tw := tabwriter.NewWriter(c.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tSOURCE\tCOPIED\tVERIFIED")
	for _, k := range vault.Kinds {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\n", k, res.Verified.Source[k], res.Copied[k], res.Verified.Matched[k])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range res.Verified.Problems {
		fmt.Fprintf(c.Stderr, "mismatch: %s\n", p)
	}
	if !res.Verified.OK() {
		return errors.New("the copy does not match the source (see above); run again with --force")
	}
	if err := c.checkDecrypts(ctx, dst, keys, keysFrom); err != nil {
		return err
	}
	fmt.Fprintf(c.Stderr, "done: point the codex_proxy vault at %s and start Caddy; %s is left as it was\n", toShown, fromShown)
	if toDSN && !fromDSN {
		if _, present := c.Host.GeneratedKey(from); present {
			fmt.Fprintf(c.Stderr, "note: a PostgreSQL vault takes encryption_key and api_key_pepper from the config only; if the bbolt vault used the generated ones in %s, put their contents in the config (e.g. {env.TOKEN_ENCRYPTION_KEY}, {env.API_KEY_PEPPER}) or the copied logins and API keys will not work\n",
				filepath.Dir(from))
		}
	}
	return nil
}

// sameVault reports whether two locations name the same vault.
func (c *CLI) sameVault(a, b string) bool {
	aDSN, _ := c.Host.Describe(a)
	bDSN, _ := c.Host.Describe(b)
	if aDSN || bDSN {
		return a == b
	}
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && aa == bb
}

// migrateKeys finds the encryption keys that check the copy and says
// where they came from; none is not an error.
func (c *CLI) migrateKeys(fl flags, from, to string) ([]string, string, error) {
	given, _ := fl.GetStringArray("encryption-key")
	var keys []string
	for _, k := range given {
		if k = strings.TrimSpace(c.Host.Expand(k)); k != "" {
			keys = append(keys, k)
		}
	}
	if len(given) > 0 {
		if len(keys) == 0 {
			return nil, "", errors.New("--encryption-key expands to nothing: set the environment variables it names")
		}
		if err := vault.CheckKeys(keys); err != nil {
			return nil, "", fmt.Errorf("--encryption-key: %w", err)
		}
		return keys, "--encryption-key", nil
	}
	if fl.String("config") != "" {
		loc, err := c.Host.Locate(fl.selection())
		if err != nil {
			return nil, "", err
		}
		if loc.KeysSet {
			if len(loc.EncryptionKeys) == 0 {
				return nil, "", errors.New("encryption_key in the config expands to nothing here: run this command with the same environment variables as Caddy")
			}
			if err := vault.CheckKeys(loc.EncryptionKeys); err != nil {
				return nil, "", fmt.Errorf("encryption_key: %w", err)
			}
			return loc.EncryptionKeys, "the config's encryption_key", nil
		}
		if !loc.DSN {
			if k, _ := c.Host.GeneratedKey(loc.Vault); k != "" {
				return []string{k}, "the generated key beside " + loc.Vault, nil
			}
		}
	}
	for _, l := range []string{from, to} {
		if dsn, _ := c.Host.Describe(l); !dsn {
			if k, _ := c.Host.GeneratedKey(l); k != "" {
				return []string{k}, "the generated key beside " + l, nil
			}
		}
	}
	return nil, "", nil
}

// checkDecrypts opens a sample of the copied token bundles with keys, or
// warns loudly that it could not.
func (c *CLI) checkDecrypts(ctx context.Context, dst vault.Store, keys []string, keysFrom string) error {
	res, err := ops.CheckDecrypts(ctx, dst, keys)
	switch {
	case err != nil:
		return err
	case res.Total == 0:
		return nil
	case len(keys) == 0:
		fmt.Fprintf(c.Stderr, "WARNING: the copied ChatGPT logins were NOT decrypt-checked: no encryption key known. Give --config <Caddyfile> or --encryption-key to check that they open with the keys Caddy will use.\n")
		return nil
	case len(res.Failed) > 0:
		return fmt.Errorf("%d of %d sampled ChatGPT logins do not decrypt with %s (users %s): the copy is as the source was, but Caddy with these keys could not use them",
			len(res.Failed), res.Checked, keysFrom, strings.Join(res.Failed, ", "))
	}
	fmt.Fprintf(c.Stderr, "decrypted %d of %d ChatGPT logins (a sample) with %s\n", res.Checked, res.Total, keysFrom)
	return nil
}

// openStore opens one side of a migration at the Store level: no Vault,
// so nothing is purged or loaded. A source bbolt file must exist.
func (c *CLI) openStore(ctx context.Context, location string, source bool) (vault.Store, error) {
	if dsn, _ := c.Host.Describe(location); !dsn {
		if source {
			if _, err := os.Stat(location); err != nil {
				return nil, fmt.Errorf("the source vault file: %w", err)
			}
		} else if err := os.MkdirAll(filepath.Dir(location), 0o700); err != nil {
			return nil, fmt.Errorf("the target's directory: %w", err)
		}
	}
	s, err := c.Host.OpenStore(ctx, location, c.OpenTimeout)
	if errors.Is(err, vault.ErrLocked) {
		if source {
			return nil, fmt.Errorf("the vault file %s is in use (a running Caddy holds its lock): stop Caddy, or use `caddy codex-proxy vault backup --config <Caddyfile> --out copy.db` and migrate from the copy", location)
		}
		return nil, fmt.Errorf("the target file %s is in use (a running Caddy holds its lock): stop Caddy first", location)
	}
	return s, err
}

// vaultBackup implements `caddy codex-proxy vault backup`.
func (c *CLI) vaultBackup(fl flags) error {
	loc, err := c.Host.Locate(fl.selection())
	if err != nil {
		return err
	}
	out := fl.String("out")
	if loc.DSN {
		file := out
		if file == "" {
			file = "codex-vault.dump"
		}
		fmt.Fprintf(c.Stdout, "pg_dump --dbname=%s --table='codex_*' --format=custom --file=%s\n", shellQuote(loc.Shown), shellQuote(file))
		return errors.New("a PostgreSQL vault is backed up with pg_dump: run the command above (its password masked: give it with PGPASSWORD or ~/.pgpass; restore with pg_restore); nothing was written")
	}
	if c.sameVault(out, loc.Vault) {
		return errors.New("--out is the vault file itself")
	}
	if _, err := os.Lstat(out); err == nil {
		return fmt.Errorf("%s already exists; a backup never overwrites a file", out)
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename, removes nothing
	defer tmp.Close()
	if err := tmp.Chmod(0o600); err != nil {
		return err
	}
	ctx := context.Background()
	var n int64
	via := ""
	if r, why := c.remote(ctx, loc); r != nil {
		via = "the admin API of the Caddy at " + loc.Admin
		n, err = r.Backup(ctx, tmp)
		_ = r.Close()
	} else {
		via = "the file (Caddy is not running with it)"
		n, err = c.backupFile(ctx, loc.Vault, tmp, why)
	}
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	counts, err := c.checkBackup(ctx, tmp.Name())
	if err != nil {
		return fmt.Errorf("the copy does not open as a vault (%w); nothing was written to %s", err, out)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return err
	}
	fmt.Fprintf(c.Stderr, "backed up %s through %s to %s (%d bytes, mode 0600); it opens and holds %s\n", loc.Vault, via, out, n, counts)
	return nil
}

// backupFile copies a vault file no Caddy holds.
func (c *CLI) backupFile(ctx context.Context, path string, w io.Writer, why error) (int64, error) {
	if _, err := os.Stat(path); err != nil {
		return 0, fmt.Errorf("the vault file: %w", err)
	}
	s, err := c.Host.OpenStore(ctx, path, c.OpenTimeout)
	if errors.Is(err, vault.ErrLocked) {
		return 0, fmt.Errorf("the vault %s is locked by another process, and its admin API could not be used (%v)", path, why)
	}
	if err != nil {
		return 0, err
	}
	defer s.Close()
	return ops.BackupStore(s, w)
}

// checkBackup opens a copied vault file and counts what it holds.
func (c *CLI) checkBackup(ctx context.Context, path string) (vault.Counts, error) {
	s, err := c.Host.OpenStore(ctx, path, c.OpenTimeout)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return ops.CountStore(ctx, s)
}
