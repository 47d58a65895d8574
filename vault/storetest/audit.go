package storetest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// auditEntry is an entry by admin u-adm about targetUser at t, its id
// derived from t as the Vault derives it.
func auditEntry(t time.Time, targetUser string, action vault.AuditAction) vault.AuditEntry {
	return vault.AuditEntry{ID: vault.NewAuditID(t), Time: t, Action: action, Outcome: vault.OutcomeOK,
		Actor:  vault.AuditActor{Kind: vault.ActorAdmin, UserID: "u-adm", Email: "adm@example.com"},
		Target: vault.AuditTarget{UserID: targetUser, Email: targetUser + "@example.com", KeyID: "k1", AccountID: "a1"},
		Source: "192.0.2.7:4242", Detail: "rpm=60", Reason: ""}
}

// audits asserts s keeps an audit log (both engines here do).
func audits(t *testing.T, s vault.Store) vault.AuditStore {
	t.Helper()
	as, ok := s.(vault.AuditStore)
	if !ok {
		t.Skipf("%T does not implement the optional vault.AuditStore", s)
	}
	return as
}

// auditIDs lists entries' actions and target users, for comparisons.
func auditIDs(es []vault.AuditEntry) string {
	var out []string
	for _, e := range es {
		out = append(out, string(e.Action)+"@"+e.Target.UserID)
	}
	return strings.Join(out, " ")
}

// testAudit: entries come back whole, newest first, page by id, refuse a
// taken id, survive a reopen and outlive the user they are about.
func testAudit(t *testing.T, h *harness) {
	s := h.store()
	as := audits(t, s)
	mustUser(t, s, "u-a", "u-a@example.com")
	first := auditEntry(t0, "u-a", vault.AuditKeyCreated)
	first.Actor = vault.AuditActor{Kind: vault.ActorCLI, OSUser: "root", Via: vault.ActorAdminAPI}
	first.Outcome, first.Reason, first.Source = vault.OutcomeRefused, "no such key", ""
	must(t, as.AppendAudit(ctx, first))
	wantErr(t, "AppendAudit with a taken id", as.AppendAudit(ctx, first), vault.ErrDuplicate)
	for i, a := range []vault.AuditAction{vault.AuditKeyRevoked, vault.AuditUserDisabled, vault.AuditUserEnabled} {
		must(t, as.AppendAudit(ctx, auditEntry(t0.Add(time.Duration(i+1)*time.Second), "u-a", a)))
	}
	got, err := as.ListAudit(ctx, vault.AuditQuery{})
	must(t, err)
	same(t, "ListAudit, newest first", auditIDs(got), "user.enabled@u-a user.disabled@u-a key.revoked@u-a key.created@u-a")
	same(t, "the oldest entry whole", got[3], first)

	page, err := as.ListAudit(ctx, vault.AuditQuery{Limit: 2})
	must(t, err)
	same(t, "first page", auditIDs(page), "user.enabled@u-a user.disabled@u-a")
	page, err = as.ListAudit(ctx, vault.AuditQuery{Limit: 2, Before: page[1].ID})
	must(t, err)
	same(t, "second page", auditIDs(page), "key.revoked@u-a key.created@u-a")
	page, err = as.ListAudit(ctx, vault.AuditQuery{Limit: 2, Before: page[1].ID})
	must(t, err)
	same(t, "past the last page", len(page), 0)

	// Entries are history: deleting their user leaves them.
	must(t, s.DeleteUser(ctx, "u-a"))
	must(t, closeOnce(s))
	s = h.store()
	as = audits(t, s)
	got, err = as.ListAudit(ctx, vault.AuditQuery{TargetUserID: "u-a"})
	must(t, err)
	same(t, "entries about a deleted user after a reopen", len(got), 4)
	all, err := as.ExportAudit(ctx)
	must(t, err)
	same(t, "ExportAudit", len(all), 4)
}

// testAuditFilters: each filter of AuditQuery alone and together, in the
// engine as AuditQuery.Match says, and the limit's cap.
func testAuditFilters(t *testing.T, h *harness) {
	s := h.store()
	as := audits(t, s)
	var all []vault.AuditEntry
	for i := range 12 {
		e := auditEntry(t0.Add(time.Duration(i)*time.Minute), []string{"u-a", "u-b", "u-c"}[i%3], vault.AuditActions[i%4])
		if i%4 == 3 {
			e.Actor = vault.AuditActor{Kind: vault.ActorUser, UserID: "u-c", Email: "u-c@example.com"}
		}
		must(t, as.AppendAudit(ctx, e))
		all = append([]vault.AuditEntry{e}, all...)
	}
	queries := []vault.AuditQuery{
		{Since: t0.Add(3 * time.Minute)},
		{Until: t0.Add(3 * time.Minute)},
		{Since: t0.Add(2 * time.Minute), Until: t0.Add(8 * time.Minute)},
		{UserID: "u-c"},
		{Email: "u-b@example.com"},
		{UserID: "u-a", Email: "u-b@example.com", Action: vault.AuditActions[2]},
		{TargetUserID: "u-c"},
		{ActorKind: vault.ActorUser},
		{Action: vault.AuditActions[1]},
		{Action: vault.AuditActions[0], TargetUserID: "u-a"},
		{Before: all[4].ID, UserID: "u-b"},
		{Since: t0.Add(time.Hour)},
		{Limit: 3, ActorKind: vault.ActorAdmin},
	}
	for i, q := range queries {
		t.Run(fmt.Sprint("query ", i), func(t *testing.T) {
			var want []vault.AuditEntry
			for _, e := range all {
				if q.Match(e) && len(want) < vault.AuditLimit(q.Limit) {
					want = append(want, e)
				}
			}
			got, err := as.ListAudit(ctx, q)
			must(t, err)
			same(t, "ListAudit", auditIDs(got), auditIDs(want))
			if len(want) == 0 && len(got) != 0 {
				t.Fatalf("ListAudit = %d entries, want none", len(got))
			}
		})
	}
	for range vault.MaxAuditLimit + 5 - 12 {
		must(t, as.AppendAudit(ctx, auditEntry(t0.Add(-time.Hour), "u-z", vault.AuditSignIn)))
	}
	got, err := as.ListAudit(ctx, vault.AuditQuery{Limit: vault.MaxAuditLimit * 2})
	must(t, err)
	same(t, "entries past the cap", len(got), vault.MaxAuditLimit)
}

// testAuditPurge: entries older than the cut go, the rest stay; purging
// again removes nothing.
func testAuditPurge(t *testing.T, h *harness) {
	s := h.store()
	as := audits(t, s)
	for i := range 5 {
		must(t, as.AppendAudit(ctx, auditEntry(t0.Add(time.Duration(i)*day), "u-a", vault.AuditSignIn)))
	}
	n, err := as.PurgeAudit(ctx, t0.Add(2*day))
	must(t, err)
	same(t, "purged", n, 2)
	n, err = as.PurgeAudit(ctx, t0.Add(2*day))
	must(t, err)
	same(t, "purged again", n, 0)
	got, err := as.ListAudit(ctx, vault.AuditQuery{})
	must(t, err)
	same(t, "left after the purge", len(got), 3)
	same(t, "oldest left", got[2].Time, t0.Add(2*day))
}
