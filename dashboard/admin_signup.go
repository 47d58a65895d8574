package dashboard

import (
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/usemysub/caddy-codex-proxy/ops"
)

// The sign-up policy page: the policy in force and where it comes from
// (this site's config, or the override an operator set for every instance
// on the vault), and the form that sets or clears the override through
// ops.Service.SetSignup, as `caddy codex-proxy signup` does.

// maxDomainsText bounds the domains field.
const maxDomainsText = 4096

type adminSignupBody struct {
	InForce signupInForce
	// Config is this site's own policy (the Caddyfile's signup).
	Config SignupPolicy
	// The form's values: what was typed after a refusal, else the policy
	// in force.
	Mode    string
	Domains string
}

// adminSignup shows the page.
func (d *Dashboard) adminSignup(w http.ResponseWriter, r *http.Request) {
	d.showSignup(w, r, http.StatusOK, flash(r), "", nil)
}

// showSignup renders the page; form holds the values to show again after
// a refusal (nil: the policy in force).
func (d *Dashboard) showSignup(w http.ResponseWriter, r *http.Request, status int, flashMsg, errMsg string, form *ops.SignupRequest) {
	b := adminSignupBody{InForce: d.signupPolicy(r.Context()), Config: d.cfg.Signup}
	if form != nil {
		b.Mode, b.Domains = form.Mode, strings.Join(form.Domains, " ")
	} else {
		b.Mode, b.Domains = string(b.InForce.Mode), strings.Join(b.InForce.Domains, " ")
	}
	d.render(w, r, status, "admin_signup", pageData{Title: "Sign-up", Nav: "admin", Flash: flashMsg, Error: errMsg, Body: b})
}

// adminSignupSubmit sets the override from the form (mode, and the
// domains separated by spaces, commas or lines) or clears it (clear=1).
func (d *Dashboard) adminSignupSubmit(w http.ResponseWriter, r *http.Request) {
	req := ops.SignupRequest{Clear: r.PostFormValue("clear") != ""}
	if !req.Clear {
		text := r.PostFormValue("domains")
		req.Mode = strings.TrimSpace(r.PostFormValue("mode"))
		if utf8.RuneCountInString(text) > maxDomainsText || len(req.Mode) > 16 {
			d.showSignup(w, r, http.StatusBadRequest, "", "Not saved: the domains are too long.", nil)
			return
		}
		req.Domains = strings.FieldsFunc(text, func(c rune) bool { return c == ',' || c == ';' || c == ' ' || c == '\t' || c == '\r' || c == '\n' })
		if req.Mode != string(SignupDomains) {
			// The form keeps the domains field filled when another mode
			// is picked: they belong to mode domains only.
			req.Domains = nil
		}
	}
	res, err := ops.Local(d.cfg.Vault).SetSignup(r.Context(), req)
	if err != nil {
		status, msg := ops.StatusOf(err), err.Error()
		if status >= 500 {
			d.log.Error("dashboard: admin changing the sign-up policy failed", "error", err)
			msg = "That did not work. Try again."
		}
		d.showSignup(w, r, status, "", "Not saved: "+msg, &req)
		return
	}
	policy := "cleared"
	if res.Override != nil {
		policy = res.Override.String()
	}
	d.log.Info("dashboard: admin changed the sign-up policy", "admin_id", sessionOf(r).user.ID, "signup", policy)
	code := "signup"
	if req.Clear {
		code = "signupcleared"
	}
	http.Redirect(w, r, d.url("admin/signup")+"?msg="+code, http.StatusSeeOther)
}
