package dashboard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/usemysub/caddy-codex-proxy/codex"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// exchangeTimeout bounds the code exchange with the OAuth issuer.
const exchangeTimeout = 30 * time.Second

// maxPasteLen bounds what the paste form takes: a callback address is a
// few hundred characters, far less than this.
const maxPasteLen = 4096

// linkState is what the ChatGPT and onboarding pages know about the
// user's link.
type linkState struct {
	From    string // page to come back to: "chatgpt" or "onboarding"
	Linked  bool
	Info    vault.TokenInfo
	Minutes int // lifetime of a pending sign-in
	// Accounts are all the user's linked accounts, in their order, with
	// their latest usage windows; Policy is how one is chosen.
	Accounts []accountView
	Policy   string
}

func (d *Dashboard) linkStateOf(userID, from string) (linkState, error) {
	ls := linkState{From: from, Minutes: int(d.cfg.OAuthTTL / time.Minute)}
	info, err := d.cfg.Vault.TokenInfo(userID)
	switch {
	case err == nil:
		ls.Linked, ls.Info = true, info
	case errors.Is(err, vault.ErrNotLinked):
	default:
		return ls, err
	}
	if ls.Accounts, err = d.accountViews(userID); err != nil {
		return ls, err
	}
	ls.Policy = vault.PolicyPreferOrder
	if u, err := d.cfg.Vault.User(userID); err == nil && u.AccountPolicy != "" {
		ls.Policy = u.AccountPolicy
	}
	return ls, nil
}

func (d *Dashboard) chatgptPage(w http.ResponseWriter, r *http.Request) {
	d.showChatGPT(w, r, http.StatusOK, flash(r), "")
}

// showChatGPT renders the link status page with an optional message.
func (d *Dashboard) showChatGPT(w http.ResponseWriter, r *http.Request, status int, flashMsg, errMsg string) {
	d.showChatGPTDetail(w, r, status, flashMsg, errMsg, "")
}

func (d *Dashboard) showChatGPTDetail(w http.ResponseWriter, r *http.Request, status int, flashMsg, errMsg, detail string) {
	s := sessionOf(r)
	ls, err := d.linkStateOf(s.user.ID, "chatgpt")
	if err != nil {
		d.log.Error("dashboard: reading token info failed", "user_id", s.user.ID, "error", err)
		errMsg = "The link status could not be read."
	}
	if r.URL.Query().Get("msg") == "linked" && ls.Linked {
		flashMsg = linkedMessage(ls.Info, false)
	}
	if r.URL.Query().Get("msg") == "added" {
		flashMsg = "Account added. It is used when the accounts before it reach their usage limit."
	}
	d.render(w, r, status, "chatgpt", pageData{Title: "ChatGPT account", Nav: "chatgpt", Flash: flashMsg, Error: errMsg, ErrorDetail: detail, Body: ls})
}

// linkedMessage is the flash after linking: who, which plan, what next.
func linkedMessage(info vault.TokenInfo, onboarding bool) string {
	who := info.Email
	if who == "" {
		who = info.AccountID
	}
	msg := "Linked as " + who
	if info.PlanType != "" {
		msg += " (" + info.PlanType + ")"
	}
	if onboarding {
		return msg + ". Next: create your first API key below."
	}
	return msg + ". Your API keys now use this account."
}

// linkFlow is a started paste flow, kept (for its user, OAuthTTL) under a
// random id the link page's address carries, so a reload shows the same
// sign-in and the paste form can be shown again after a mistake.
type linkFlow struct {
	From         string
	AuthorizeURL string
	State        string // also in AuthorizeURL; lets a bare code be pasted
}

type linkBody struct {
	From         string
	Flow         string
	AuthorizeURL string
	State        string
	RedirectURI  string
	RedirectHost string
	Minutes      int
	Pasted       string
}

// fromPage keeps the return page to one of the two that start a link;
// "add" is the ChatGPT page's "add another account", which links one more
// account instead of replacing the first.
func fromPage(s string) string {
	if s == "onboarding" || s == fromAdd {
		return s
	}
	return "chatgpt"
}

// fromAdd marks a link flow started to add one more account.
const fromAdd = "add"

// oauthKey is what a pending sign-in is stored under: the state bound to
// the dashboard user who started it. Another signed-in user who pastes the
// callback looks up a different key, finds nothing and uses nothing up.
func oauthKey(userID, state string) string {
	return "dashboard-user\x00" + userID + "\x00" + state
}

// linkStart begins the paste flow: a PKCE pair and a state, remembered in
// the vault for OAuthTTL, then (post/redirect/get) the link page. A user
// keeps at most linkFlowsPerUser pending flows: starting one more ends
// the oldest.
func (d *Dashboard) linkStart(w http.ResponseWriter, r *http.Request) {
	s := sessionOf(r)
	from := fromPage(r.PostFormValue("from"))
	pk, err := codex.NewPKCE()
	var state string
	if err == nil {
		state, err = codex.NewState()
	}
	if err == nil {
		err = d.cfg.Vault.PutOAuthSession(oauthKey(s.user.ID, state), vault.OAuthSession{
			UserID: s.user.ID, Verifier: pk.Verifier, Expires: d.cfg.Now().Add(d.cfg.OAuthTTL),
		})
	}
	if err != nil {
		d.log.Error("dashboard: starting a ChatGPT sign-in failed", "user_id", s.user.ID, "error", err)
		d.renderError(w, r, http.StatusInternalServerError, "Something went wrong", "The ChatGPT sign-in could not be started. Try again.")
		return
	}
	flow := linkFlow{From: from, AuthorizeURL: d.cfg.OAuth.AuthorizeURL(state, pk.Challenge), State: state}
	id, dropped := d.flashes.putCapped("user:"+s.user.ID, "link", linkFlowsPerUser, flow, d.cfg.Now(), d.cfg.OAuthTTL)
	for _, v := range dropped {
		// The oldest flow past the cap is over: its sign-in code must not
		// link an account later either.
		if old, ok := v.(linkFlow); ok {
			_, _ = d.cfg.Vault.TakeOAuthSession(oauthKey(s.user.ID, old.State))
		}
	}
	http.Redirect(w, r, d.url("chatgpt/link")+"?flow="+id, http.StatusSeeOther)
}

// flowOf returns the user's started paste flow named id.
func (d *Dashboard) flowOf(r *http.Request, id string) (linkFlow, bool) {
	v, ok := d.flashes.peek(id, "user:"+sessionOf(r).user.ID, d.cfg.Now())
	if !ok {
		return linkFlow{}, false
	}
	f, ok := v.(linkFlow)
	return f, ok
}

// linkPage shows a started paste flow; an unknown or expired one goes back
// to the status page.
func (d *Dashboard) linkPage(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("flow")
	f, ok := d.flowOf(r, id)
	if !ok {
		http.Redirect(w, r, d.url("chatgpt")+"?msg=flowgone", http.StatusSeeOther)
		return
	}
	d.renderLink(w, r, http.StatusOK, "", "", id, f, "")
}

func (d *Dashboard) renderLink(w http.ResponseWriter, r *http.Request, status int, errMsg, detail, id string, f linkFlow, pasted string) {
	b := linkBody{From: f.From, Flow: id, AuthorizeURL: f.AuthorizeURL, State: f.State, Pasted: pasted,
		Minutes: int(d.cfg.OAuthTTL / time.Minute), RedirectURI: d.redirectURI()}
	if u, err := url.Parse(b.RedirectURI); err == nil {
		b.RedirectHost = u.Host
	}
	nav := "chatgpt"
	if f.From == "onboarding" {
		nav = ""
	}
	d.render(w, r, status, "link", pageData{Title: "Link ChatGPT", Nav: nav, Error: errMsg, ErrorDetail: detail, Body: b})
}

// redirectURI is where ChatGPT sends the browser after sign-in.
func (d *Dashboard) redirectURI() string {
	if d.cfg.OAuth.RedirectURI != "" {
		return d.cfg.OAuth.RedirectURI
	}
	return codex.DefaultRedirectURI
}

// Plain-words explanations of a failed paste.
const (
	pasteTooLong   = "This is too long to be the address of the error page. Copy only the address from the address bar, then paste it here."
	pasteEmpty     = "Nothing was pasted. Copy the whole address from the address bar of the page that says “This site can’t be reached”, then paste it here."
	pasteNoCode    = "This address has no sign-in code in it. Copy the whole address from the address bar of the error page, including everything after the ?."
	pasteNoState   = "This address is missing part of the sign-in (the state). Copy the whole address, not only a part of it."
	pasteMalformed = "This does not look like the address of the error page. Copy the whole address from the address bar and paste it here."
	pasteForeign   = "This address is from another site (%s). After signing in, ChatGPT sends you to an address that starts with %s: copy that one."
	pasteOtherFlow = "This address belongs to a different sign-in attempt (an older tab, or another link). Use the address you reached from the “Open ChatGPT sign-in” button on this page, or start again."
	pasteGone      = "This sign-in has expired or was already used (sign-ins last %s). Start again: it only takes a minute."
	pasteRefused   = "ChatGPT did not accept this sign-in code. Codes work once and only for a few minutes. Start again."
	denied         = "The sign-in was cancelled on ChatGPT’s page, or ChatGPT refused it. Start again and press “Continue” on ChatGPT’s page."
	noEntitlement  = "Codex is not enabled for your workspace. Ask your ChatGPT workspace admin to turn on Codex, or link a personal ChatGPT account instead."
	otherIssuerErr = "ChatGPT reported a problem with the sign-in. Start again; if it keeps failing, try the device code instead."
)

// pasteResult is what parsePaste made of a paste.
type pasteResult struct {
	code, state string
	msg, detail string // a problem in plain words, and its technical detail
	ended       bool   // ChatGPT answered with an error: this attempt is over
}

// parsePaste turns what was pasted into a code and state, or a message in
// plain words and the technical detail. A bare code (no ?, no =) takes
// the state of the flow shown on the page.
func (d *Dashboard) parsePaste(pasted, flowState string) pasteResult {
	code, state, msg, detail, ended := d.parsePasteParts(pasted, flowState)
	return pasteResult{code: code, state: state, msg: msg, detail: detail, ended: ended}
}

func (d *Dashboard) parsePasteParts(pasted, flowState string) (code, state, msg, detail string, ended bool) {
	p := strings.Trim(strings.TrimSpace(pasted), "\"'<>` ")
	if p == "" {
		return "", "", pasteEmpty, "", false
	}
	if flowState != "" && !strings.ContainsAny(p, "?=&/:#") && len(p) <= 2048 {
		return p, flowState, "", "", false
	}
	if strings.Contains(p, "://") {
		if u, err := url.Parse(p); err == nil {
			want, _ := url.Parse(d.redirectURI())
			if want != nil && !strings.EqualFold(u.Host, want.Host) {
				return "", "", fmt.Sprintf(pasteForeign, quoteInput(u.Host), d.redirectURI()), "", false
			}
		}
	}
	code, state, err := codex.ParseCallback(p)
	if err == nil {
		return code, state, "", "", false
	}
	var ce *codex.CallbackError
	switch {
	case errors.As(err, &ce) && ce.MissingEntitlement():
		return "", "", noEntitlement, ce.Error(), true
	case errors.As(err, &ce) && ce.Code == "access_denied":
		return "", "", denied, quotedCallbackError(ce), true
	case errors.As(err, &ce):
		return "", "", otherIssuerErr, quotedCallbackError(ce), true
	case strings.Contains(err.Error(), "no code"):
		return "", "", pasteNoCode, "", false
	case strings.Contains(err.Error(), "no state"):
		return "", "", pasteNoState, "", false
	}
	return "", "", pasteMalformed, upperFirst(err.Error()) + ".", false
}

// quotedCallbackError is the text of an issuer's error answer with a
// prefix of its code and description: both come from the paste.
func quotedCallbackError(ce *codex.CallbackError) string {
	return (&codex.CallbackError{Code: quoteInput(ce.Code), Description: quoteInput(ce.Description)}).Error()
}

// linkCallback finishes the paste flow: the pasted callback address (or
// bare code) gives the code and the state; the state must be a pending
// sign-in this user started, not expired; the code is exchanged and the
// tokens stored.
func (d *Dashboard) linkCallback(w http.ResponseWriter, r *http.Request) {
	s := sessionOf(r)
	from := fromPage(r.PostFormValue("from"))
	pasted := r.PostFormValue("callback")
	id := r.PostFormValue("flow")
	flow, haveFlow := d.flowOf(r, id)
	if haveFlow {
		from = flow.From
	}
	// fail keeps the paste form while the flow is still pending, else goes
	// back to where the flow started.
	fail := func(msg, detail string, pending bool) {
		if haveFlow && pending {
			d.renderLink(w, r, http.StatusBadRequest, msg, detail, id, flow, pasted)
			return
		}
		d.linkFailed(w, r, from, msg, detail)
	}
	if len(pasted) > maxPasteLen {
		pasted = "" // not echoed back
		fail(pasteTooLong, "", true)
		return
	}
	p := d.parsePaste(pasted, flow.State)
	if p.msg != "" {
		// An error= answer ends the attempt at ChatGPT's side; a typo
		// does not.
		fail(p.msg, p.detail, !p.ended)
		return
	}
	code, state := p.code, p.state
	if haveFlow && state != flow.State {
		fail(pasteOtherFlow, "", true)
		return
	}
	pending, err := d.cfg.Vault.TakeOAuthSession(oauthKey(s.user.ID, state))
	if err != nil || pending.UserID != s.user.ID {
		if err != nil && !errors.Is(err, vault.ErrInvalidToken) {
			d.log.Error("dashboard: reading a pending ChatGPT sign-in failed", "user_id", s.user.ID, "error", err)
		}
		fail(fmt.Sprintf(pasteGone, minutes(d.cfg.OAuthTTL)), "", false)
		return
	}
	if haveFlow {
		d.flashes.take(id, "user:"+s.user.ID, d.cfg.Now())
	}
	ctx, cancel := context.WithTimeout(r.Context(), exchangeTimeout)
	defer cancel()
	tok, err := d.cfg.OAuth.Exchange(ctx, code, pending.Verifier)
	if err != nil {
		d.log.Warn("dashboard: ChatGPT code exchange failed", "user_id", s.user.ID, "error", err)
		d.linkFailed(w, r, from, pasteRefused, strings.TrimPrefix(err.Error(), "codex: "))
		return
	}
	b := vault.TokenBundle{IDToken: tok.IDToken, AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken}
	if tok.ExpiresIn > 0 {
		b.Expiry = d.cfg.Now().Add(tok.ExpiresIn).UTC()
	}
	d.storeTokens(w, r, from, b)
}

// linkAuthJSON links by an uploaded or pasted Codex CLI auth.json.
func (d *Dashboard) linkAuthJSON(w http.ResponseWriter, r *http.Request) {
	from := fromPage(r.PostFormValue("from"))
	var data []byte
	if f, _, err := r.FormFile("authfile"); err == nil {
		data, err = io.ReadAll(io.LimitReader(f, maxFormBytes))
		f.Close()
		if err != nil {
			d.linkFailed(w, r, from, "The file could not be read.", "")
			return
		}
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		data = []byte(r.PostFormValue("authjson"))
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		d.linkFailed(w, r, from, "Choose your auth.json file or paste its contents.", "")
		return
	}
	b, err := vault.ParseAuthJSON(data)
	if err != nil {
		d.linkFailed(w, r, from, "This is not a usable auth.json: "+strings.TrimPrefix(err.Error(), "vault: ")+".", "")
		return
	}
	d.storeTokens(w, r, from, b)
}

// storeTokens saves a new login and goes back where the flow started.
func (d *Dashboard) storeTokens(w http.ResponseWriter, r *http.Request, from string, b vault.TokenBundle) {
	s := sessionOf(r)
	var err error
	if from == fromAdd {
		var a vault.Account
		a, err = d.cfg.Vault.AddAccount(s.user.ID, b)
		if err == nil {
			d.log.Info("dashboard: ChatGPT account added", "user_id", s.user.ID, "account", a.ID, "account_id", a.AccountID, "plan", a.PlanType)
			d.audit(r, vault.AuditAccountLinked, vault.AuditTarget{AccountID: a.ID}, a.PlanType)
			http.Redirect(w, r, d.url("chatgpt")+"?msg=added", http.StatusSeeOther)
			return
		}
	} else {
		relinked := d.hasAccount(s.user.ID)
		if err = d.cfg.Vault.PutTokens(s.user.ID, b); err == nil {
			d.auditLink(r, relinked)
		}
	}
	if err != nil {
		d.log.Error("dashboard: storing ChatGPT tokens failed", "user_id", s.user.ID, "error", err)
		d.linkFailed(w, r, from, "The ChatGPT login could not be saved. Try again.", "")
		return
	}
	info, _ := d.cfg.Vault.TokenInfo(s.user.ID)
	d.log.Info("dashboard: ChatGPT account linked", "user_id", s.user.ID, "account_id", info.AccountID, "plan", info.PlanType)
	http.Redirect(w, r, d.url(from)+"?msg=linked", http.StatusSeeOther)
}

// linkFailed shows the page the flow started from with the error and,
// behind a disclosure, its technical detail.
func (d *Dashboard) linkFailed(w http.ResponseWriter, r *http.Request, from, msg, detail string) {
	if from == "onboarding" {
		d.showOnboardingDetail(w, r, http.StatusBadRequest, "", msg, detail)
		return
	}
	d.showChatGPTDetail(w, r, http.StatusBadRequest, "", msg, detail)
}

func (d *Dashboard) unlinkPage(w http.ResponseWriter, r *http.Request) {
	s := sessionOf(r)
	ls, err := d.linkStateOf(s.user.ID, "chatgpt")
	if err != nil || !ls.Linked {
		http.Redirect(w, r, d.url("chatgpt"), http.StatusSeeOther)
		return
	}
	d.render(w, r, http.StatusOK, "unlink", pageData{Title: "Unlink ChatGPT", Nav: "chatgpt", Body: ls})
}

func (d *Dashboard) unlinkSubmit(w http.ResponseWriter, r *http.Request) {
	s := sessionOf(r)
	if err := d.cfg.Vault.Unlink(s.user.ID); err != nil {
		d.log.Error("dashboard: unlink failed", "user_id", s.user.ID, "error", err)
		d.showChatGPT(w, r, http.StatusInternalServerError, "", "Unlinking failed. Try again.")
		return
	}
	d.log.Info("dashboard: ChatGPT account unlinked", "user_id", s.user.ID)
	d.audit(r, vault.AuditAccountUnlinked, vault.AuditTarget{}, "")
	http.Redirect(w, r, d.url("chatgpt")+"?msg=unlinked", http.StatusSeeOther)
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func minutes(d time.Duration) string {
	n := int(d / time.Minute)
	if n == 1 {
		return "1 minute"
	}
	return itoa(n) + " minutes"
}
