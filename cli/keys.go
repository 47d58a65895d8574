package cli

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/usemysub/caddy-codex-proxy/keypolicy"
	"github.com/usemysub/caddy-codex-proxy/ops"
)

// `caddy codex-proxy keys …`.

// policyFlagHelp documents each policy flag.
var policyFlagHelp = map[string]string{
	keypolicy.FieldExpires:       "Expiry: a duration from now (3s, 12h, 30d, 2w), a date (2027-01-31, valid through that UTC day), an RFC 3339 time, or never",
	keypolicy.FieldModels:        "Comma-separated models or glob patterns the key may use (gpt-5.5,gpt-5.4*); '' allows all",
	keypolicy.FieldRPM:           "Requests per minute; 0 for no limit",
	keypolicy.FieldConcurrency:   "Requests in progress at once; 0 for no limit",
	keypolicy.FieldTokensPerDay:  "Input+output tokens per UTC day; 0 for no limit",
	keypolicy.FieldTokensPerWeek: "Input+output tokens per ISO week (from Monday, UTC); 0 for no limit",
	keypolicy.FieldMaxEffort:     "Highest reasoning effort (none, minimal, low, medium, high, xhigh); higher requests are lowered to it; '' for none",
	keypolicy.FieldImages:        "Image generation: allow (the default) or deny",
	keypolicy.FieldServiceTier:   "Fast tier (service_tier fast/priority): allow (the default: the client chooses), deny (always the default tier) or force (always Fast)",
	keypolicy.FieldAccount:       "Pin the key to one of the user's linked ChatGPT accounts (its id, see accounts list): no failover to the others; '' to unpin",
}

// keysCommand builds `keys list|create|update|revoke`.
func (c *CLI) keysCommand() *cobra.Command {
	list := leaf("list --email <email>", "Lists a user's API keys", c.keysList)
	emailFlag(list)
	list.Flags().Bool("json", false, "Print JSON instead of a table")

	create := leaf("create --email <email> [--label <label>]", "Creates an API key and prints it", c.keysCreate)
	create.Long = `
Creates an API key for an existing user and prints it alone on standard output,
once. Policy flags (all optional; none means no limit) limit what the key may do.`
	emailFlag(create)
	create.Flags().String("label", "", "Label of the new key")
	addPolicyFlags(create)

	update := leaf("update --email <email> --id <key id> [policy flags] [--reset-usage]", "Changes an API key's policy or resets its usage", c.keysUpdate)
	update.Long = `
Changes only the policy flags given; clear a limit with 0 (--rpm 0),
--expires never, --models '' or --max-effort ''. --reset-usage sets the key's
usage counters back to zero.`
	emailFlag(update)
	idFlag(update)
	update.Flags().Bool("reset-usage", false, "Set the key's usage counters back to zero")
	addPolicyFlags(update)

	revoke := leaf("revoke --email <email> --id <key id>", "Revokes an API key", c.keysRevoke)
	emailFlag(revoke)
	idFlag(revoke)

	keys := &cobra.Command{Use: "keys", Short: "Lists, creates and revokes a user's API keys"}
	keys.AddCommand(list, create, update, revoke)
	return keys
}

// idFlag adds the required --id of a key.
func idFlag(cmd *cobra.Command) {
	cmd.Flags().String("id", "", "Id of the key, as keys list shows it (required)")
	_ = cmd.MarkFlagRequired("id")
}

// addPolicyFlags adds the policy flags to a keys subcommand.
func addPolicyFlags(cmd *cobra.Command) {
	for _, f := range keypolicy.FieldNames {
		cmd.Flags().String(f, "", policyFlagHelp[f])
	}
}

// policyChanges collects the policy flags given on the command line.
func policyChanges(fs *pflag.FlagSet) map[string]string {
	out := map[string]string{}
	for _, f := range keypolicy.FieldNames {
		if fs.Changed(f) {
			v, _ := fs.GetString(f)
			out[f] = v
		}
	}
	return out
}

// keysCreate implements `caddy codex-proxy keys create`.
func (c *CLI) keysCreate(fl flags) error {
	return c.run(fl, func(ctx context.Context, s ops.Service) error {
		email := fl.String("email")
		k, err := s.CreateKey(ctx, ops.KeyRequest{Email: email, Label: fl.String("label"), Policy: policyChanges(fl.FlagSet)})
		if err != nil {
			return err
		}
		return c.printKey(k, email)
	})
}

// printKey prints a new key, alone, on standard output.
func (c *CLI) printKey(k ops.CreatedKey, email string) error {
	fmt.Fprintf(c.Stderr, "created key %s for %s; it is printed on standard output and cannot be shown again\n", k.ID, email)
	_, err := fmt.Fprintln(c.Stdout, k.Plaintext)
	return err
}

// keysList implements `caddy codex-proxy keys list`.
func (c *CLI) keysList(fl flags) error {
	return c.run(fl, func(ctx context.Context, s ops.Service) error {
		res, err := s.ListKeys(ctx, fl.String("email"))
		if err != nil {
			return err
		}
		if fl.Bool("json") {
			return c.printJSON(res)
		}
		tw := tabwriter.NewWriter(c.Stdout, 0, 4, 2, ' ', 0)
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
func (c *CLI) keysUpdate(fl flags) error {
	return c.run(fl, func(ctx context.Context, s ops.Service) error {
		email, id := fl.String("email"), fl.String("id")
		changes := policyChanges(fl.FlagSet)
		reset := fl.Bool("reset-usage")
		if len(changes) == 0 && !reset {
			return errors.New("nothing to change: give policy flags (see --help) or --reset-usage")
		}
		if len(changes) > 0 {
			res, err := s.UpdateKeyPolicy(ctx, id, ops.KeyUpdateRequest{Email: email, Policy: changes})
			if err != nil {
				return err
			}
			fmt.Fprintf(c.Stderr, "updated key %s of %s: %s\n", id, email, policySummary(res.Key.Policy))
		}
		if reset {
			if _, err := s.ResetKeyUsage(ctx, email, id); err != nil {
				return err
			}
			fmt.Fprintf(c.Stderr, "reset the usage of key %s of %s\n", id, email)
		}
		return nil
	})
}

// keysRevoke implements `caddy codex-proxy keys revoke`.
func (c *CLI) keysRevoke(fl flags) error {
	return c.run(fl, func(ctx context.Context, s ops.Service) error {
		res, err := s.RevokeKey(ctx, fl.String("email"), fl.String("id"))
		if err != nil {
			return err
		}
		fmt.Fprintf(c.Stderr, "revoked key %s of %s\n", res.Revoked.ID, fl.String("email"))
		return nil
	})
}
