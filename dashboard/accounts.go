package dashboard

import (
	"errors"
	"net/http"
	"slices"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// Several ChatGPT accounts per user: the ChatGPT page lists them in their
// order with their usage windows, and lets the user move one up, remove
// one, choose the routing policy and add another (the link flows with
// from=add).

// accountView is one linked account on the ChatGPT page and the overview.
type accountView struct {
	vault.Account
	Name      string // label, else ChatGPT email, else id
	Quota     quotaView
	Exhausted bool
	First     bool
	Last      bool
}

// accountViews is the user's accounts in their order, with their windows.
func (d *Dashboard) accountViews(userID string) ([]accountView, error) {
	accts, err := d.cfg.Vault.Accounts(userID)
	if err != nil {
		return nil, err
	}
	now := d.cfg.Now()
	out := make([]accountView, len(accts))
	for i, a := range accts {
		v := accountView{Account: a, Name: a.Label, First: i == 0, Last: i == len(accts)-1, Exhausted: !a.ExhaustedUntil.IsZero()}
		if v.Name == "" {
			v.Name = a.Email
		}
		if v.Name == "" {
			v.Name = a.ID
		}
		snap, ok := d.cfg.Quotas.GetAccount(userID, a.ID)
		v.Quota = buildQuotaView(snap, ok, now)
		for j := range v.Quota.Windows {
			v.Quota.Windows[j].ID = a.ID + "-" + v.Quota.Windows[j].ID // unique element ids per account
		}
		out[i] = v
	}
	return out, nil
}

// accountMove moves one account a place up or down in the user's order.
func (d *Dashboard) accountMove(w http.ResponseWriter, r *http.Request) {
	s := sessionOf(r)
	id, dir := r.PostFormValue("id"), r.PostFormValue("dir")
	accts, err := d.cfg.Vault.Accounts(s.user.ID)
	if err != nil {
		d.showChatGPT(w, r, http.StatusInternalServerError, "", "The accounts could not be read. Try again.")
		return
	}
	ids := make([]string, len(accts))
	for i, a := range accts {
		ids[i] = a.ID
	}
	i := slices.Index(ids, id)
	j := i - 1
	if dir == "down" {
		j = i + 1
	}
	if i < 0 || j < 0 || j >= len(ids) {
		d.showChatGPT(w, r, http.StatusBadRequest, "", "That account cannot move there.")
		return
	}
	ids[i], ids[j] = ids[j], ids[i]
	if err := d.cfg.Vault.SetAccountOrder(s.user.ID, ids); err != nil {
		d.log.Error("dashboard: reordering accounts failed", "user_id", s.user.ID, "error", err)
		d.showChatGPT(w, r, http.StatusInternalServerError, "", "The order could not be saved. Try again.")
		return
	}
	d.audit(r, vault.AuditAccountsOrdered, vault.AuditTarget{AccountID: id}, orderDetail(ids))
	http.Redirect(w, r, d.url("chatgpt")+"#accounts", http.StatusSeeOther)
}

// accountRemove unlinks one account.
func (d *Dashboard) accountRemove(w http.ResponseWriter, r *http.Request) {
	s := sessionOf(r)
	err := d.cfg.Vault.RemoveAccount(s.user.ID, r.PostFormValue("id"))
	switch {
	case errors.Is(err, vault.ErrNoSuchAccount):
		d.showChatGPT(w, r, http.StatusNotFound, "", "That account is not linked.")
		return
	case err != nil:
		d.log.Error("dashboard: removing an account failed", "user_id", s.user.ID, "error", err)
		d.showChatGPT(w, r, http.StatusInternalServerError, "", "The account could not be removed. Try again.")
		return
	}
	d.log.Info("dashboard: ChatGPT account removed", "user_id", s.user.ID, "account", r.PostFormValue("id"))
	d.audit(r, vault.AuditAccountUnlinked, vault.AuditTarget{AccountID: r.PostFormValue("id")}, "")
	http.Redirect(w, r, d.url("chatgpt")+"#accounts", http.StatusSeeOther)
}

// accountPolicy sets how the user's account is chosen.
func (d *Dashboard) accountPolicy(w http.ResponseWriter, r *http.Request) {
	s := sessionOf(r)
	if _, err := d.cfg.Vault.SetAccountPolicy(s.user.ID, r.PostFormValue("policy")); err != nil {
		d.showChatGPT(w, r, http.StatusBadRequest, "", "Choose one of the two ways.")
		return
	}
	d.audit(r, vault.AuditAccountPolicySet, vault.AuditTarget{}, r.PostFormValue("policy"))
	http.Redirect(w, r, d.url("chatgpt")+"#accounts", http.StatusSeeOther)
}
