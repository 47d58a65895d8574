package caddymodule

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
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
	"github.com/usemysub/caddy-codex-proxy/vault/engine"
)

func init() {
	c := &cli{stdout: os.Stdout, stderr: os.Stderr, stdin: os.Stdin, openTimeout: defaultCLIOpenTimeout}
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "codex-proxy",
		Usage: "provision|keys|users ...",
		Short: "Manages the users and API keys of the codex_proxy handler",
		Long: `
Manages the users and API keys of the codex_proxy handler.

  caddy codex-proxy provision --config <Caddyfile> --email <e> [--display-name <n>] [--auth-file <path>] [--label <l>]
  caddy codex-proxy keys list   --email <e> [--json]
  caddy codex-proxy keys create --email <e> [--label <l>] [policy flags]
  caddy codex-proxy keys update --email <e> --id <key id> [policy flags] [--reset-usage]
  caddy codex-proxy keys revoke --email <e> --id <key id>
  caddy codex-proxy users list

Policy flags (all optional; none means no limit): --expires 30d|2027-01-31|never,
--models gpt-5.5,gpt-5.4*, --rpm 60, --concurrency 4, --tokens-per-day 2000000,
--tokens-per-week N, --max-effort high. With update, only the flags given change;
clear a limit with 0 (--rpm 0), --expires never, --models '' or --max-effort ''.
  caddy codex-proxy users list
  caddy codex-proxy users disable --email <e>
  caddy codex-proxy users enable  --email <e>
  caddy codex-proxy vault migrate --from <bbolt file|dsn> --to <dsn|bbolt file> [--force] [--config <Caddyfile>]
  caddy codex-proxy vault backup  --config <Caddyfile> --out <file>

Every subcommand reads the codex_proxy handler's settings (vault, encryption_key,
api_key_pepper, with {env.*} placeholders expanded) and the admin address from the
config given with --config (default: ./Caddyfile). When a Caddy answering at that
admin address has the vault open, the change goes through its admin API; otherwise
the vault file is opened directly, which needs Caddy to be stopped.

Commands that create a key print the key alone on standard output, once; all
other messages go to standard error:

  caddy codex-proxy provision --config /etc/caddy/Caddyfile \
      --email ada@example.com --auth-file ~/.codex/auth.json > ada.key
`,
		CobraFunc: c.register,
	})
}

// defaultCLIOpenTimeout is how long the CLI waits for the vault's file
// lock before saying another process holds it.
const defaultCLIOpenTimeout = 3 * time.Second

// Timeouts for talking to the admin endpoint: the probe decides between
// admin API and file, so it must not hang on a wedged endpoint.
const (
	adminProbeTimeout = 5 * time.Second
	adminCallTimeout  = time.Minute
	adminDialTimeout  = 2 * time.Second
)

// exitFailed is the exit status of a failed command.
const exitFailed = caddy.ExitCodeFailedStartup

// cli runs the codex-proxy subcommands; its fields let tests capture
// output and shorten the lock wait.
type cli struct {
	stdout, stderr io.Writer
	stdin          io.Reader
	openTimeout    time.Duration
}

// register builds the subcommand tree under `caddy codex-proxy`.
func (c *cli) register(cmd *cobra.Command) {
	provision := c.leaf("provision --config <Caddyfile> --email <email> [--display-name <name>] [--auth-file <path>] [--label <label>]",
		"Creates or updates a user, imports their ChatGPT login and prints a new API key", c.provision)
	provision.Long = `
Creates the user if the email is new, imports the ChatGPT login from a Codex CLI
auth.json (~/.codex/auth.json after "codex login"; - reads standard input),
creates an API key and prints it alone on standard output. Running it again for
the same email imports the login again and adds another key.`
	provision.Flags().String("email", "", "Email of the user (required)")
	provision.Flags().String("display-name", "", "Display name of a new user")
	provision.Flags().String("auth-file", "", "Codex CLI auth.json to import (- for standard input)")
	provision.Flags().String("label", "", "Label of the new key")
	_ = provision.MarkFlagRequired("email")

	keysList := c.leaf("list --email <email>", "Lists a user's API keys", c.keysList)
	keysList.Flags().String("email", "", "Email of the user (required)")
	keysList.Flags().Bool("json", false, "Print JSON instead of a table")
	_ = keysList.MarkFlagRequired("email")

	keysCreate := c.leaf("create --email <email> [--label <label>]", "Creates an API key and prints it", c.keysCreate)
	keysCreate.Flags().String("email", "", "Email of the user (required)")
	keysCreate.Flags().String("label", "", "Label of the new key")
	addPolicyFlags(keysCreate)
	_ = keysCreate.MarkFlagRequired("email")

	keysUpdate := c.leaf("update --email <email> --id <key id> [policy flags] [--reset-usage]", "Changes an API key's policy or resets its usage", c.keysUpdate)
	keysUpdate.Flags().String("email", "", "Email of the user (required)")
	keysUpdate.Flags().String("id", "", "Id of the key, as keys list shows it (required)")
	keysUpdate.Flags().Bool("reset-usage", false, "Set the key's usage counters back to zero")
	addPolicyFlags(keysUpdate)
	_ = keysUpdate.MarkFlagRequired("email")
	_ = keysUpdate.MarkFlagRequired("id")

	keysRevoke := c.leaf("revoke --email <email> --id <key id>", "Revokes an API key", c.keysRevoke)
	keysRevoke.Flags().String("email", "", "Email of the user (required)")
	keysRevoke.Flags().String("id", "", "Id of the key, as keys list shows it (required)")
	_ = keysRevoke.MarkFlagRequired("email")
	_ = keysRevoke.MarkFlagRequired("id")

	keys := &cobra.Command{Use: "keys", Short: "Lists, creates and revokes a user's API keys"}
	keys.AddCommand(keysList, keysCreate, keysUpdate, keysRevoke)

	usersList := c.leaf("list", "Lists the users", c.usersList)
	usersList.Flags().Bool("json", false, "Print JSON instead of a table")

	usersDisable := c.leaf("disable --email <email>", "Disables a user: their API keys and dashboard sign-in are refused until enabled; nothing is deleted", c.usersDisable)
	usersDisable.Flags().String("email", "", "Email of the user (required)")
	_ = usersDisable.MarkFlagRequired("email")

	usersEnable := c.leaf("enable --email <email>", "Enables a disabled user: their existing API keys and dashboard sign-in work again", c.usersEnable)
	usersEnable.Flags().String("email", "", "Email of the user (required)")
	_ = usersEnable.MarkFlagRequired("email")

	users := &cobra.Command{Use: "users", Short: "Lists, disables and enables users"}
	users.AddCommand(usersList, usersDisable, usersEnable)

	cmd.AddCommand(provision, keys, users, c.accountsCommand())
	c.registerVault(cmd)
}

// leaf makes a runnable subcommand with the flags every subcommand takes.
func (c *cli) leaf(use, short string, run caddycmd.CommandFunc) *cobra.Command {
	sub := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE:  caddycmd.WrapCommandFuncForCobra(run),
	}
	sub.Flags().StringP("config", "c", "", "Config file with the codex_proxy handler (default: ./Caddyfile)")
	sub.Flags().StringP("adapter", "a", "", "Name of the config adapter to apply")
	sub.Flags().String("vault", "", "Vault path, when the config has several codex_proxy vaults")
	return sub
}

// provision implements `caddy codex-proxy provision`.
func (c *cli) provision(fl caddycmd.Flags) (int, error) {
	var auth json.RawMessage
	if name := fl.String("auth-file"); name != "" {
		var err error
		// Checked before connecting, so a wrong file changes nothing.
		if auth, err = c.readAuthFile(name); err != nil {
			return exitFailed, err
		}
	}
	return c.run(fl, func(m manager) error {
		res, err := m.upsertUser(userRequest{Email: fl.String("email"), Name: fl.String("display-name"), AuthJSON: auth})
		if err != nil {
			return err
		}
		c.reportUser(res)
		return c.newKey(m, keyRequest{Email: res.User.Email, Label: fl.String("label")})
	})
}

// keysCreate implements `caddy codex-proxy keys create`.
func (c *cli) keysCreate(fl caddycmd.Flags) (int, error) {
	return c.run(fl, func(m manager) error {
		return c.newKey(m, keyRequest{Email: fl.String("email"), Label: fl.String("label"), Policy: policyChanges(fl.FlagSet)})
	})
}

// newKey creates a key and prints it, alone, on standard output.
func (c *cli) newKey(m manager, req keyRequest) error {
	k, err := m.createKey(req)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stderr, "created key %s for %s; it is printed on standard output and cannot be shown again\n", k.ID, req.Email)
	_, err = fmt.Fprintln(c.stdout, k.Plaintext)
	return err
}

// keysList implements `caddy codex-proxy keys list`.
func (c *cli) keysList(fl caddycmd.Flags) (int, error) {
	return c.run(fl, func(m manager) error {
		res, err := m.listKeys(fl.String("email"))
		if err != nil {
			return err
		}
		if fl.Bool("json") {
			return c.printJSON(res)
		}
		tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tLABEL\tPREFIX\tCREATED\tLAST USED\tSTATUS\tTOKENS TODAY\tPOLICY")
		for _, k := range res.Keys {
			today := "-"
			if k.Usage != nil {
				today = fmt.Sprint(k.Usage.TokensToday.Used)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, orDash(k.Label), k.Prefix, when(k.Created), when(k.LastUsed), keyState(k), today, policySummary(k.Policy))
		}
		return tw.Flush()
	})
}

// keysUpdate implements `caddy codex-proxy keys update`.
func (c *cli) keysUpdate(fl caddycmd.Flags) (int, error) {
	return c.run(fl, func(m manager) error {
		email, id := fl.String("email"), fl.String("id")
		changes := policyChanges(fl.FlagSet)
		reset := fl.Bool("reset-usage")
		if len(changes) == 0 && !reset {
			return fmt.Errorf("nothing to change: give policy flags (see --help) or --reset-usage")
		}
		var res keyUpdateResult
		var err error
		if len(changes) > 0 {
			if res, err = m.updateKey(id, keyUpdateRequest{Email: email, Policy: changes}); err != nil {
				return err
			}
			fmt.Fprintf(c.stderr, "updated key %s of %s: %s\n", id, email, policySummary(res.Key.Policy))
		}
		if reset {
			if res, err = m.resetKeyUsage(email, id); err != nil {
				return err
			}
			fmt.Fprintf(c.stderr, "reset the usage of key %s of %s\n", id, email)
		}
		return nil
	})
}

// keysRevoke implements `caddy codex-proxy keys revoke`.
func (c *cli) keysRevoke(fl caddycmd.Flags) (int, error) {
	return c.run(fl, func(m manager) error {
		res, err := m.revokeKey(fl.String("email"), fl.String("id"))
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stderr, "revoked key %s of %s\n", res.Revoked.ID, fl.String("email"))
		return nil
	})
}

// usersList implements `caddy codex-proxy users list`.
func (c *cli) usersList(fl caddycmd.Flags) (int, error) {
	return c.run(fl, func(m manager) error {
		res, err := m.listUsers()
		if err != nil {
			return err
		}
		if fl.Bool("json") {
			return c.printJSON(res)
		}
		tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "EMAIL\tNAME\tACTIVE KEYS\tCHATGPT\tCREATED")
		for _, u := range res.Users {
			email := u.Email
			if u.Disabled {
				email += " (disabled)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", email, orDash(u.Name), u.ActiveKeys, chatGPTStatus(u.ChatGPT), when(u.Created))
		}
		return tw.Flush()
	})
}

// usersDisable implements `caddy codex-proxy users disable`.
func (c *cli) usersDisable(fl caddycmd.Flags) (int, error) {
	return c.run(fl, func(m manager) error {
		res, err := m.setUserEnabled(fl.String("email"), false)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stderr, "disabled %s: their keys and dashboard sign-in are refused until `users enable`; keys and ChatGPT login stay stored\n",
			res.User.Email)
		return nil
	})
}

// usersEnable implements `caddy codex-proxy users enable`.
func (c *cli) usersEnable(fl caddycmd.Flags) (int, error) {
	return c.run(fl, func(m manager) error {
		res, err := m.setUserEnabled(fl.String("email"), true)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stderr, "enabled %s: their keys and dashboard sign-in work again\n", res.User.Email)
		return nil
	})
}

// run connects to the vault, runs fn and disconnects.
func (c *cli) run(fl caddycmd.Flags, fn func(manager) error) (code int, err error) {
	m, err := c.connect(fl)
	if err != nil {
		return exitFailed, err
	}
	defer func() {
		if cerr := m.close(); cerr != nil && err == nil {
			code, err = exitFailed, fmt.Errorf("closing the vault: %v", cerr)
		}
	}()
	if err := fn(m); err != nil {
		return exitFailed, err
	}
	return 0, nil
}

// connect finds the vault in the config and reaches it: through the admin
// API of a running Caddy that has it open, else by opening the file.
func (c *cli) connect(fl caddycmd.Flags) (manager, error) {
	t, err := loadTarget(fl.String("config"), fl.String("adapter"), fl.String("vault"))
	if err != nil {
		return nil, err
	}
	var why error
	if engine.IsDSN(t.vault.Path) {
		// No file lock to contend for: open the database directly, running
		// Caddy or not; instances learn of the changes through NOTIFY.
		v, err := c.openVault(t.vault, nil)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(c.stderr, "using the PostgreSQL vault %s\n", engine.Display(t.vault.Path))
		return fileManager{v}, nil
	}
	if t.admin == "" {
		why = errors.New("the admin endpoint is off in the config")
	} else {
		ac, err := newAdminClient(t.admin)
		if err == nil {
			err = ac.holds(t.vault.Path)
		}
		if err == nil {
			fmt.Fprintf(c.stderr, "using the admin API of the Caddy at %s\n", t.admin)
			return adminManager{client: ac, vault: t.vault.Path}, nil
		}
		why = fmt.Errorf("admin endpoint %s: %w", t.admin, err)
	}
	v, err := c.openVault(t.vault, why)
	if err != nil {
		return nil, err
	}
	return fileManager{v}, nil
}

// openVault opens the vault file with the config's secrets, or the
// generated ones beside it. why says why the admin API was not used.
func (c *cli) openVault(vc vaultConfig, why error) (*vault.Vault, error) {
	keys, pepper, generated, err := vc.secrets()
	if err != nil {
		return nil, err
	}
	if generated {
		fmt.Fprintf(c.stderr, "generated an encryption key and API key pepper in %s; Caddy must run as a user that can read them\n", filepath.Dir(vc.Path))
	}
	// A first provision before Caddy ever ran should just work: the
	// vault's directory is created if missing.
	v, err := engine.Open(context.Background(), vc.Path, vault.Options{
		EncryptionKeys: keys,
		Pepper:         pepper,
		LogRetention:   vc.LogRetention,
		OpenTimeout:    c.openTimeout,
		Logger:         slogOf(caddy.Log().Named("codex_proxy.vault")),
	})
	if errors.Is(err, vault.ErrLocked) {
		return nil, fmt.Errorf("the vault %s is locked by another process — is Caddy running with a different admin address? (%v)", vc.Path, why)
	}
	if err != nil {
		return nil, fmt.Errorf("opening the vault %s: %w", engine.Display(vc.Path), err)
	}
	return v, nil
}

// readAuthFile reads and checks an auth.json, returning it compacted for
// the admin API's auth_json field.
func (c *cli) readAuthFile(name string) (json.RawMessage, error) {
	var data []byte
	var err error
	if name == "-" {
		data, err = io.ReadAll(io.LimitReader(c.stdin, maxAdminBody))
	} else {
		data, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, err
	}
	if _, err := vault.ParseAuthJSON(data); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))); err != nil {
		return nil, fmt.Errorf("%s: not valid JSON", name) // the parser's message could quote a token
	}
	return buf.Bytes(), nil
}

// reportUser tells the operator what provision did to the user.
func (c *cli) reportUser(res userResult) {
	u := res.User
	if res.Created {
		fmt.Fprintf(c.stderr, "created user %s (%s)\n", u.Email, u.ID)
	} else {
		fmt.Fprintf(c.stderr, "user %s (%s) already exists\n", u.Email, u.ID)
	}
	if res.TokensImported {
		fmt.Fprintf(c.stderr, "imported the ChatGPT login: %s\n", chatGPTStatus(u.ChatGPT))
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(c.stderr, "warning: %s\n", w)
	}
	switch {
	case u.ChatGPT == nil:
		fmt.Fprintf(c.stderr, "note: %s has no ChatGPT login yet, so the key cannot be used until one is imported with --auth-file\n", u.Email)
	case u.ChatGPT.RelinkNeeded:
		fmt.Fprintf(c.stderr, "note: the ChatGPT login of %s has expired; import a fresh auth.json with --auth-file\n", u.Email)
	}
}

// printJSON writes v indented on standard output.
func (c *cli) printJSON(v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// chatGPTStatus describes a linked login in a few words.
func chatGPTStatus(ti *vault.TokenInfo) string {
	if ti == nil {
		return "not linked"
	}
	var parts []string
	for _, s := range []string{ti.PlanType, ti.Email} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	if len(parts) == 0 {
		parts = append(parts, "linked")
	}
	s := strings.Join(parts, " ")
	if ti.RelinkNeeded {
		s += " (relink needed)"
	}
	return s
}

// when formats a timestamp for tables.
func when(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Local().Format("2006-01-02 15:04")
}

// orDash keeps empty table cells visible.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// target is what a command acts on: a vault and the admin endpoint of the
// Caddy that may hold it ("" when the config turns the endpoint off).
type target struct {
	vault vaultConfig
	admin string
}

// loadTarget reads the config the way `caddy run` would and picks the
// codex_proxy vault in it.
func loadTarget(configFile, adapter, vaultPath string) (target, error) {
	cfg, used, _, err := caddycmd.LoadConfig(configFile, adapter)
	if err != nil {
		return target{}, err
	}
	if len(cfg) == 0 {
		return target{}, errors.New("no config to read the codex_proxy settings from: use --config <Caddyfile>")
	}
	vcs, err := vaultConfigsFromJSON(cfg)
	if err != nil {
		return target{}, fmt.Errorf("%s: %v", used, err)
	}
	vc, err := selectVault(vcs, vaultPath)
	if err != nil {
		return target{}, fmt.Errorf("%s: %v", used, err)
	}
	admin, err := adminAddress(cfg)
	if err != nil {
		return target{}, fmt.Errorf("%s: %v", used, err)
	}
	return target{vault: vc, admin: admin}, nil
}

// adminAddress returns the admin listen address of an adapted config, or
// "" if the config disables the endpoint.
func adminAddress(cfg []byte) (string, error) {
	var c struct {
		Admin *caddy.AdminConfig `json:"admin"`
	}
	if err := json.Unmarshal(cfg, &c); err != nil {
		return "", fmt.Errorf("reading the admin settings: %v", err)
	}
	listen := caddy.DefaultAdminListen
	if c.Admin != nil {
		if c.Admin.Disabled {
			return "", nil
		}
		if c.Admin.Listen != "" {
			listen = c.Admin.Listen
		}
	}
	return caddy.NewReplacer().ReplaceAll(listen, ""), nil
}

// manager runs the user and key operations somewhere: in a running Caddy
// through its admin API, or on the vault file.
type manager interface {
	upsertUser(userRequest) (userResult, error)
	listUsers() (usersResult, error)
	setUserEnabled(email string, enabled bool) (userStateResult, error)
	listKeys(email string) (keysResult, error)
	createKey(keyRequest) (createdKey, error)
	revokeKey(email, id string) (revokeResult, error)
	updateKey(id string, req keyUpdateRequest) (keyUpdateResult, error)
	resetKeyUsage(email, id string) (keyUpdateResult, error)
	close() error
}

// fileManager runs the operations on a vault this process opened.
type fileManager struct{ v *vault.Vault }

func (m fileManager) upsertUser(req userRequest) (userResult, error) { return upsertUser(m.v, req) }
func (m fileManager) listUsers() (usersResult, error)                { return listUsers(m.v) }
func (m fileManager) setUserEnabled(email string, on bool) (userStateResult, error) {
	return setUserEnabled(m.v, email, on)
}
func (m fileManager) listKeys(email string) (keysResult, error)    { return listKeys(m.v, email) }
func (m fileManager) createKey(req keyRequest) (createdKey, error) { return createKey(m.v, req) }
func (m fileManager) revokeKey(email, id string) (revokeResult, error) {
	return revokeKey(m.v, email, id)
}
func (m fileManager) updateKey(id string, req keyUpdateRequest) (keyUpdateResult, error) {
	return updateKeyPolicy(m.v, id, req)
}
func (m fileManager) resetKeyUsage(email, id string) (keyUpdateResult, error) {
	return resetKeyUsage(m.v, email, id)
}
func (m fileManager) close() error { return m.v.Close() }

// adminManager runs the operations in a running Caddy.
type adminManager struct {
	client *adminClient
	vault  string // sent as ?vault= so a Caddy with several vaults picks the right one
}

func (m adminManager) call(method, path string, q url.Values, in, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), adminCallTimeout)
	defer cancel()
	if q == nil {
		q = url.Values{}
	}
	q.Set("vault", m.vault)
	return m.client.do(ctx, method, path, q, in, out)
}

func (m adminManager) upsertUser(req userRequest) (res userResult, err error) {
	return res, m.call(http.MethodPost, adminPrefix+"users", nil, req, &res)
}

func (m adminManager) listUsers() (res usersResult, err error) {
	return res, m.call(http.MethodGet, adminPrefix+"users", nil, nil, &res)
}

func (m adminManager) setUserEnabled(email string, enabled bool) (res userStateResult, err error) {
	action := "disable"
	if enabled {
		action = "enable"
	}
	return res, m.call(http.MethodPost, adminPrefix+"users/"+url.PathEscape(email)+"/"+action, nil, nil, &res)
}

func (m adminManager) listKeys(email string) (res keysResult, err error) {
	return res, m.call(http.MethodGet, adminPrefix+"keys", url.Values{"email": {email}}, nil, &res)
}

func (m adminManager) createKey(req keyRequest) (res createdKey, err error) {
	return res, m.call(http.MethodPost, adminPrefix+"keys", nil, req, &res)
}

func (m adminManager) revokeKey(email, id string) (res revokeResult, err error) {
	return res, m.call(http.MethodDelete, adminPrefix+"keys/"+url.PathEscape(id), url.Values{"email": {email}}, nil, &res)
}

func (m adminManager) updateKey(id string, req keyUpdateRequest) (res keyUpdateResult, err error) {
	return res, m.call(http.MethodPost, adminPrefix+"keys/"+url.PathEscape(id)+"/policy", nil, req, &res)
}

func (m adminManager) resetKeyUsage(email, id string) (res keyUpdateResult, err error) {
	return res, m.call(http.MethodPost, adminPrefix+"keys/"+url.PathEscape(id)+"/reset-usage", url.Values{"email": {email}}, nil, &res)
}

func (m adminManager) close() error {
	m.client.http.CloseIdleConnections()
	return nil
}

// adminClient talks to a Caddy admin endpoint the way caddycmd's
// AdminAPIRequest does (same Origin rules, unix sockets too), but tells
// transport errors from error answers, which the probe needs.
type adminClient struct {
	base   string // scheme and host of request URLs
	origin string // "" for unix sockets, where Caddy checks no origin
	http   *http.Client
}

// newAdminClient prepares requests to the admin endpoint at addr.
func newAdminClient(addr string) (*adminClient, error) {
	na, err := caddy.ParseNetworkAddress(addr)
	if err != nil {
		return nil, fmt.Errorf("invalid admin address %s: %v", addr, err)
	}
	if na.PortRangeSize() > 1 {
		return nil, fmt.Errorf("invalid admin address %s: a port range", addr)
	}
	if na.IsFdNetwork() {
		return nil, fmt.Errorf("admin address %s is a file descriptor, which another process cannot reach", addr)
	}
	dial := na.JoinHostPort(0)
	base := "http://" + dial
	origin := base
	if na.IsUnixNetwork() {
		dial, _, _ = strings.Cut(dial, "|") // drop the socket's permission bits
		base, origin = "http://127.0.0.1", ""
	}
	d := &net.Dialer{Timeout: adminDialTimeout}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, na.Network, dial)
		},
	}
	return &adminClient{base: base, origin: origin, http: &http.Client{Transport: tr}}, nil
}

// holds reports, as nil, that the Caddy at the endpoint has the
// codex_proxy admin module and the vault at path open.
func (c *adminClient) holds(path string) error {
	ctx, cancel := context.WithTimeout(context.Background(), adminProbeTimeout)
	defer cancel()
	var res vaultsResult
	if err := c.do(ctx, http.MethodGet, adminPrefix+"vaults", nil, nil, &res); err != nil {
		var ae caddy.APIError
		if errors.As(err, &ae) && ae.HTTPStatus == http.StatusNotFound {
			return errors.New("the Caddy there has no codex_proxy admin module")
		}
		return err
	}
	if !slices.Contains(res.Vaults, path) {
		return fmt.Errorf("the Caddy there does not have this vault open (it has: %s)", listOrNone(res.Vaults))
	}
	return nil
}

// do sends one request; an error answer becomes a caddy.APIError with the
// endpoint's message.
func (c *adminClient) do(ctx context.Context, method, path string, q url.Values, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.origin != "" {
		req.Header.Set("Origin", c.origin)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("reading the admin answer: %v", err)
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return apiErr(resp.StatusCode, errors.New(e.Error))
		}
		return apiErr(resp.StatusCode, fmt.Errorf("the admin endpoint answered HTTP %d", resp.StatusCode))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("reading the admin answer: %v", err)
	}
	return nil
}
