package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/usemysub/caddy-codex-proxy/ops"
)

// `caddy codex-proxy signup show|set|clear`: the sign-up policy override
// every instance on the vault applies instead of its Caddyfile's.

// signupCommand builds `signup show|set|clear`.
func (c *CLI) signupCommand() *cobra.Command {
	show := leaf("show", "Shows the sign-up policy set for every instance on the vault, if any", c.signupShow)
	show.Flags().Bool("json", false, "Print JSON")

	set := leaf("set open|closed|domains <domain>...", "Sets who may create an account by signing in, on every instance on the vault, instead of the Caddyfile's signup", c.signupSet)
	set.Long = `
Sets the sign-up policy of every site on the vault, overriding each Caddyfile's
signup until "signup clear": open lets anyone sign up, closed only existing
users, domains the addresses at the domains given. Every instance on a shared
PostgreSQL vault applies it within a few seconds, without a reload.`
	set.Args = cobra.MinimumNArgs(1)

	clear := leaf("clear", "Removes the override: each site's Caddyfile signup applies again", c.signupClear)

	cmd := &cobra.Command{Use: "signup", Short: "Shows, sets and clears the sign-up policy of every instance on the vault"}
	cmd.AddCommand(show, set, clear)
	return cmd
}

// signupShow implements `signup show`.
func (c *CLI) signupShow(fl flags) error {
	return c.run(fl, func(ctx context.Context, s ops.Service) error {
		res, err := s.GetSignup(ctx)
		if err != nil {
			return err
		}
		if fl.Bool("json") {
			return c.printJSON(res)
		}
		c.printSignup(res)
		return nil
	})
}

// signupSet implements `signup set`.
func (c *CLI) signupSet(fl flags) error {
	return c.run(fl, func(ctx context.Context, s ops.Service) error {
		res, err := s.SetSignup(ctx, ops.SignupRequest{Mode: fl.args[0], Domains: fl.args[1:]})
		if err != nil {
			return err
		}
		c.printSignup(res)
		return nil
	})
}

// signupClear implements `signup clear`.
func (c *CLI) signupClear(fl flags) error {
	return c.run(fl, func(ctx context.Context, s ops.Service) error {
		res, err := s.SetSignup(ctx, ops.SignupRequest{Clear: true})
		if err != nil {
			return err
		}
		c.printSignup(res)
		return nil
	})
}

// printSignup says which policy applies.
func (c *CLI) printSignup(res ops.SignupResult) {
	if res.Override == nil {
		fmt.Fprintln(c.Stdout, "no override: each site's Caddyfile signup applies (closed when it has none)")
		return
	}
	o := res.Override
	fmt.Fprintf(c.Stdout, "signup %s\t(for every instance on the vault; set %s by %s)\n", o.String(), when(o.Set), orDash(o.By))
}
