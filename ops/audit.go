package ops

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// Every operator action that changes the vault is recorded in its audit
// log with its actor (from the context, see [Actor]), its target and its
// outcome. The rule (docs/security.md): an action happens only once its
// entry is written. The entry is written first, then the change is made;
// if the audit log cannot be written the action is refused with a 503 and
// nothing changes. A change that fails after its entry was written adds a
// second entry, outcome "failed"; a check that refuses the action before
// that adds one entry, outcome "refused" (best effort: the refusal stands
// whether or not it is recorded).

// ErrAuditUnavailable is what an action fails with, as a 503, when its
// audit entry cannot be written.
var ErrAuditUnavailable = errors.New("the audit log could not be written, so nothing was changed")

// auditActor is the audit log's view of the context's actor.
func auditActor(ctx context.Context) (vault.AuditActor, string) {
	a, _ := ActorOf(ctx)
	switch {
	case a.UserID != "":
		return vault.AuditActor{Kind: vault.ActorAdmin, UserID: a.UserID, Email: a.Email}, a.Source
	case a.Via == ViaAdminAPI && a.CLI:
		return vault.AuditActor{Kind: vault.ActorCLI, OSUser: a.OSUser, Via: vault.ActorAdminAPI}, a.Source
	case a.Via == ViaAdminAPI:
		return vault.AuditActor{Kind: vault.ActorAdminAPI, OSUser: a.OSUser}, a.Source
	}
	return vault.AuditActor{Kind: vault.ActorCLI, OSUser: a.OSUser}, a.Source
}

// auditOp is one recorded action: begun with its target, committed when
// the checks pass, ended (deferred) to record a refusal.
type auditOp struct {
	l   local
	ctx context.Context
	e   vault.AuditEntry
	// done is set once commit wrote (or tried to write) the entry.
	done bool
}

// begin starts recording action on target.
func (l local) begin(ctx context.Context, action vault.AuditAction, target vault.AuditTarget) *auditOp {
	actor, source := auditActor(ctx)
	return &auditOp{l: l, ctx: ctx, e: vault.AuditEntry{Actor: actor, Source: source, Action: action, Target: target}}
}

// user sets the target user once it is known.
func (o *auditOp) user(u vault.User) *auditOp {
	o.e.Target.UserID, o.e.Target.Email = u.ID, u.Email
	return o
}

// detail sets the entry's detail.
func (o *auditOp) detail(s string) *auditOp { o.e.Detail = s; return o }

// commit writes the entry and only then runs change. An engine without an
// audit log records nothing and changes anyway (both engines here keep
// one).
func (o *auditOp) commit(change func() error) error {
	o.done = true
	if _, err := o.l.v.Audit(o.ctx, o.e); err != nil && !errors.Is(err, vault.ErrNoAuditStore) {
		return &Error{Status: http.StatusServiceUnavailable, Err: fmt.Errorf("%w: %w", ErrAuditUnavailable, err)}
	}
	if err := change(); err != nil {
		// A check inside the change (a race with another writer) is a
		// refusal; anything else a failure.
		outcome := vault.OutcomeFailed
		if StatusOf(err) < 500 {
			outcome = vault.OutcomeRefused
		}
		o.record(outcome, err)
		return err
	}
	return nil
}

// end records a refusal: deferred with the method's error, it writes a
// "refused" entry when the action failed before commit.
func (o *auditOp) end(err *error) {
	if o.done || *err == nil {
		return
	}
	outcome := vault.OutcomeRefused
	if StatusOf(*err) >= 500 {
		outcome = vault.OutcomeFailed
	}
	o.record(outcome, *err)
}

// record writes a follow-up entry, best effort: the caller's answer is
// the action's error, which says more than the audit log's would.
func (o *auditOp) record(outcome string, cause error) {
	e := o.e
	e.Outcome, e.Reason = outcome, cause.Error()
	_, _ = o.l.v.Audit(o.ctx, e)
}

// policyDetail is a policy change as "name=value" pairs in name order
// ("rpm=60 models=" clears models).
func policyDetail(changes map[string]string) string {
	names := make([]string, 0, len(changes))
	for n := range changes {
		names = append(names, n)
	}
	slices.Sort(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + "=" + changes[n]
	}
	return strings.Join(parts, " ")
}
