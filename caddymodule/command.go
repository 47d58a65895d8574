package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	"github.com/usemysub/caddy-codex-proxy/cli"
	"github.com/usemysub/caddy-codex-proxy/ops"
	"github.com/usemysub/caddy-codex-proxy/vault"
	"github.com/usemysub/caddy-codex-proxy/vault/engine"
	"github.com/usemysub/caddy-codex-proxy/vaultconf"
)

// The `caddy codex-proxy` command: the tree is package cli; this file
// registers it with Caddy and gives it what needs Caddy (cliHost).

func init() {
	c := newCLI(os.Stdout, os.Stderr, os.Stdin)
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "codex-proxy",
		Usage: c.Usage(),
		Short: "Manages the users, API keys, ChatGPT accounts and vault of the codex_proxy handler",
		Long: `
Manages the users, API keys, linked ChatGPT accounts and the vault of the
codex_proxy handler. Run a subcommand with --help for its flags.

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
		CobraFunc: c.Register,
	})
}

// newCLI is the command tree over the real config and engines.
func newCLI(stdout, stderr io.Writer, stdin io.Reader) *cli.CLI {
	return &cli.CLI{Stdout: stdout, Stderr: stderr, Stdin: stdin, OpenTimeout: cli.DefaultOpenTimeout, Host: cliHost{}}
}

// cliHost is the part of the CLI that needs Caddy: reading the config,
// expanding placeholders, the vault's engines and generated secrets.
type cliHost struct{}

// Locate implements cli.Host.
func (cliHost) Locate(sel cli.Selection) (cli.Location, error) {
	vc, admin, err := loadTarget(sel.Config, sel.Adapter, sel.Vault)
	if err != nil {
		return cli.Location{}, err
	}
	loc := cli.Location{
		Vault:          vc.Path,
		Shown:          engine.Display(vc.Path),
		DSN:            engine.IsDSN(vc.Path),
		Admin:          admin,
		EncryptionKeys: vc.EncryptionKeys,
		KeysSet:        vc.KeysSet,
		Open: func(timeout time.Duration, notes io.Writer) (*vault.Vault, error) {
			return vc.Open(timeout, slogOf(caddy.Log().Named("codex_proxy.vault")), notes)
		},
	}
	if admin != "" {
		loc.Endpoint, loc.EndpointErr = adminEndpoint(admin)
	}
	return loc, nil
}

// Expand implements cli.Host.
func (cliHost) Expand(s string) string { return caddy.NewReplacer().ReplaceAll(s, "") }

// Describe implements cli.Host.
func (cliHost) Describe(location string) (bool, string) {
	return engine.IsDSN(location), engine.Display(location)
}

// OpenStore implements cli.Host.
func (cliHost) OpenStore(ctx context.Context, location string, timeout time.Duration) (vault.Store, error) {
	return engine.OpenStore(ctx, location, timeout)
}

// GeneratedKey implements cli.Host.
func (cliHost) GeneratedKey(vaultPath string) (string, bool) {
	return vaultconf.GeneratedKey(vaultPath)
}

// loadTarget reads the config the way `caddy run` would and picks the
// codex_proxy vault in it, with the admin endpoint of the Caddy that may
// hold it ("" when the config turns the endpoint off).
func loadTarget(configFile, adapter, vaultPath string) (vaultconf.Config, string, error) {
	cfg, used, _, err := caddycmd.LoadConfig(configFile, adapter)
	if err != nil {
		return vaultconf.Config{}, "", err
	}
	if len(cfg) == 0 {
		return vaultconf.Config{}, "", errors.New("no config to read the codex_proxy settings from: use --config <Caddyfile>")
	}
	vcs, err := vaultConfigsFromJSON(cfg)
	if err != nil {
		return vaultconf.Config{}, "", fmt.Errorf("%s: %w", used, err)
	}
	vc, err := vaultconf.Select(vcs, caddy.NewReplacer().ReplaceAll(vaultPath, ""))
	if err != nil {
		return vaultconf.Config{}, "", fmt.Errorf("%s: %w", used, err)
	}
	admin, err := adminAddress(cfg)
	if err != nil {
		return vaultconf.Config{}, "", fmt.Errorf("%s: %w", used, err)
	}
	return vc, admin, nil
}

// adminAddress returns the admin listen address of an adapted config, or
// "" if the config disables the endpoint.
func adminAddress(cfg []byte) (string, error) {
	var c struct {
		Admin *caddy.AdminConfig `json:"admin"`
	}
	if err := json.Unmarshal(cfg, &c); err != nil {
		return "", fmt.Errorf("reading the admin settings: %w", err)
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

// adminEndpoint parses an admin address the way Caddy's admin server
// listens on it.
func adminEndpoint(addr string) (ops.Endpoint, error) {
	na, err := caddy.ParseNetworkAddress(addr)
	if err != nil {
		return ops.Endpoint{}, fmt.Errorf("invalid admin address %s: %w", addr, err)
	}
	if na.PortRangeSize() > 1 {
		return ops.Endpoint{}, fmt.Errorf("invalid admin address %s: a port range", addr)
	}
	if na.IsFdNetwork() {
		return ops.Endpoint{}, fmt.Errorf("admin address %s is a file descriptor, which another process cannot reach", addr)
	}
	dial := na.JoinHostPort(0)
	if na.IsUnixNetwork() {
		dial, _, _ = strings.Cut(dial, "|") // drop the socket's permission bits
	}
	return ops.Endpoint{Network: na.Network, Address: dial}, nil
}
