package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/usemysub/caddy-codex-proxy/ops"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// `caddy codex-proxy provision` and `users …`.

// provisionCommand builds `provision`.
func (c *CLI) provisionCommand() *cobra.Command {
	cmd := leaf("provision --config <Caddyfile> --email <email> [--display-name <name>] [--auth-file <path>] [--label <label>]",
		"Creates or updates a user, imports their ChatGPT login and prints a new API key", c.provision)
	cmd.Long = `
Creates the user if the email is new, imports the ChatGPT login from a Codex CLI
auth.json (~/.codex/auth.json after "codex login"; - reads standard input),
creates an API key and prints it alone on standard output. Running it again for
the same email imports the login again and adds another key.`
	emailFlag(cmd)
	cmd.Flags().String("display-name", "", "Display name of a new user")
	cmd.Flags().String("auth-file", "", "Codex CLI auth.json to import (- for standard input)")
	cmd.Flags().String("label", "", "Label of the new key")
	return cmd
}

// usersCommand builds `users list|disable|enable`.
func (c *CLI) usersCommand() *cobra.Command {
	list := leaf("list", "Lists the users", c.usersList)
	list.Flags().Bool("json", false, "Print JSON instead of a table")

	disable := leaf("disable --email <email>", "Disables a user: their API keys and dashboard sign-in are refused until enabled; nothing is deleted", c.usersDisable)
	emailFlag(disable)

	enable := leaf("enable --email <email>", "Enables a disabled user: their existing API keys and dashboard sign-in work again", c.usersEnable)
	emailFlag(enable)

	users := &cobra.Command{Use: "users", Short: "Lists, disables and enables users"}
	users.AddCommand(list, disable, enable)
	return users
}

// provision implements `caddy codex-proxy provision`.
func (c *CLI) provision(fl flags) error {
	var auth json.RawMessage
	if name := fl.String("auth-file"); name != "" {
		var err error
		// Checked before connecting, so a wrong file changes nothing.
		if auth, err = c.readAuthFile(name); err != nil {
			return err
		}
	}
	return c.run(fl, func(ctx context.Context, s ops.Service) error {
		req := ops.UserRequest{Email: fl.String("email"), Name: fl.String("display-name"), AuthJSON: auth}
		var email string
		k, err := ops.Provision(ctx, s, req, fl.String("label"), func(res ops.UserResult) {
			email = res.User.Email
			c.reportUser(res)
		})
		if err != nil {
			return err
		}
		return c.printKey(k, email)
	})
}

// usersList implements `caddy codex-proxy users list`.
func (c *CLI) usersList(fl flags) error {
	return c.run(fl, func(ctx context.Context, s ops.Service) error {
		res, err := s.ListUsers(ctx)
		if err != nil {
			return err
		}
		if fl.Bool("json") {
			return c.printJSON(res)
		}
		tw := tabwriter.NewWriter(c.Stdout, 0, 4, 2, ' ', 0)
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
func (c *CLI) usersDisable(fl flags) error {
	return c.run(fl, func(ctx context.Context, s ops.Service) error {
		res, err := s.SetUserEnabled(ctx, fl.String("email"), false)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.Stderr, "disabled %s: their keys and dashboard sign-in are refused until `users enable`; keys and ChatGPT login stay stored\n",
			res.User.Email)
		return nil
	})
}

// usersEnable implements `caddy codex-proxy users enable`.
func (c *CLI) usersEnable(fl flags) error {
	return c.run(fl, func(ctx context.Context, s ops.Service) error {
		res, err := s.SetUserEnabled(ctx, fl.String("email"), true)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.Stderr, "enabled %s: their keys and dashboard sign-in work again\n", res.User.Email)
		return nil
	})
}

// readAuthFile reads and checks an auth.json, returning it compacted for
// the admin API's auth_json field.
func (c *CLI) readAuthFile(name string) (json.RawMessage, error) {
	var data []byte
	var err error
	if name == "-" {
		data, err = io.ReadAll(io.LimitReader(c.Stdin, ops.MaxAdminBody))
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
func (c *CLI) reportUser(res ops.UserResult) {
	u := res.User
	if res.Created {
		fmt.Fprintf(c.Stderr, "created user %s (%s)\n", u.Email, u.ID)
	} else {
		fmt.Fprintf(c.Stderr, "user %s (%s) already exists\n", u.Email, u.ID)
	}
	if res.TokensImported {
		fmt.Fprintf(c.Stderr, "imported the ChatGPT login: %s\n", chatGPTStatus(u.ChatGPT))
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(c.Stderr, "warning: %s\n", w)
	}
	switch {
	case u.ChatGPT == nil:
		fmt.Fprintf(c.Stderr, "note: %s has no ChatGPT login yet, so the key cannot be used until one is imported with --auth-file\n", u.Email)
	case u.ChatGPT.RelinkNeeded:
		fmt.Fprintf(c.Stderr, "note: the ChatGPT login of %s has expired; import a fresh auth.json with --auth-file\n", u.Email)
	}
}
