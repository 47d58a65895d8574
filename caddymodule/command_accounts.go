package caddymodule

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// `caddy codex-proxy accounts …`: a user's linked ChatGPT accounts.

// accountManager is what the accounts commands need of a manager; both
// fileManager and adminManager have it.
type accountManager interface {
	listAccounts(email string) (accountsResult, error)
	addAccount(req accountAddRequest) (vault.Account, error)
	removeAccount(email, id string) (accountsResult, error)
	orderAccounts(email string, ids []string) (accountsResult, error)
	setAccountPolicy(email, policy string) (accountsResult, error)
}

func (m fileManager) listAccounts(email string) (accountsResult, error) {
	return listAccounts(m.v, email)
}
func (m fileManager) addAccount(req accountAddRequest) (vault.Account, error) {
	return addAccount(m.v, req.Email, req.AuthJSON, req.Label)
}
func (m fileManager) removeAccount(email, id string) (accountsResult, error) {
	if err := removeAccount(m.v, email, id); err != nil {
		return accountsResult{}, err
	}
	return listAccounts(m.v, email)
}
func (m fileManager) orderAccounts(email string, ids []string) (accountsResult, error) {
	return orderAccounts(m.v, email, ids)
}
func (m fileManager) setAccountPolicy(email, policy string) (accountsResult, error) {
	return setAccountPolicy(m.v, email, policy)
}

func (m adminManager) listAccounts(email string) (res accountsResult, err error) {
	return res, m.call(http.MethodGet, adminPrefix+"accounts", url.Values{"email": {email}}, nil, &res)
}
func (m adminManager) addAccount(req accountAddRequest) (res vault.Account, err error) {
	return res, m.call(http.MethodPost, adminPrefix+"accounts", nil, req, &res)
}
func (m adminManager) removeAccount(email, id string) (res accountsResult, err error) {
	return res, m.call(http.MethodDelete, adminPrefix+"accounts/"+url.PathEscape(id), url.Values{"email": {email}}, nil, &res)
}
func (m adminManager) orderAccounts(email string, ids []string) (res accountsResult, err error) {
	return res, m.call(http.MethodPost, adminPrefix+"accounts/order", nil, accountOrderRequest{Email: email, IDs: ids}, &res)
}
func (m adminManager) setAccountPolicy(email, policy string) (res accountsResult, err error) {
	return res, m.call(http.MethodPost, adminPrefix+"accounts/policy", nil, accountPolicyRequest{Email: email, Policy: policy}, &res)
}

// accountsCommand builds `caddy codex-proxy accounts`.
func (c *cli) accountsCommand() *cobra.Command {
	add := c.leaf("add --email <email> --auth-file <path|-> [--label <label>]",
		"Links one more ChatGPT account to a user, last in their order", c.accountsAdd)
	add.Long = `
Links the ChatGPT login of a Codex CLI auth.json (- reads standard input) to the
user as one more account, last in their order of preference. A login the user
has linked already (same ChatGPT account and email) is re-linked in place.`
	add.Flags().String("email", "", "Email of the user (required)")
	add.Flags().String("auth-file", "", "Codex CLI auth.json to link (- for standard input; required)")
	add.Flags().String("label", "", "Name of the account, e.g. work or personal")
	_ = add.MarkFlagRequired("email")
	_ = add.MarkFlagRequired("auth-file")

	list := c.leaf("list --email <email> [--json]", "Lists a user's linked ChatGPT accounts in their order", c.accountsList)
	list.Flags().String("email", "", "Email of the user (required)")
	list.Flags().Bool("json", false, "Print JSON instead of a table")
	_ = list.MarkFlagRequired("email")

	remove := c.leaf("remove --email <email> --id <account id>", "Unlinks one of a user's ChatGPT accounts", c.accountsRemove)
	remove.Flags().String("email", "", "Email of the user (required)")
	remove.Flags().String("id", "", "Id of the account, as accounts list shows it (required)")
	_ = remove.MarkFlagRequired("email")
	_ = remove.MarkFlagRequired("id")

	order := c.leaf("order --email <email> --ids <id1,id2,…>", "Sets the order in which a user's accounts are used", c.accountsOrder)
	order.Flags().String("email", "", "Email of the user (required)")
	order.Flags().String("ids", "", "Account ids, first preferred; accounts not listed follow in their current order (required)")
	_ = order.MarkFlagRequired("email")
	_ = order.MarkFlagRequired("ids")

	policy := c.leaf("policy --email <email> prefer-order|most-remaining", "Sets how a user's account is chosen for a request", c.accountsPolicy)
	policy.Long = `
prefer-order (the default) uses the first account in the user's order until it
reaches its usage limit, then the next. most-remaining uses the account with the
most quota left in its tighter window, as the upstream last reported it.`
	policy.Args = cobra.ExactArgs(1)
	policy.Flags().String("email", "", "Email of the user (required)")
	_ = policy.MarkFlagRequired("email")

	accounts := &cobra.Command{Use: "accounts", Short: "Links, lists, orders and unlinks a user's ChatGPT accounts"}
	accounts.AddCommand(add, list, remove, order, policy)
	return accounts
}

// runAccounts is run for a command that needs an accountManager.
func (c *cli) runAccounts(fl caddycmd.Flags, fn func(accountManager) error) (int, error) {
	return c.run(fl, func(m manager) error {
		am, ok := m.(accountManager)
		if !ok {
			return errors.New("this manager cannot manage accounts")
		}
		return fn(am)
	})
}

// accountsAdd implements `caddy codex-proxy accounts add`.
func (c *cli) accountsAdd(fl caddycmd.Flags) (int, error) {
	auth, err := c.readAuthFile(fl.String("auth-file"))
	if err != nil {
		return exitFailed, err // checked before connecting: a wrong file changes nothing
	}
	return c.runAccounts(fl, func(m accountManager) error {
		a, err := m.addAccount(accountAddRequest{Email: fl.String("email"), AuthJSON: auth, Label: fl.String("label")})
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stderr, "linked account %s (%s) to %s, position %d\n", a.ID, chatGPTStatus(&a.TokenInfo), fl.String("email"), a.Position)
		_, err = fmt.Fprintln(c.stdout, a.ID)
		return err
	})
}

// accountsList implements `caddy codex-proxy accounts list`.
func (c *cli) accountsList(fl caddycmd.Flags) (int, error) {
	return c.runAccounts(fl, func(m accountManager) error {
		res, err := m.listAccounts(fl.String("email"))
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
func (c *cli) printAccounts(res accountsResult) error {
	fmt.Fprintf(c.stderr, "policy: %s\n", res.Policy)
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
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
func (c *cli) accountsRemove(fl caddycmd.Flags) (int, error) {
	return c.runAccounts(fl, func(m accountManager) error {
		res, err := m.removeAccount(fl.String("email"), fl.String("id"))
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stderr, "unlinked account %s of %s; %d left\n", fl.String("id"), fl.String("email"), len(res.Accounts))
		return nil
	})
}

// accountsOrder implements `caddy codex-proxy accounts order`.
func (c *cli) accountsOrder(fl caddycmd.Flags) (int, error) {
	var ids []string
	for _, id := range strings.Split(fl.String("ids"), ",") {
		if id = strings.TrimSpace(id); id != "" {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return exitFailed, errors.New("--ids names no account")
	}
	return c.runAccounts(fl, func(m accountManager) error {
		res, err := m.orderAccounts(fl.String("email"), ids)
		if err != nil {
			return err
		}
		return c.printAccounts(res)
	})
}

// accountsPolicy implements `caddy codex-proxy accounts policy`.
func (c *cli) accountsPolicy(fl caddycmd.Flags) (int, error) {
	policy := fl.Arg(0)
	return c.runAccounts(fl, func(m accountManager) error {
		res, err := m.setAccountPolicy(fl.String("email"), policy)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stderr, "%s now uses %s\n", res.Email, res.Policy)
		return nil
	})
}

// compile-time checks: both managers manage accounts.
var (
	_ accountManager = fileManager{}
	_ accountManager = adminManager{}
)
