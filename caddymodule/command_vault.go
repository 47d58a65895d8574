package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/usemysub/caddy-codex-proxy/vault"
	"github.com/usemysub/caddy-codex-proxy/vault/bolt"
	"github.com/usemysub/caddy-codex-proxy/vault/engine"
	"github.com/usemysub/caddy-codex-proxy/vault/migrate"
	"github.com/usemysub/caddy-codex-proxy/vault/postgres"
)

// Bounds of the vault commands.
const (
	// migrateTimeout bounds a whole migration.
	migrateTimeout = 6 * time.Hour
	// backupTimeout bounds streaming a backup from the admin API.
	backupTimeout = time.Hour
	// decryptSample is how many copied ChatGPT logins migrate decrypts.
	decryptSample = 10
)

// registerVault adds `caddy codex-proxy vault migrate|backup`.
func (c *cli) registerVault(cmd *cobra.Command) {
	migrate := &cobra.Command{
		Use:   "migrate --from <bbolt file|postgres DSN> --to <postgres DSN|bbolt file> [--force] [--config <Caddyfile> | --encryption-key <key>...]",
		Short: "Copies a whole vault between a bbolt file and PostgreSQL",
		Long: `
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
the decrypt check is skipped with a warning.`,
		Args: cobra.NoArgs,
		RunE: caddycmd.WrapCommandFuncForCobra(c.vaultMigrate),
	}
	migrate.Flags().String("from", "", "Vault to copy: a bbolt file or a postgres:// DSN (required)")
	migrate.Flags().String("to", "", "Where to copy it: a postgres:// DSN or a bbolt file (required)")
	migrate.Flags().Bool("force", false, "Delete everything in a non-empty target before copying")
	migrate.Flags().StringP("config", "c", "", "Config whose codex_proxy encryption_key checks the copy")
	migrate.Flags().StringP("adapter", "a", "", "Name of the config adapter to apply")
	migrate.Flags().String("vault", "", "Vault in --config whose keys to use, when it has several")
	migrate.Flags().StringArray("encryption-key", nil, "Encryption key that checks the copy (repeatable; {env.*} expanded)")
	_ = migrate.MarkFlagRequired("from")
	_ = migrate.MarkFlagRequired("to")

	backup := c.leaf("backup --config <Caddyfile> --out <file>", "Writes a consistent copy of a bbolt vault, Caddy running or not", c.vaultBackup)
	backup.Long = `
Writes a consistent copy of the codex_proxy vault file to --out (mode 0600) and
checks it by opening it. While Caddy runs, the copy comes through its local
admin API from the open database; when Caddy is stopped, from the file. For a
PostgreSQL vault it prints the pg_dump command that backs it up instead.`
	backup.Flags().String("out", "", "File to write the copy to; must not exist (required)")
	_ = backup.MarkFlagRequired("out")

	v := &cobra.Command{Use: "vault", Short: "Migrates a vault between storage engines and backs it up"}
	v.AddCommand(migrate, backup)
	cmd.AddCommand(v)
}

// vaultMigrate implements `caddy codex-proxy vault migrate`.
func (c *cli) vaultMigrate(fl caddycmd.Flags) (int, error) {
	repl := caddy.NewReplacer()
	from := strings.TrimSpace(repl.ReplaceAll(fl.String("from"), ""))
	to := strings.TrimSpace(repl.ReplaceAll(fl.String("to"), ""))
	if from == "" || to == "" {
		return exitFailed, errors.New("--from and --to must name a bbolt file or a postgres:// DSN (after {env.*} expansion)")
	}
	if !engine.IsDSN(from) && !engine.IsDSN(to) {
		// bbolt to bbolt is a file copy; vault backup does it safely.
		fmt.Fprintln(c.stderr, "note: both sides are bbolt files; `vault backup` copies a vault file too, Caddy running or not")
	}
	if sameVault(from, to) {
		return exitFailed, fmt.Errorf("--from and --to are the same vault (%s)", engine.Display(from))
	}
	keys, keysFrom, err := c.migrateKeys(fl, from, to)
	if err != nil {
		return exitFailed, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), migrateTimeout)
	defer cancel()

	src, err := c.openStore(ctx, from, true)
	if err != nil {
		return exitFailed, err
	}
	defer src.Close()
	dst, err := c.openStore(ctx, to, false)
	if err != nil {
		return exitFailed, err
	}
	defer dst.Close()

	fmt.Fprintf(c.stderr, "copying %s → %s\n", engine.Display(from), engine.Display(to))
	copied, err := migrate.Copy(ctx, src, dst, migrate.Options{Replace: fl.Bool("force")})
	var ne *migrate.NotEmptyError
	if errors.As(err, &ne) {
		return exitFailed, fmt.Errorf("the target %s is not empty: it holds %s; nothing was copied. Run again with --force to delete all of that first",
			engine.Display(to), ne.Counts)
	}
	if err != nil {
		return exitFailed, fmt.Errorf("the copy stopped: %w; the target is incomplete: fix the cause and run again with --force", err)
	}
	v, err := migrate.Verify(ctx, src, dst)
	if err != nil {
		return exitFailed, fmt.Errorf("verifying the copy: %w", err)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tSOURCE\tCOPIED\tVERIFIED")
	for _, k := range vault.Kinds {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\n", k, v.Source[k], copied[k], v.Matched[k])
	}
	if err := tw.Flush(); err != nil {
		return exitFailed, err
	}
	for _, p := range v.Problems {
		fmt.Fprintf(c.stderr, "mismatch: %s\n", p)
	}
	if !v.OK() {
		return exitFailed, errors.New("the copy does not match the source (see above); run again with --force")
	}
	if err := c.checkDecrypts(ctx, dst, keys, keysFrom); err != nil {
		return exitFailed, err
	}
	fmt.Fprintf(c.stderr, "done: point the codex_proxy vault at %s and start Caddy; %s is left as it was\n", engine.Display(to), engine.Display(from))
	if engine.IsDSN(to) && !engine.IsDSN(from) {
		if _, err := os.Stat(filepath.Join(filepath.Dir(from), vault.EncryptionKeyFile)); err == nil {
			fmt.Fprintf(c.stderr, "note: a PostgreSQL vault takes encryption_key and api_key_pepper from the config only; if the bbolt vault used the generated ones in %s, put their contents in the config (e.g. {env.TOKEN_ENCRYPTION_KEY}, {env.API_KEY_PEPPER}) or the copied logins and API keys will not work\n",
				filepath.Dir(from))
		}
	}
	return 0, nil
}

// sameVault reports whether two locations name the same vault.
func sameVault(a, b string) bool {
	if engine.IsDSN(a) || engine.IsDSN(b) {
		return a == b
	}
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && aa == bb
}

// migrateKeys finds the encryption keys that check the copy and says
// where they came from; none is not an error.
func (c *cli) migrateKeys(fl caddycmd.Flags, from, to string) ([]string, string, error) {
	repl := caddy.NewReplacer()
	given, _ := fl.GetStringArray("encryption-key")
	var keys []string
	for _, k := range given {
		if k = strings.TrimSpace(repl.ReplaceAll(k, "")); k != "" {
			keys = append(keys, k)
		}
	}
	if len(given) > 0 {
		if len(keys) == 0 {
			return nil, "", errors.New("--encryption-key expands to nothing: set the environment variables it names")
		}
		if err := vault.CheckKeys(keys); err != nil {
			return nil, "", fmt.Errorf("--encryption-key: %v", err)
		}
		return keys, "--encryption-key", nil
	}
	if fl.String("config") != "" {
		t, err := loadTarget(fl.String("config"), fl.String("adapter"), fl.String("vault"))
		if err != nil {
			return nil, "", err
		}
		if t.vault.keysSet {
			if len(t.vault.EncryptionKeys) == 0 {
				return nil, "", errors.New("encryption_key in the config expands to nothing here: run this command with the same environment variables as Caddy")
			}
			if err := vault.CheckKeys(t.vault.EncryptionKeys); err != nil {
				return nil, "", fmt.Errorf("encryption_key: %v", err)
			}
			return t.vault.EncryptionKeys, "the config's encryption_key", nil
		}
		if !engine.IsDSN(t.vault.Path) {
			if k := readGeneratedKey(t.vault.Path); k != "" {
				return []string{k}, "the generated key beside " + t.vault.Path, nil
			}
		}
	}
	for _, loc := range []string{from, to} {
		if !engine.IsDSN(loc) {
			if k := readGeneratedKey(loc); k != "" {
				return []string{k}, "the generated key beside " + loc, nil
			}
		}
	}
	return nil, "", nil
}

// readGeneratedKey reads the generated encryption key beside a bbolt
// vault without creating one; "" if there is none.
func readGeneratedKey(vaultPath string) string {
	b, err := os.ReadFile(filepath.Join(filepath.Dir(vaultPath), vault.EncryptionKeyFile))
	if err != nil {
		return ""
	}
	k := strings.TrimSpace(string(b))
	if vault.CheckKeys([]string{k}) != nil {
		return ""
	}
	return k
}

// checkDecrypts opens a sample of the copied token bundles with keys, or
// warns loudly that it could not.
func (c *cli) checkDecrypts(ctx context.Context, dst vault.Store, keys []string, keysFrom string) error {
	all, err := dst.ListTokens(ctx)
	if err != nil {
		return fmt.Errorf("reading the copied ChatGPT logins: %w", err)
	}
	if len(all) == 0 {
		return nil
	}
	if len(keys) == 0 {
		fmt.Fprintf(c.stderr, "WARNING: the copied ChatGPT logins were NOT decrypt-checked: no encryption key known. Give --config <Caddyfile> or --encryption-key to check that they open with the keys Caddy will use.\n")
		return nil
	}
	refs := make([]vault.AccountRef, 0, len(all))
	for ref := range all {
		refs = append(refs, ref)
	}
	slices.SortFunc(refs, func(a, b vault.AccountRef) int { return strings.Compare(a.String(), b.String()) })
	step := max(1, len(refs)/decryptSample)
	checked, failed := 0, []string{}
	for i := 0; i < len(refs) && checked < decryptSample; i += step {
		checked++
		if err := vault.CheckTokenRecord(keys, refs[i], all[refs[i]]); err != nil {
			failed = append(failed, refs[i].UserID)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d sampled ChatGPT logins do not decrypt with %s (users %s): the copy is as the source was, but Caddy with these keys could not use them",
			len(failed), checked, keysFrom, strings.Join(failed, ", "))
	}
	fmt.Fprintf(c.stderr, "decrypted %d of %d ChatGPT logins (a sample) with %s\n", checked, len(all), keysFrom)
	return nil
}

// openStore opens one side of a migration at the Store level: no Vault,
// so nothing is purged or loaded. A source bbolt file must exist.
func (c *cli) openStore(ctx context.Context, location string, source bool) (vault.Store, error) {
	if engine.IsDSN(location) {
		s, err := postgres.Open(ctx, location, postgres.Options{QueryTimeout: time.Minute})
		if err != nil {
			return nil, fmt.Errorf("opening %s: %w", engine.Display(location), err)
		}
		return s, nil
	}
	if source {
		if _, err := os.Stat(location); err != nil {
			return nil, fmt.Errorf("the source vault file: %w", err)
		}
	} else if err := os.MkdirAll(filepath.Dir(location), 0o700); err != nil {
		return nil, fmt.Errorf("the target's directory: %v", err)
	}
	s, err := bolt.Open(location, bolt.Options{Timeout: c.openTimeout})
	if errors.Is(err, vault.ErrLocked) {
		if source {
			return nil, fmt.Errorf("the vault file %s is in use (a running Caddy holds its lock): stop Caddy, or use `caddy codex-proxy vault backup --config <Caddyfile> --out copy.db` and migrate from the copy", location)
		}
		return nil, fmt.Errorf("the target file %s is in use (a running Caddy holds its lock): stop Caddy first", location)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// vaultBackup implements `caddy codex-proxy vault backup`.
func (c *cli) vaultBackup(fl caddycmd.Flags) (int, error) {
	t, err := loadTarget(fl.String("config"), fl.String("adapter"), fl.String("vault"))
	if err != nil {
		return exitFailed, err
	}
	out := fl.String("out")
	if engine.IsDSN(t.vault.Path) {
		file := out
		if file == "" {
			file = "codex-vault.dump"
		}
		fmt.Fprintf(c.stdout, "pg_dump --dbname=%s --table='codex_*' --format=custom --file=%s\n",
			shellQuote(engine.Display(t.vault.Path)), shellQuote(file))
		return exitFailed, errors.New("a PostgreSQL vault is backed up with pg_dump: run the command above (its password masked: give it with PGPASSWORD or ~/.pgpass; restore with pg_restore); nothing was written")
	}
	if sameVault(out, t.vault.Path) {
		return exitFailed, errors.New("--out is the vault file itself")
	}
	if _, err := os.Lstat(out); err == nil {
		return exitFailed, fmt.Errorf("%s already exists; a backup never overwrites a file", out)
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*.tmp")
	if err != nil {
		return exitFailed, err
	}
	defer os.Remove(tmp.Name()) // after the rename, removes nothing
	defer tmp.Close()
	if err := tmp.Chmod(0o600); err != nil {
		return exitFailed, err
	}
	var n int64
	via := ""
	if ac, why := c.adminHolding(t); ac != nil {
		via = "the admin API of the Caddy at " + t.admin
		n, err = ac.download(adminPrefix+"backup", url.Values{"vault": {t.vault.Path}}, tmp)
	} else {
		via = "the file (Caddy is not running with it)"
		n, err = c.backupFile(t.vault.Path, tmp, why)
	}
	if err != nil {
		return exitFailed, fmt.Errorf("backup: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return exitFailed, err
	}
	if err := tmp.Close(); err != nil {
		return exitFailed, err
	}
	counts, err := checkBackup(tmp.Name(), c.openTimeout)
	if err != nil {
		return exitFailed, fmt.Errorf("the copy does not open as a vault (%v); nothing was written to %s", err, out)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return exitFailed, err
	}
	fmt.Fprintf(c.stderr, "backed up %s through %s to %s (%d bytes, mode 0600); it opens and holds %s\n", t.vault.Path, via, out, n, counts)
	return 0, nil
}

// adminHolding returns a client for the Caddy that has the vault open, or
// nil and why not.
func (c *cli) adminHolding(t target) (*adminClient, error) {
	if t.admin == "" {
		return nil, errors.New("the admin endpoint is off in the config")
	}
	ac, err := newAdminClient(t.admin)
	if err == nil {
		err = ac.holds(t.vault.Path)
	}
	if err != nil {
		return nil, fmt.Errorf("admin endpoint %s: %w", t.admin, err)
	}
	return ac, nil
}

// backupFile copies a vault file no Caddy holds, through a read
// transaction of its own.
func (c *cli) backupFile(path string, w io.Writer, why error) (int64, error) {
	if _, err := os.Stat(path); err != nil {
		return 0, fmt.Errorf("the vault file: %w", err)
	}
	s, err := bolt.Open(path, bolt.Options{Timeout: c.openTimeout})
	if errors.Is(err, vault.ErrLocked) {
		return 0, fmt.Errorf("the vault %s is locked by another process, and its admin API could not be used (%v)", path, why)
	}
	if err != nil {
		return 0, err
	}
	defer s.Close()
	return s.Backup(w)
}

// checkBackup opens a copied vault file and counts what it holds.
func checkBackup(path string, timeout time.Duration) (vault.Counts, error) {
	s, err := bolt.Open(path, bolt.Options{Timeout: timeout})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if _, err := s.ListUsers(context.Background()); err != nil {
		return nil, err
	}
	return s.Count(context.Background())
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// download streams the answer of a GET to w; an error answer becomes a
// caddy.APIError with the endpoint's message, as with do.
func (c *adminClient) download(path string, q url.Values, w io.Writer) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), backupTimeout)
	defer cancel()
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	if c.origin != "" {
		req.Header.Set("Origin", c.origin)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return 0, apiErr(resp.StatusCode, errors.New(e.Error))
		}
		return 0, apiErr(resp.StatusCode, fmt.Errorf("the admin endpoint answered HTTP %d", resp.StatusCode))
	}
	n, err := io.Copy(w, resp.Body)
	if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
		err = fmt.Errorf("the admin API sent %d of %d bytes", n, resp.ContentLength)
	}
	return n, err
}
