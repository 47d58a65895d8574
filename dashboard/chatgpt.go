package dashboard

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/usemysub/caddy-codex-proxy/codex"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// exchangeTimeout bounds the code exchange with the OAuth issuer.
const exchangeTimeout = 30 * time.Second

// linkState is what the ChatGPT and onboarding pages know about the
// user's link.
type linkState struct {
	From    string // page to come back to: "chatgpt" or "onboarding"
	Linked  bool
	Info    vault.TokenInfo
	Minutes int // lifetime of a pending sign-in
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
	return ls, nil
}

func (d *Dashboard) chatgptPage(w http.ResponseWriter, r *http.Request) {
	d.showChatGPT(w, r, http.StatusOK, flash(r), "")
}

// showChatGPT renders the link status page with an optional message.
func (d *Dashboard) showChatGPT(w http.ResponseWriter, r *http.Request, status int, flashMsg, errMsg string) {
	s := sessionOf(r)
	ls, err := d.linkStateOf(s.user.ID, "chatgpt")
	if err != nil {
		d.log.Error("dashboard: reading token info failed", "user_id", s.user.ID, "error", err)
		errMsg = "The link status could not be read."
	}
	d.render(w, r, status, "chatgpt", pageData{Title: "ChatGPT account", Nav: "chatgpt", Flash: flashMsg, Error: errMsg, Body: ls})
}

// linkRedirect: the link flow starts with a POST; a GET (a reload or a
// bookmark) goes back to the status page.
func (d *Dashboard) linkRedirect(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, d.url("chatgpt"), http.StatusSeeOther)
}

type linkBody struct {
	From         string
	AuthorizeURL string
	RedirectURI  string
	Minutes      int
	Pasted       string
}

// fromPage keeps the return page to one of the two that start a link.
func fromPage(s string) string {
	if s == "onboarding" {
		return s
	}
	return "chatgpt"
}

// linkStart begins the paste flow: a PKCE pair and a state, remembered in
// the vault for OAuthTTL, and the authorize link for the user to open.
func (d *Dashboard) linkStart(w http.ResponseWriter, r *http.Request) {
	s := sessionOf(r)
	from := fromPage(r.PostFormValue("from"))
	pk, err := codex.NewPKCE()
	var state string
	if err == nil {
		state, err = codex.NewState()
	}
	if err == nil {
		err = d.cfg.Vault.PutOAuthSession(state, vault.OAuthSession{
			UserID: s.user.ID, Verifier: pk.Verifier, Expires: d.cfg.Now().Add(d.cfg.OAuthTTL),
		})
	}
	if err != nil {
		d.log.Error("dashboard: starting a ChatGPT sign-in failed", "user_id", s.user.ID, "error", err)
		d.renderError(w, r, http.StatusInternalServerError, "Something went wrong", "The ChatGPT sign-in could not be started. Try again.")
		return
	}
	d.renderLink(w, r, http.StatusOK, "", linkBody{From: from, AuthorizeURL: d.cfg.OAuth.AuthorizeURL(state, pk.Challenge)})
}

func (d *Dashboard) renderLink(w http.ResponseWriter, r *http.Request, status int, errMsg string, b linkBody) {
	b.Minutes = int(d.cfg.OAuthTTL / time.Minute)
	b.RedirectURI = d.redirectURI()
	nav := "chatgpt"
	if b.From == "onboarding" {
		nav = ""
	}
	d.render(w, r, status, "link", pageData{Title: "Link ChatGPT", Nav: nav, Error: errMsg, Body: b})
}

// redirectURI is where ChatGPT sends the browser after sign-in.
func (d *Dashboard) redirectURI() string {
	if d.cfg.OAuth.RedirectURI != "" {
		return d.cfg.OAuth.RedirectURI
	}
	return codex.DefaultRedirectURI
}

// authorizeBase is the start every authorize link shares; a link echoed
// back by the paste form must have it.
func (d *Dashboard) authorizeBase() string {
	u := d.cfg.OAuth.AuthorizeURL("x", "x")
	return u[:strings.IndexByte(u, '?')+1]
}

// linkCallback finishes the paste flow: the pasted callback address gives
// the code and the state; the state must be a pending sign-in of this
// user, not expired; the code is exchanged and the tokens stored.
func (d *Dashboard) linkCallback(w http.ResponseWriter, r *http.Request) {
	s := sessionOf(r)
	from := fromPage(r.PostFormValue("from"))
	pasted := r.PostFormValue("callback")
	echoed := r.PostFormValue("authorize_url")
	if !strings.HasPrefix(echoed, d.authorizeBase()) || len(echoed) > 4096 {
		echoed = ""
	}
	retry := func(msg string) {
		if echoed != "" {
			// The pending sign-in is still valid: let them paste again.
			d.renderLink(w, r, http.StatusBadRequest, msg, linkBody{From: from, AuthorizeURL: echoed, Pasted: pasted})
			return
		}
		d.linkFailed(w, r, from, msg)
	}
	code, state, err := codex.ParseCallback(pasted)
	if err != nil {
		var ce *codex.CallbackError
		if errors.As(err, &ce) {
			d.linkFailed(w, r, from, ce.Error())
			return
		}
		retry(upperFirst(err.Error()) + ".")
		return
	}
	pending, err := d.cfg.Vault.TakeOAuthSession(state)
	if err != nil || pending.UserID != s.user.ID {
		if err != nil && !errors.Is(err, vault.ErrInvalidToken) {
			d.log.Error("dashboard: reading a pending ChatGPT sign-in failed", "user_id", s.user.ID, "error", err)
		}
		d.linkFailed(w, r, from, "This ChatGPT sign-in does not match a pending one: it expired (they last "+
			minutes(d.cfg.OAuthTTL)+"), was already used, or was started in another session. Start again.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), exchangeTimeout)
	defer cancel()
	tok, err := d.cfg.OAuth.Exchange(ctx, code, pending.Verifier)
	if err != nil {
		d.log.Warn("dashboard: ChatGPT code exchange failed", "user_id", s.user.ID, "error", err)
		d.linkFailed(w, r, from, "ChatGPT did not accept the sign-in ("+strings.TrimPrefix(err.Error(), "codex: ")+"). Start again.")
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
			d.linkFailed(w, r, from, "The file could not be read.")
			return
		}
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		data = []byte(r.PostFormValue("authjson"))
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		d.linkFailed(w, r, from, "Choose your auth.json file or paste its contents.")
		return
	}
	b, err := vault.ParseAuthJSON(data)
	if err != nil {
		d.linkFailed(w, r, from, upperFirst(strings.TrimPrefix(err.Error(), "vault: "))+".")
		return
	}
	d.storeTokens(w, r, from, b)
}

// storeTokens saves a new login and goes back where the flow started.
func (d *Dashboard) storeTokens(w http.ResponseWriter, r *http.Request, from string, b vault.TokenBundle) {
	s := sessionOf(r)
	if err := d.cfg.Vault.PutTokens(s.user.ID, b); err != nil {
		d.log.Error("dashboard: storing ChatGPT tokens failed", "user_id", s.user.ID, "error", err)
		d.linkFailed(w, r, from, "The ChatGPT login could not be saved. Try again.")
		return
	}
	info, _ := d.cfg.Vault.TokenInfo(s.user.ID)
	d.log.Info("dashboard: ChatGPT account linked", "user_id", s.user.ID, "account_id", info.AccountID, "plan", info.PlanType)
	http.Redirect(w, r, d.url(from)+"?msg=linked", http.StatusSeeOther)
}

// linkFailed shows the page the flow started from with the error.
func (d *Dashboard) linkFailed(w http.ResponseWriter, r *http.Request, from, msg string) {
	if from == "onboarding" {
		d.showOnboarding(w, r, http.StatusBadRequest, "", msg)
		return
	}
	d.showChatGPT(w, r, http.StatusBadRequest, "", msg)
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
