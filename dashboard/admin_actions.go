package dashboard

import (
	"errors"
	"net/http"
	"net/url"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/usemysub/caddy-codex-proxy/keypolicy"
	"github.com/usemysub/caddy-codex-proxy/ops"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// The admin actions. Each is a POST behind csrf and admin, names its user
// (and key) by id in the form, calls one ops.Service use case with the
// admin as the actor, and redirects back to the user's page with a flash;
// a refusal shows the use case's own message with its status.

// adminSetEnabled disables or enables the form's user. Disabling takes
// effect at once on every instance: their keys get 403 and their
// dashboard sessions stop working (vault.SetUserDisabled, Changes).
func (d *Dashboard) adminSetEnabled(enabled bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, ok := d.adminTarget(w, r, r.PostFormValue("user"))
		if !ok {
			return
		}
		_, err := ops.Local(d.cfg.Vault).SetUserEnabled(r.Context(), u.Email, enabled)
		if err != nil {
			d.adminFailed(w, r, u, "changing a user's state", err)
			return
		}
		msg := "disabled"
		if enabled {
			msg = "enabled"
		}
		d.log.Info("dashboard: admin "+msg+" a user", "admin_id", sessionOf(r).user.ID, "user_id", u.ID)
		d.backToUser(w, r, u, "user"+msg)
	}
}

// adminRevokeKey revokes one of the form's user's keys.
func (d *Dashboard) adminRevokeKey(w http.ResponseWriter, r *http.Request) {
	u, keyID, ok := d.adminKeyTarget(w, r)
	if !ok {
		return
	}
	if _, err := ops.Local(d.cfg.Vault).RevokeKey(r.Context(), u.Email, keyID); err != nil {
		d.adminFailed(w, r, u, "revoking a key", err)
		return
	}
	d.log.Info("dashboard: admin revoked a key", "admin_id", sessionOf(r).user.ID, "user_id", u.ID, "key_id", keyID)
	d.backToUser(w, r, u, "revoked")
}

// adminKeyPolicy sets a key's policy from the form (every field; an empty
// one sets no limit), or clears it with clear=1. The account pin is the
// owner's choice and stays as it is.
func (d *Dashboard) adminKeyPolicy(w http.ResponseWriter, r *http.Request) {
	u, keyID, ok := d.adminKeyTarget(w, r)
	if !ok {
		return
	}
	clear := r.PostFormValue("clear") != ""
	changes := map[string]string{}
	for _, f := range keypolicy.FieldNames {
		if f == keypolicy.FieldAccount {
			continue
		}
		v := ""
		if !clear {
			v = r.PostFormValue(f)
		}
		if utf8.RuneCountInString(v) > maxPolicyText(f) {
			d.showAdminUser(w, r, http.StatusBadRequest, u, "", "Not saved: “"+policyLabels[f]+"” is too long.")
			return
		}
		changes[f] = v
	}
	_, err := ops.Local(d.cfg.Vault).UpdateKeyPolicy(r.Context(), keyID, ops.KeyUpdateRequest{Email: u.Email, Policy: changes})
	if err != nil {
		d.adminFailed(w, r, u, "changing a key's policy", err)
		return
	}
	d.log.Info("dashboard: admin changed a key's policy", "admin_id", sessionOf(r).user.ID, "user_id", u.ID, "key_id", keyID, "cleared", clear)
	if clear {
		d.backToUser(w, r, u, "policycleared")
		return
	}
	d.backToUser(w, r, u, "policy")
}

// adminKeyTarget is the form's user and key id.
func (d *Dashboard) adminKeyTarget(w http.ResponseWriter, r *http.Request) (vault.User, string, bool) {
	u, ok := d.adminTarget(w, r, r.PostFormValue("user"))
	if !ok {
		return u, "", false
	}
	id := r.PostFormValue("key")
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		d.renderError(w, r, http.StatusBadRequest, "Bad request", "That is not a key id.")
		return u, "", false
	}
	return u, id, true
}

// adminFailed shows the user's page with the use case's message: its own
// for a refusal (4xx), a generic one (and the log) for a failure.
func (d *Dashboard) adminFailed(w http.ResponseWriter, r *http.Request, u vault.User, what string, err error) {
	status, msg := ops.StatusOf(err), err.Error()
	if status >= 500 {
		d.log.Error("dashboard: admin "+what+" failed", "user_id", u.ID, "error", err)
		msg = "That did not work. Try again."
		if errors.Is(err, ops.ErrAuditUnavailable) {
			// Not the user's page either: showing it would be an
			// unrecorded view.
			d.renderError(w, r, status, "The audit log is unavailable", auditDownMessage)
			return
		}
	}
	d.showAdminUser(w, r, status, u, "", msg)
}

// backToUser redirects to the user's admin page with a flash.
func (d *Dashboard) backToUser(w http.ResponseWriter, r *http.Request, u vault.User, flashCode string) {
	http.Redirect(w, r, d.url("admin/user")+"?id="+url.QueryEscape(u.ID)+"&msg="+flashCode, http.StatusSeeOther)
}

// adminInvite makes an account for the form's email (ops.UpsertUser, as
// `users add` does, so closed sign-up lets them in) and, while email links
// are on, mails them a sign-in link. With email links off the account is
// made and they sign in by single sign-on.
func (d *Dashboard) adminInvite(w http.ResponseWriter, r *http.Request) {
	res, err := ops.Local(d.cfg.Vault).UpsertUser(r.Context(), ops.UserRequest{Email: r.PostFormValue("email")})
	if err != nil {
		status, msg := ops.StatusOf(err), err.Error()
		if status >= 500 {
			d.log.Error("dashboard: admin invite failed", "error", err)
			msg = "That did not work. Try again."
		}
		d.renderError(w, r, status, "The invitation was not sent", msg)
		return
	}
	u := res.User.User
	flashCode := "invitedsso"
	if d.emailLinks() {
		if !d.auditAdmin(w, r, vault.AuditInviteSent, u, "sign-in link mailed", auditDownMessage) {
			return
		}
		origin := d.origin(r)
		d.sendLoginMail(u.Email, func() (string, error) {
			token, err := d.cfg.Vault.CreateLoginToken(u.Email, d.cfg.LoginTTL)
			return origin + d.url("login/confirm") + "?token=" + url.QueryEscape(token), err
		})
		flashCode = "invited"
	}
	d.log.Info("dashboard: admin invited a user", "admin_id", sessionOf(r).user.ID, "user_id", u.ID, "created", res.Created)
	d.backToUser(w, r, u, flashCode)
}
