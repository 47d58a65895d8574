package cli

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/usemysub/caddy-codex-proxy/ops"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// `caddy codex-proxy audit list`.

// auditCommand builds `audit list`.
func (c *CLI) auditCommand() *cobra.Command {
	list := leaf("list [--since 24h|RFC3339] [--until …] [--user <email>] [--action <action>] [--actor <kind>] [--limit N] [--json|--csv]",
		"Lists the audit log: who did what to which user, key or account, newest first", c.auditList)
	list.Long = `
Lists the audit log, newest first: sign-ins, sign-outs everywhere, keys created,
revoked and changed, accounts linked and unlinked, users created, disabled and
enabled, admin views of a user's page — each with its actor (a user, an admin,
the CLI or the admin API with the operator's OS user), target, source address
and outcome. --user keeps entries by or about one user, deleted users included.
--limit 0 lists everything that matches (in pages of 1000).`
	list.Flags().String("since", "", "Only entries at or after this time: RFC 3339, or a duration back from now (24h, 7d)")
	list.Flags().String("until", "", "Only entries before this time (same forms as --since)")
	list.Flags().String("user", "", "Only entries by or about the user with this email")
	list.Flags().String("action", "", "Only this action (sign-in, key.revoked, user.disabled, …)")
	list.Flags().String("actor", "", "Only this kind of actor: user, admin, cli or admin-api")
	list.Flags().Int("limit", vault.DefaultAuditLimit, "At most this many entries (0: all)")
	list.Flags().Bool("json", false, "Print JSON instead of a table")
	list.Flags().Bool("csv", false, "Print CSV instead of a table")
	list.MarkFlagsMutuallyExclusive("json", "csv")
	audit := &cobra.Command{Use: "audit", Short: "Reads the audit log"}
	audit.AddCommand(list)
	return audit
}

// auditList implements `caddy codex-proxy audit list`.
func (c *CLI) auditList(fl flags) error {
	now := time.Now()
	req := ops.AuditRequest{Email: fl.String("user"), Action: vault.AuditAction(fl.String("action")), Actor: fl.String("actor")}
	var err error
	if req.Since, err = vault.ParseAuditTime(fl.String("since"), now); err != nil {
		return fmt.Errorf("--since: %w", err)
	}
	if req.Until, err = vault.ParseAuditTime(fl.String("until"), now); err != nil {
		return fmt.Errorf("--until: %w", err)
	}
	limit, _ := fl.GetInt("limit")
	if limit < 0 {
		return fmt.Errorf("--limit %d: use 0 for all, or a positive number", limit)
	}
	return c.run(fl, func(ctx context.Context, s ops.Service) error {
		var all []vault.AuditEntry
		for {
			req.Limit = vault.MaxAuditLimit
			if limit > 0 {
				req.Limit = min(limit-len(all), vault.MaxAuditLimit)
			}
			page, err := s.ListAudit(ctx, req)
			if err != nil {
				return err
			}
			all = append(all, page.Entries...)
			if page.Next == "" || limit > 0 && len(all) >= limit {
				break
			}
			req.Before = page.Next
		}
		switch {
		case fl.Bool("json"):
			if all == nil {
				all = []vault.AuditEntry{}
			}
			return c.printJSON(all)
		case fl.Bool("csv"):
			return ops.WriteAuditCSV(c.Stdout, all)
		}
		if len(all) == 0 {
			fmt.Fprintln(c.Stderr, "no audit entries match")
			return nil
		}
		tw := tabwriter.NewWriter(c.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TIME\tACTOR\tACTION\tTARGET\tOUTCOME\tSOURCE")
		for _, e := range all {
			outcome := e.Outcome
			if e.Reason != "" {
				outcome += ": " + e.Reason
			}
			action := string(e.Action)
			if e.Detail != "" {
				action += " (" + e.Detail + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.Local().Format("2006-01-02 15:04:05"), e.Actor,
				action, auditTarget(e.Target), outcome, orDash(e.Source))
		}
		return tw.Flush()
	})
}

// auditTarget names a target in a few words: "ada@example.com key k_…".
func auditTarget(t vault.AuditTarget) string {
	s := orDash(t.Email)
	if t.KeyID != "" {
		s += " key " + t.KeyID
	}
	if t.AccountID != "" {
		s += " account " + t.AccountID
	}
	return s
}

// osUser is who runs the CLI, for the audit log: the account's name, else
// $USER, else the uid.
func osUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if s := os.Getenv("USER"); s != "" {
		return s
	}
	return fmt.Sprintf("uid %d", os.Getuid())
}
