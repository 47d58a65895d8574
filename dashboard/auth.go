package dashboard

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/usemysub/caddy-codex-proxy/ratelimit"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// flashes are the messages a redirect can ask the next page to show, by
// code, so no text from the URL is ever reflected.
var flashes = map[string]string{
	"signedout":  "You are signed out.",
	"everywhere": "You are signed out on every device and browser.",
	"linked":     "Your ChatGPT account is linked.",
	"unlinked":   "Your ChatGPT account was unlinked. API calls fail until you link one again.",
	"revoked":    "The key was revoked. Requests with it now fail with 401.",
	"flowgone":   "That ChatGPT sign-in has expired. Start again below.",
	"policy":     "The key's limits were saved. They apply from its next request.",
	"reset":      "The key's usage was reset.",

	"userdisabled":  "The user is disabled: their keys are refused with 403 and their sessions have ended.",
	"userenabled":   "The user is enabled again: their keys and sign-in work again.",
	"policycleared": "The key's limits were cleared.",
	"invited":       "The user can sign in: a sign-in link is on its way to them.",
	"invitedsso":    "The user can sign in now with single sign-on.",
	"signup":        "Saved: every instance on this vault applies this sign-up policy within a few seconds.",
	"signupcleared": "Cleared: each site’s Caddyfile decides sign-up again, within a few seconds on every instance.",
}

// flash is the message named by the msg query parameter.
func flash(r *http.Request) string { return flashes[r.URL.Query().Get("msg")] }

type landingBody struct {
	BaseURL    string
	Signup     SignupMode
	EmailLinks bool
	SSO        string // the SSO button's label; empty without it
}

// landing is the front page: a pitch and the way in, or straight to the
// right page for someone signed in.
func (d *Dashboard) landing(w http.ResponseWriter, r *http.Request) {
	if s := d.lookupSession(r); s != nil {
		http.Redirect(w, r, d.home(s.user), http.StatusSeeOther)
		return
	}
	d.render(w, r, http.StatusOK, "landing", pageData{
		Title: "Your ChatGPT subscription as an OpenAI API",
		Body: landingBody{BaseURL: d.origin(r) + "/v1", Signup: d.signupPolicy(r.Context()).Mode,
			EmailLinks: d.emailLinks(), SSO: d.loginBody("", "").SSO},
	})
}

// home is where a user lands after signing in: onboarding until they have
// a linked ChatGPT account and a key, then the overview.
func (d *Dashboard) home(u vault.User) string {
	if _, err := d.cfg.Vault.TokenInfo(u.ID); err != nil {
		return d.url("onboarding")
	}
	if n, _ := d.activeKeys(u.ID); n == 0 {
		return d.url("onboarding")
	}
	return d.url("overview")
}

// activeKeys counts the user's keys that are not revoked.
func (d *Dashboard) activeKeys(userID string) (int, error) {
	keys, err := d.cfg.Vault.ListKeys(userID)
	n := 0
	for _, k := range keys {
		if !k.Disabled {
			n++
		}
	}
	return n, err
}

type loginBody struct {
	Email   string
	Next    string
	Sent    bool
	DevLink string
	Minutes int
	Signup  SignupMode
	// SSO is the single sign-on button's label; empty without it.
	SSO string
	// EmailLinks shows the email form.
	EmailLinks bool
}

// loginBody is the sign-in page's body for next.
func (d *Dashboard) loginBody(email, next string) loginBody {
	b := loginBody{Email: email, Next: next, Signup: d.signupPolicy(context.Background()).Mode, EmailLinks: d.emailLinks()}
	if d.cfg.OIDC != nil {
		b.SSO = d.cfg.OIDC.label()
	}
	return b
}

func (d *Dashboard) loginPage(w http.ResponseWriter, r *http.Request) {
	if s := d.lookupSession(r); s != nil {
		http.Redirect(w, r, d.home(s.user), http.StatusSeeOther)
		return
	}
	if id := r.URL.Query().Get("sent"); id != "" {
		// After post/redirect/get: the "check your email" page, again on a
		// reload, without sending another link.
		if v, ok := d.flashes.peek(id, "visitor:"+d.csrfToken(w, r), d.cfg.Now()); ok {
			if body, ok := v.(loginBody); ok {
				d.render(w, r, http.StatusOK, "login", pageData{Title: "Check your email", Body: body})
				return
			}
		}
	}
	d.render(w, r, http.StatusOK, "login", pageData{
		Title: "Sign in",
		Flash: flash(r),
		Body:  d.loginBody("", d.safeNext(r.URL.Query().Get("next"))),
	})
}

// loginSubmit sends a magic link. The page says the same thing whether or
// not the address has (or may create) an account, and the mail goes out in
// the background so the answer takes as long either way.
func (d *Dashboard) loginSubmit(w http.ResponseWriter, r *http.Request) {
	raw := strings.TrimSpace(r.PostFormValue("email"))
	next := d.safeNext(r.PostFormValue("next"))
	body := d.loginBody(raw, next)
	email, problem := checkEmail(raw, d.cfg.DevReturnLink)
	if problem == "" {
		var err error
		if email, err = vault.NormalizeEmail(email); err != nil {
			problem = emailBareOnly
		}
	}
	if problem != "" {
		if len(raw) > maxEmailLen {
			// Not an address anyone has: the form gets back a prefix, not
			// the whole post.
			body.Email = quoteInput(raw)
		}
		d.render(w, r, http.StatusBadRequest, "login", pageData{Title: "Sign in", Error: problem, Body: body})
		return
	}
	ip := d.cfg.ClientIP(r)
	if ok, wait := d.allowLoginLink(ip, email); !ok {
		mins := int((wait + time.Minute - 1) / time.Minute)
		w.Header().Set("Retry-After", strconv.FormatInt(ratelimit.Seconds(wait), 10))
		d.log.Info("dashboard: sign-in link refused: rate limited", "ip", ip, "email", email)
		d.render(w, r, http.StatusTooManyRequests, "login", pageData{
			Title: "Sign in",
			Error: fmt.Sprintf("Too many sign-in links were asked for. Try again in %d minute%s.", mins, plural(mins)),
			Body:  body,
		})
		return
	}
	body.Sent = true
	body.Email = email
	body.Minutes = int(d.cfg.LoginTTL / time.Minute)
	if d.mayLogin(r.Context(), email) {
		origin := d.origin(r)
		issue := func() (string, error) {
			token, err := d.cfg.Vault.CreateLoginToken(email, d.cfg.LoginTTL)
			if err != nil {
				return "", err
			}
			link := origin + d.url("login/confirm") + "?token=" + url.QueryEscape(token)
			if next != "" {
				link += "&next=" + url.QueryEscape(next)
			}
			return link, nil
		}
		if d.cfg.DevReturnLink {
			// Development: the link goes into the page too (which tells
			// whether the account exists; never enable it in production).
			link, err := issue()
			if err != nil {
				d.log.Error("dashboard: creating a login token failed", "error", err)
				d.renderError(w, r, http.StatusInternalServerError, "Something went wrong", "The sign-in link could not be created. Try again.")
				return
			}
			body.DevLink = link
			d.sendLoginMail(email, func() (string, error) { return link, nil })
		} else {
			// The token is written in the background too, so a known
			// address is not answered measurably slower than an unknown one.
			d.sendLoginMail(email, issue)
		}
	} else {
		d.log.Info("dashboard: no sign-in link sent: no account for this email and sign-up does not allow it",
			"email", email, "signup", d.signupPolicy(r.Context()).String())
	}
	// Post/redirect/get: a reload shows the same page and sends nothing.
	id := d.flashes.put("visitor:"+d.csrfToken(w, r), body, d.cfg.Now(), d.cfg.LoginTTL)
	http.Redirect(w, r, d.url("login")+"?sent="+id, http.StatusSeeOther)
}

// mayLogin reports whether email has an account or may create one.
func (d *Dashboard) mayLogin(ctx context.Context, email string) bool {
	if _, err := d.cfg.Vault.UserByEmail(email); err == nil {
		return true
	}
	return d.signupPolicy(ctx).Allows(email)
}

type mailData struct {
	Site, Link, Email, Origin string
	Minutes                   int
}

// sendLoginMail creates the link, renders the mail and sends it, in the
// background.
func (d *Dashboard) sendLoginMail(email string, issue func() (string, error)) {
	// After Close (an old config still finishing requests) the mail is
	// sent untracked, on its own deadline.
	d.mailMu.Lock()
	tracked := !d.closed
	if tracked {
		d.mailWG.Add(1)
	}
	d.mailMu.Unlock()
	base := d.baseCtx
	if !tracked {
		base = context.Background()
	}
	go func() {
		if tracked {
			defer d.mailWG.Done()
		}
		link, err := issue()
		if err != nil {
			d.log.Error("dashboard: creating a login token failed", "error", err)
			return
		}
		m, err := d.loginMessage(email, link)
		if err != nil {
			d.log.Error("dashboard: rendering mail failed", "error", err)
			return
		}
		ctx, cancel := context.WithTimeout(base, d.cfg.MailTimeout)
		defer cancel()
		if err := d.cfg.Mailer.Send(ctx, m); err != nil {
			d.log.Error("dashboard: sending the sign-in link failed", "to", email, "error", err)
			return
		}
		d.log.Info("dashboard: sign-in link sent", "to", email)
	}()
}

// loginMessage is the magic-link mail, text and HTML.
func (d *Dashboard) loginMessage(email, link string) (Message, error) {
	md := mailData{Site: d.cfg.SiteName, Link: link, Email: email, Minutes: int(d.cfg.LoginTTL / time.Minute)}
	if u, err := url.Parse(link); err == nil {
		md.Origin = u.Scheme + "://" + u.Host
	}
	var text, html bytes.Buffer
	if err := d.views.mailText.Execute(&text, md); err != nil {
		return Message{}, err
	}
	if err := d.views.mailHTML.Execute(&html, md); err != nil {
		return Message{}, err
	}
	return Message{To: email, Subject: "Sign in to " + d.cfg.SiteName, Text: text.String(), HTML: html.String()}, nil
}

type confirmBody struct {
	Token string
	Next  string
	Email string // the account the link signs in to
	// Current is the account this browser is signed in to, when another.
	Current string
}

// confirmPage is where the magic link lands. Opening it changes nothing:
// only the button (a POST) uses the token, so mail scanners that fetch
// links cannot burn it.
func (d *Dashboard) confirmPage(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	if token == "" || len(token) > 200 {
		d.renderError(w, r, http.StatusBadRequest, "This sign-in link is incomplete",
			"Open the link from the email exactly as it was sent, or ask for a new one.")
		return
	}
	// Name the account before the button is pressed: someone sent another
	// person's link would otherwise sign in as them without noticing (and
	// link their own ChatGPT account there).
	email, err := d.cfg.Vault.LoginTokenEmail(token)
	if err != nil {
		if !errors.Is(err, vault.ErrInvalidToken) {
			d.log.Error("dashboard: reading a login token failed", "error", err)
		}
		d.renderError(w, r, http.StatusBadRequest, "This sign-in link can no longer be used",
			"Sign-in links work once and expire after "+strconv.Itoa(int(d.cfg.LoginTTL/time.Minute))+" minutes. Ask for a new one.")
		return
	}
	b := confirmBody{Token: token, Next: d.safeNext(r.URL.Query().Get("next")), Email: email}
	if s := d.lookupSession(r); s != nil && s.user.Email != email {
		b.Current = s.user.Email
	}
	d.render(w, r, http.StatusOK, "confirm", pageData{Title: "Confirm sign-in", Body: b})
}

// confirmSubmit redeems the magic link (once), creates the account when
// the sign-up policy allows it, and starts a session.
func (d *Dashboard) confirmSubmit(w http.ResponseWriter, r *http.Request) {
	token := r.PostFormValue("token")
	email, err := d.cfg.Vault.ConsumeLoginToken(token)
	if err != nil {
		if !errors.Is(err, vault.ErrInvalidToken) {
			d.log.Error("dashboard: redeeming a login token failed", "error", err)
		}
		d.renderError(w, r, http.StatusBadRequest, "This sign-in link can no longer be used",
			"Sign-in links work once and expire after "+strconv.Itoa(int(d.cfg.LoginTTL/time.Minute))+" minutes. Ask for a new one.")
		return
	}
	d.signIn(w, r, email, d.safeNext(r.PostFormValue("next")), vault.SessionOptions{})
}

// signIn starts a session for the owner of email, whose control of it was
// just proven (an email link, or a provider's verified address): an
// existing user, or a new one when the sign-up policy allows it. next is
// a safeNext destination.
func (d *Dashboard) signIn(w http.ResponseWriter, r *http.Request, email, next string, o vault.SessionOptions) {
	u, err := d.cfg.Vault.UserByEmail(email)
	if errors.Is(err, vault.ErrNotFound) {
		if !d.signupPolicy(r.Context()).Allows(email) {
			d.auditSignIn(r, vault.User{}, email, vault.OutcomeRefused, "sign-up is closed for this address")
			d.renderError(w, r, http.StatusForbidden, "No account for this address",
				"Sign-up is closed here. Ask the administrator to add "+quoteInput(email)+".")
			return
		}
		u, err = d.cfg.Vault.CreateUser(email, "")
		switch {
		case err == nil:
			d.log.Info("dashboard: new user signed up", "user_id", u.ID, "email", email)
			d.auditSignUp(r, u)
		case errors.Is(err, vault.ErrEmailTaken):
			// Signed up at the same moment elsewhere (another tab, another
			// instance): that sign-up is logged and audited; this one only
			// signs them in.
			u, err = d.cfg.Vault.UserByEmail(email)
		}
	}
	if err != nil {
		d.log.Error("dashboard: sign-in failed", "error", err)
		d.renderError(w, r, http.StatusInternalServerError, "Something went wrong", "Signing in failed. Try again.")
		return
	}
	if u.Disabled {
		d.auditSignIn(r, u, "", vault.OutcomeRefused, "the account is disabled")
		d.renderError(w, r, http.StatusForbidden, "This account is disabled",
			"An administrator has disabled this account. Ask them to enable it again.")
		return
	}
	if err := d.setSession(w, r, u, o); err != nil {
		d.log.Error("dashboard: creating a session failed", "error", err)
		d.renderError(w, r, http.StatusInternalServerError, "Something went wrong", "Signing in failed. Try again.")
		return
	}
	d.log.Info("dashboard: signed in", "user_id", u.ID, "admin_by_claim", o.AdminByClaim)
	d.auditSignIn(r, u, "", vault.OutcomeOK, "")
	dest := d.home(u)
	if next != "" && dest != d.url("onboarding") {
		dest = next
	}
	http.Redirect(w, r, dest, http.StatusSeeOther)
}

func (d *Dashboard) logout(w http.ResponseWriter, r *http.Request) {
	d.clearSession(w, r)
	http.Redirect(w, r, d.url("login")+"?msg=signedout", http.StatusSeeOther)
}

// logoutEverywhere ends every session of the user, this one included.
func (d *Dashboard) logoutEverywhere(w http.ResponseWriter, r *http.Request) {
	s := sessionOf(r)
	n, err := d.cfg.Vault.DeleteUserSessions(s.user.ID)
	if err != nil {
		d.log.Error("dashboard: signing out everywhere failed", "user_id", s.user.ID, "error", err)
		d.renderError(w, r, http.StatusInternalServerError, "Something went wrong", "Signing out everywhere failed. Try again.")
		return
	}
	d.log.Info("dashboard: signed out everywhere", "user_id", s.user.ID, "sessions", n)
	d.audit(r, vault.AuditSignOutAll, vault.AuditTarget{}, strconv.Itoa(n)+" sessions")
	d.clearSession(w, r)
	http.Redirect(w, r, d.url("login")+"?msg=everywhere", http.StatusSeeOther)
}

// safeNext keeps a post-sign-in destination only if it is a dashboard page.
func (d *Dashboard) safeNext(next string) string {
	if next == "" || len(next) > 500 || !strings.HasPrefix(next, d.prefix+"/") ||
		strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return ""
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return ""
	}
	p := u.Path
	if p == d.url("login") || strings.HasPrefix(p, d.url("login")+"/") || p == d.url("logout") || !d.match.paths[p] {
		return ""
	}
	return next
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
