// Package cli is the `caddy codex-proxy` command tree: each leaf parses
// its flags, calls one [ops.Service] use case and prints the result. The
// tree is built with cobra, so the help lists exactly the commands there
// are.
//
// The package does not import Caddy. What needs Caddy (reading a
// Caddyfile, expanding {env.*} placeholders, the secrets a running Caddy
// would use) comes through [Host], which caddymodule implements.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/usemysub/caddy-codex-proxy/ops"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// DefaultOpenTimeout is how long a command waits for a vault file's lock
// before saying another process holds it.
const DefaultOpenTimeout = 3 * time.Second

// Host is what the CLI needs from the program around it. caddymodule
// implements it over the Caddy config and the vault's storage engines.
type Host interface {
	// Locate reads the config sel names the way `caddy run` would and
	// picks the codex_proxy vault in it.
	Locate(sel Selection) (Location, error)
	// Expand expands {env.*} placeholders in a flag value as the config's
	// values are expanded.
	Expand(s string) string
	// Describe says whether a vault location is a PostgreSQL DSN and how
	// to show it (a DSN without its password).
	Describe(location string) (dsn bool, shown string)
	// OpenStore opens the store at location below the Vault level, so
	// nothing is purged or decrypted: a PostgreSQL DSN or a bbolt file,
	// whose lock it waits timeout for (an error wrapping vault.ErrLocked).
	OpenStore(ctx context.Context, location string, timeout time.Duration) (vault.Store, error)
	// GeneratedKey reads the encryption key generated beside a bbolt
	// vault without creating one: "" if none is usable; present reports
	// that the file exists at all.
	GeneratedKey(vaultPath string) (key string, present bool)
}

// Selection is the flags every command takes to find its vault.
type Selection struct {
	Config, Adapter, Vault string
}

// Location is the vault a command acts on, as the config describes it.
type Location struct {
	// Vault is an absolute bbolt path or a PostgreSQL DSN, which may hold
	// a password: show Shown instead.
	Vault, Shown string
	DSN          bool
	// Admin is the admin address of the config, "" when the endpoint is
	// off; Endpoint is how to dial it, unless EndpointErr says why not.
	Admin       string
	Endpoint    ops.Endpoint
	EndpointErr error
	// EncryptionKeys are the config's keys, expanded; KeysSet says the
	// config names some, even if they expand to nothing here.
	EncryptionKeys []string
	KeysSet        bool
	// Open opens the vault in this process with the config's secrets (the
	// generated ones beside a bbolt file if the config has none, noting
	// on notes when it made them). A held file fails with an error
	// wrapping vault.ErrLocked after timeout.
	Open func(timeout time.Duration, notes io.Writer) (*vault.Vault, error)
}

// CLI runs the commands; its fields let tests capture output and shorten
// the lock wait.
type CLI struct {
	Stdout, Stderr io.Writer
	Stdin          io.Reader
	// OpenTimeout is how long to wait for a vault file's lock.
	OpenTimeout time.Duration
	Host        Host
}

// Register adds the subcommands to cmd (`caddy codex-proxy`).
func (c *CLI) Register(cmd *cobra.Command) {
	cmd.AddCommand(c.provisionCommand(), c.keysCommand(), c.usersCommand(), c.accountsCommand(), c.signupCommand(), c.vaultCommand(), c.auditCommand())
}

// flags is a leaf's parsed command line.
type flags struct {
	*pflag.FlagSet
	args []string
}

// String returns a string flag; the flag is always defined by the leaf.
func (f flags) String(name string) string {
	v, _ := f.GetString(name)
	return v
}

// Bool returns a bool flag.
func (f flags) Bool(name string) bool {
	v, _ := f.GetBool(name)
	return v
}

// selection is the vault-finding flags.
func (f flags) selection() Selection {
	return Selection{Config: f.String("config"), Adapter: f.String("adapter"), Vault: f.String("vault")}
}

// command makes a runnable subcommand.
func command(use, short string, run func(flags) error) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return run(flags{FlagSet: cmd.Flags(), args: args})
		},
	}
}

// leaf makes a subcommand with the flags that find the vault.
func leaf(use, short string, run func(flags) error) *cobra.Command {
	sub := command(use, short, run)
	sub.Flags().StringP("config", "c", "", "Config file with the codex_proxy handler (default: ./Caddyfile)")
	sub.Flags().StringP("adapter", "a", "", "Name of the config adapter to apply")
	sub.Flags().String("vault", "", "Vault path, when the config has several codex_proxy vaults")
	return sub
}

// emailFlag adds the required --email.
func emailFlag(cmd *cobra.Command) {
	cmd.Flags().String("email", "", "Email of the user (required)")
	_ = cmd.MarkFlagRequired("email")
}

// run connects to the vault, runs fn and disconnects. The operator is the
// actor of every call (the audit log names their OS user).
func (c *CLI) run(fl flags, fn func(context.Context, ops.Service) error) (err error) {
	ctx := ops.WithActor(context.Background(), ops.Actor{Via: ops.ViaCLI, OSUser: osUser()})
	s, closeFn, err := c.connect(ctx, fl.selection())
	if err != nil {
		return err
	}
	defer func() {
		if cerr := closeFn(); cerr != nil && err == nil {
			err = fmt.Errorf("closing the vault: %w", cerr)
		}
	}()
	return fn(ctx, s)
}

// connect finds the vault in the config and reaches it: through the admin
// API of a running Caddy that has it open, else by opening it here.
func (c *CLI) connect(ctx context.Context, sel Selection) (ops.Service, func() error, error) {
	loc, err := c.Host.Locate(sel)
	if err != nil {
		return nil, nil, err
	}
	if loc.DSN {
		// No file lock to contend for: open the database directly, running
		// Caddy or not; instances learn of the changes through NOTIFY.
		v, err := loc.Open(c.OpenTimeout, c.Stderr)
		if err != nil {
			return nil, nil, err
		}
		fmt.Fprintf(c.Stderr, "using the PostgreSQL vault %s\n", loc.Shown)
		return ops.Local(v), v.Close, nil
	}
	r, why := c.remote(ctx, loc)
	if r != nil {
		fmt.Fprintf(c.Stderr, "using the admin API of the Caddy at %s\n", loc.Admin)
		return r, r.Close, nil
	}
	v, err := loc.Open(c.OpenTimeout, c.Stderr)
	if errors.Is(err, vault.ErrLocked) {
		return nil, nil, fmt.Errorf("the vault %s is locked by another process — is Caddy running with a different admin address? (%v)", loc.Vault, why)
	}
	if err != nil {
		return nil, nil, err
	}
	return ops.Local(v), v.Close, nil
}

// remote returns the admin API of the Caddy that has the vault open, or
// nil and why not.
func (c *CLI) remote(ctx context.Context, loc Location) (*ops.RemoteService, error) {
	if loc.Admin == "" {
		return nil, errors.New("the admin endpoint is off in the config")
	}
	err := loc.EndpointErr
	var r *ops.RemoteService
	if err == nil {
		r = ops.Remote(loc.Endpoint, loc.Vault)
		if err = r.Holds(ctx); err != nil {
			_ = r.Close()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("admin endpoint %s: %w", loc.Admin, err)
	}
	return r, nil
}

// Usage is the usage line of the root command, made from the tree so it
// names every command group: "accounts|keys|provision|users|vault ...".
func (c *CLI) Usage() string {
	tree := &cobra.Command{}
	c.Register(tree)
	var names []string
	for _, sub := range tree.Commands() {
		names = append(names, sub.Name())
	}
	return strings.Join(names, "|") + " ..."
}
