package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/usemysub/caddy-codex-proxy/ops"
)

// `caddy codex-proxy accounts …`: a user's linked ChatGPT accounts.

// accountsCommand builds `accounts add|list|remove|order|policy`.
func (c *CLI) accountsCommand() *cobra.Command {
	add := leaf("add --email <email> --auth-file <path|-> [--label <label>]",
		"Links one more ChatGPT account to a user, last in their order", c.accountsAdd)
	add.Long = `
Links the ChatGPT login of a Codex CLI auth.json (- reads standard input) to the
user as one more account, last in their order of preference. A login the user
has linked already (same ChatGPT account and email) is re-linked in place.`
	emailFlag(add)
	add.Flags().String("auth-file", "", "Codex CLI auth.json to link (- for standard input; required)")
	add.Flags().String("label", "", "Name of the account, e.g. work or personal")
	_ = add.MarkFlagRequired("auth-file")

	list := leaf("list --email <email> [--json]", "Lists a user's linked ChatGPT accounts in their order", c.accountsList)
	emailFlag(list)
	list.Flags().Bool("json", false, "Print JSON instead of a table")

	remove := leaf("remove --email <email> --id <account id>", "Unlinks one of a user's ChatGPT accounts", c.accountsRemove)
	emailFlag(remove)
	remove.Flags().String("id", "", "Id of the account, as accounts list shows it (required)")
	_ = remove.MarkFlagRequired("id")

	order := leaf("order --email <email> --ids <id1,id2,…>", "Sets the order in which a user's accounts are used", c.accountsOrder)
	emailFlag(order)
	order.Flags().String("ids", "", "Account ids, first preferred; accounts not listed follow in their current order (required)")
	_ = order.MarkFlagRequired("ids")

	policy := leaf("policy --email <email> prefer-order|most-remaining", "Sets how a user's account is chosen for a request", c.accountsPolicy)
	policy.Long = `
prefer-order (the default) uses the first account in the user's order until it
reaches its usage limit, then the next. most-remaining uses the account with the
most quota left in its tighter window, as the upstream last reported it.`
	policy.Args = cobra.ExactArgs(1)
	emailFlag(policy)

	accounts := &cobra.Command{Use: "accounts", Short: "Links, lists, orders and unlinks a user's ChatGPT accounts"}
	accounts.AddCommand(add, list, remove, order, policy)
	return accounts
}

// accountsAdd implements `caddy codex-proxy accounts add`.
func (c *CLI) accountsAdd(fl flags) error {
	auth, err := c.readAuthFile(fl.String("auth-file"))
	if err != nil {
		return err // checked before connecting: a wrong file changes nothing
	}
	return c.run(fl, func(ctx context.Context, s ops.Service) error {
		a, err := s.AddAccount(ctx, ops.AccountAddRequest{Email: fl.String("email"), AuthJSON: auth, Label: fl.String("label")})
		if err != nil {
			return err
		}
		fmt.Fprintf(c.Stderr, "linked account %s (%s) to %s, position %d\n", a.ID, chatGPTStatus(&a.TokenInfo), fl.String("email"), a.Position)
		_, err = fmt.Fprintln(c.Stdout, a.ID)
		return err
	})
}

// accountsList implements `caddy codex-proxy accounts list`.
func (c *CLI) accountsList(fl flags) error {
	return c.run(fl, func(ctx context.Context, s ops.Service) error {
		res, err := s.ListAccounts(ctx, fl.String("email"))
		if err != nil {
			return err
		}
		if fl.Bool("json") {
			return c.printJSON(res)
		}
		return c.printAccounts(res)
	})
}

// printAccounts writes the accounts table.
func (c *CLI) printAccounts(res ops.AccountsResult) error {
	fmt.Fprintf(c.Stderr, "policy: %s\n", res.Policy)
	tw := tabwriter.NewWriter(c.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tID\tLABEL\tCHATGPT\tPLAN\tSTATUS\tLINKED")
	for _, a := range res.Accounts {
		status := "ok"
		switch {
		case a.RelinkNeeded:
			status = "relink needed"
		case !a.ExhaustedUntil.IsZero():
			status = "at limit until " + a.ExhaustedUntil.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Position, a.ID, orDash(a.Label), orDash(a.Email), orDash(a.PlanType), status, when(a.Linked))
	}
	return tw.Flush()
}

// accountsRemove implements `caddy codex-proxy accounts remove`.
func (c *CLI) accountsRemove(fl flags) error {
	return c.run(fl, func(ctx context.Context, s ops.Service) error {
		res, err := s.RemoveAccount(ctx, fl.String("email"), fl.String("id"))
		if err != nil {
			return err
		}
		fmt.Fprintf(c.Stderr, "unlinked account %s of %s; %d left\n", fl.String("id"), fl.String("email"), len(res.Accounts))
		return nil
	})
}

// accountsOrder implements `caddy codex-proxy accounts order`.
func (c *CLI) accountsOrder(fl flags) error {
	var ids []string
	for _, id := range strings.Split(fl.String("ids"), ",") {
		if id = strings.TrimSpace(id); id != "" {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return errors.New("--ids names no account")
	}
	return c.run(fl, func(ctx context.Context, s ops.Service) error {
		res, err := s.OrderAccounts(ctx, ops.AccountOrderRequest{Email: fl.String("email"), IDs: ids})
		if err != nil {
			return err
		}
		return c.printAccounts(res)
	})
}

// accountsPolicy implements `caddy codex-proxy accounts policy`.
func (c *CLI) accountsPolicy(fl flags) error {
	policy := fl.args[0]
	return c.run(fl, func(ctx context.Context, s ops.Service) error {
		res, err := s.SetAccountPolicy(ctx, ops.AccountPolicyRequest{Email: fl.String("email"), Policy: policy})
		if err != nil {
			return err
		}
		fmt.Fprintf(c.Stderr, "%s now uses %s\n", res.Email, res.Policy)
		return nil
	})
}
