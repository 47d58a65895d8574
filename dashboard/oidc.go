package dashboard

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/usemysub/caddy-codex-proxy/ratelimit"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// Single sign-on with OpenID Connect: the authorization code flow with
// PKCE (S256), a state and a nonce. go-oidc does discovery, the JWKS (and
// its rotation) and the ID token's signature, issuer, audience and expiry;
// this file adds the nonce, email_verified, the allowed domains and the
// admin claim.
//
// A flow's verifier, nonce and destination are kept in the vault under its
// state, sealed, for OAuthTTL: a cluster's instances share them, and
// TakeOAuthSession makes a state good for one callback on any of them. A
// random value in a short-lived cookie binds the flow to the browser that
// started it (its hash is in the record), so nobody can hand a victim the
// callback of a sign-in they started themselves.

// oidcCookie carries the browser binding of a pending SSO sign-in; it gets
// the __Host- prefix over HTTPS like the session cookie.
const oidcCookie = "codex_oidc"

// oidcFlowKind marks a vault OAuth record as an SSO sign-in, so a ChatGPT
// link state is never taken for one.
const oidcFlowKind = "oidc"

// oidcStartsPerIP bounds SSO sign-ins started from one address per
// LoginWindow: each writes a record to the vault.
const oidcStartsPerIP = 30

// oidcHTTPTimeout bounds one request to the provider (discovery, keys,
// token, userinfo).
const oidcHTTPTimeout = 10 * time.Second

// scopeOIDCStart is the limiter scope of SSO starts.
const scopeOIDCStart ratelimit.Scope = 3

// oidcFlow is what a pending SSO sign-in keeps in the vault (as the
// sealed "verifier" of an OAuth record).
type oidcFlow struct {
	Kind     string `json:"k"`
	Verifier string `json:"v"` // PKCE code verifier
	Nonce    string `json:"n"`
	Next     string `json:"x,omitempty"` // a safeNext destination
	Binding  string `json:"b"`           // SHA-256 of the cookie's value
}

// oidcClient finds the provider lazily: NewDashboard (and caddy validate)
// never contact it, and a failed discovery is tried again at the next
// sign-in.
type oidcClient struct {
	cfg  *OIDCConfig
	http *http.Client

	mu       sync.Mutex
	provider *oidc.Provider
}

func newOIDCClient(cfg *OIDCConfig, client *http.Client) *oidcClient {
	if client == nil {
		client = &http.Client{Timeout: oidcHTTPTimeout}
	}
	return &oidcClient{cfg: cfg, http: client}
}

// ctx carries the HTTP client to go-oidc and oauth2.
func (c *oidcClient) ctx(parent context.Context) context.Context {
	return oidc.ClientContext(parent, c.http)
}

// get returns the provider, discovering it on first use. Concurrent
// sign-ins wait for one discovery.
func (c *oidcClient) get() (*oidc.Provider, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.provider != nil {
		return c.provider, nil
	}
	// go-oidc keeps this context for later key fetches, so it is not the
	// request's; the client's timeout bounds the discovery.
	p, err := oidc.NewProvider(c.ctx(context.Background()), c.cfg.Issuer)
	if err != nil {
		return nil, err
	}
	c.provider = p
	return p, nil
}

// oauth2 is the client's configuration at provider p.
func (c *oidcClient) oauth2(p *oidc.Provider, redirect string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     c.cfg.ClientID,
		ClientSecret: c.cfg.ClientSecret,
		Endpoint:     p.Endpoint(),
		RedirectURL:  redirect,
		Scopes:       c.cfg.scopes(),
	}
}

// oidcRedirect is the callback URL registered at the provider.
func (d *Dashboard) oidcRedirect(r *http.Request) string {
	return d.origin(r) + d.url("login/oidc/callback")
}

// oidcUnreachable is the page for a provider that did not answer.
func (d *Dashboard) oidcUnreachable(w http.ResponseWriter, r *http.Request, err error) {
	d.log.Error("dashboard: the OpenID provider cannot be reached", "issuer", d.cfg.OIDC.Issuer, "error", err)
	msg := "Single sign-on is not available right now: the sign-in provider did not answer. Try again in a minute."
	if !d.cfg.OIDC.EmailLinksOff {
		msg += " You can also sign in with an email link."
	}
	d.renderError(w, r, http.StatusBadGateway, "The sign-in provider cannot be reached", msg)
}

// oidcStart begins an SSO sign-in: it keeps the flow under a fresh state
// and sends the browser to the provider. It is a GET (the sign-in page's
// button is a link: its Content-Security-Policy lets forms go only to this
// site, redirects included); a signed-in visitor goes home instead.
func (d *Dashboard) oidcStart(w http.ResponseWriter, r *http.Request) {
	if s := d.lookupSession(r); s != nil {
		http.Redirect(w, r, d.home(s.user), http.StatusSeeOther)
		return
	}
	ip := d.cfg.ClientIP(r)
	if res := d.limiter.Hit(ratelimit.AddrKey(scopeOIDCStart, ip), oidcStartsPerIP, d.cfg.LoginWindow); !res.Allowed {
		w.Header().Set("Retry-After", strconv.FormatInt(ratelimit.Seconds(res.RetryAfter), 10))
		d.renderError(w, r, http.StatusTooManyRequests, "Too many sign-ins",
			"Too many sign-ins were started from your address. Try again in a few minutes.")
		return
	}
	p, err := d.oidc.get()
	if err != nil {
		d.oidcUnreachable(w, r, err)
		return
	}
	state, nonce, binding := randomToken(), randomToken(), randomToken()
	flow := oidcFlow{Kind: oidcFlowKind, Verifier: oauth2.GenerateVerifier(), Nonce: nonce,
		Next: d.safeNext(r.URL.Query().Get("next")), Binding: bindingHash(binding)}
	raw, _ := json.Marshal(flow)
	if err := d.cfg.Vault.PutOAuthSession(state, vault.OAuthSession{Verifier: string(raw), Expires: d.cfg.Now().Add(d.cfg.OAuthTTL)}); err != nil {
		d.log.Error("dashboard: saving an SSO sign-in failed", "error", err)
		d.renderError(w, r, http.StatusInternalServerError, "Something went wrong", "The sign-in could not be started. Try again.")
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: d.cookieName(r, oidcCookie), Value: binding, Path: "/", MaxAge: int(d.cfg.OAuthTTL / time.Second),
		// Lax: the provider's redirect back is a top-level GET from
		// another site, which Lax cookies go with.
		HttpOnly: true, Secure: d.secure(r), SameSite: http.SameSiteLaxMode,
	})
	dest := d.oidc.oauth2(p, d.oidcRedirect(r)).AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(flow.Verifier))
	http.Redirect(w, r, dest, http.StatusSeeOther)
}

// bindingHash is what the vault keeps of a flow's cookie value.
func bindingHash(v string) string {
	sum := sha256.Sum256([]byte("codex-dashboard oidc\x00" + v))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// oidcCallback finishes an SSO sign-in: the state once, the browser that
// started it, the code for tokens (with the PKCE verifier), the ID token
// verified, then the account as for an email link.
func (d *Dashboard) oidcCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	cookieName := d.cookieName(r, oidcCookie)
	binding := ""
	if c, err := r.Cookie(cookieName); err == nil {
		binding = c.Value
	}
	// The cookie is for one callback, whatever its outcome.
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: d.secure(r), SameSite: http.SameSiteLaxMode})
	state := q.Get("state")
	if state == "" || len(state) > 200 {
		d.renderError(w, r, http.StatusBadRequest, "This sign-in is incomplete",
			"The sign-in provider sent you back without the sign-in's state. Start again from the sign-in page.")
		return
	}
	pending, err := d.cfg.Vault.TakeOAuthSession(state)
	var flow oidcFlow
	if err == nil && (pending.UserID != "" || json.Unmarshal([]byte(pending.Verifier), &flow) != nil || flow.Kind != oidcFlowKind) {
		err = vault.ErrInvalidToken
	}
	if err != nil {
		if !errors.Is(err, vault.ErrInvalidToken) {
			d.log.Error("dashboard: reading an SSO sign-in failed", "error", err)
		}
		d.renderError(w, r, http.StatusBadRequest, "This sign-in can no longer be used",
			"A sign-in works once and expires after "+strconv.Itoa(int(d.cfg.OAuthTTL/time.Minute))+" minutes. Start again from the sign-in page.")
		return
	}
	if binding == "" || subtle.ConstantTimeCompare([]byte(bindingHash(binding)), []byte(flow.Binding)) != 1 {
		d.log.Warn("dashboard: SSO callback refused: not the browser that started the sign-in", "ip", d.cfg.ClientIP(r))
		d.renderError(w, r, http.StatusBadRequest, "This sign-in was started in another browser",
			"Start the sign-in again from this browser's sign-in page.")
		return
	}
	if e := q.Get("error"); e != "" {
		d.log.Info("dashboard: the OpenID provider refused a sign-in", "error", quoteInput(e))
		d.renderError(w, r, http.StatusForbidden, "The sign-in provider did not sign you in",
			"It answered "+strconv.Quote(quoteInput(e))+". Start again, or ask your administrator.")
		return
	}
	code := q.Get("code")
	if code == "" {
		d.renderError(w, r, http.StatusBadRequest, "This sign-in is incomplete",
			"The sign-in provider sent you back without a code. Start again from the sign-in page.")
		return
	}
	p, err := d.oidc.get()
	if err != nil {
		d.oidcUnreachable(w, r, err)
		return
	}
	ctx := d.oidc.ctx(r.Context())
	oc := d.oidc.oauth2(p, d.oidcRedirect(r))
	tok, err := oc.Exchange(ctx, code, oauth2.VerifierOption(flow.Verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) {
			d.oidcUnreachable(w, r, err)
			return
		}
		// A code used twice, expired or not for this verifier.
		d.log.Warn("dashboard: the OpenID provider refused the sign-in code", "error", re.ErrorCode)
		d.renderError(w, r, http.StatusBadRequest, "This sign-in can no longer be used",
			"The sign-in provider did not accept it (a sign-in works once). Start again from the sign-in page.")
		return
	}
	id, err := d.verifyIDToken(ctx, p, tok, flow.Nonce)
	if err != nil {
		d.log.Warn("dashboard: SSO sign-in refused: the ID token did not verify", "error", err)
		d.renderError(w, r, http.StatusForbidden, "This sign-in could not be verified",
			"The sign-in provider's answer did not check out. Start again; if it keeps happening, tell your administrator.")
		return
	}
	if !id.verified {
		d.auditSignIn(r, vault.User{}, id.email, vault.OutcomeRefused, "the provider has not verified the email address")
		d.renderError(w, r, http.StatusForbidden, "Your email address is not verified",
			"The sign-in provider does not vouch for "+quoteInput(id.email)+" yet. Verify it there, then sign in again.")
		return
	}
	email, err := vault.NormalizeEmail(id.email)
	if err != nil {
		d.renderError(w, r, http.StatusForbidden, "No usable email address",
			"The sign-in provider did not give an email address this site can use.")
		return
	}
	if !d.cfg.OIDC.domainAllowed(email) {
		d.log.Info("dashboard: SSO sign-in refused: domain not allowed", "email", email)
		d.auditSignIn(r, vault.User{}, email, vault.OutcomeRefused, "the email domain is not allowed for single sign-on")
		d.renderError(w, r, http.StatusForbidden, "This address cannot sign in here",
			"Single sign-on here is for addresses at "+strings.Join(d.cfg.OIDC.Domains, ", ")+".")
		return
	}
	d.signIn(w, r, email, flow.Next, vault.SessionOptions{AdminByClaim: id.admin})
}

// idClaims is what a verified ID token says about its user.
type idClaims struct {
	email    string
	verified bool
	admin    bool
}

// verifyIDToken checks the token response's ID token: signature (the
// provider's keys), issuer, audience, expiry, then the nonce of this flow.
// An ID token without an email (some providers keep it for userinfo) is
// completed from userinfo for the same subject.
func (d *Dashboard) verifyIDToken(ctx context.Context, p *oidc.Provider, tok *oauth2.Token, nonce string) (idClaims, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return idClaims{}, errors.New("the token response has no id_token")
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: d.cfg.OIDC.ClientID, Now: d.cfg.Now}).Verify(ctx, raw)
	if err != nil {
		return idClaims{}, err
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return idClaims{}, errors.New("the ID token's nonce is not this sign-in's")
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return idClaims{}, err
	}
	if _, ok := claims["email"].(string); !ok && p.UserInfoEndpoint() != "" {
		ui, err := p.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			return idClaims{}, fmt.Errorf("userinfo: %w", err)
		}
		if ui.Subject != idt.Subject {
			return idClaims{}, errors.New("userinfo is for another subject")
		}
		var more map[string]any
		if err := ui.Claims(&more); err != nil {
			return idClaims{}, err
		}
		for k, v := range more {
			if _, ok := claims[k]; !ok {
				claims[k] = v
			}
		}
	}
	out := idClaims{}
	out.email, _ = claims["email"].(string)
	out.verified = truthy(claims["email_verified"])
	if c := d.cfg.OIDC.AdminClaim; c != "" {
		out.admin = claimHas(claims[c], d.cfg.OIDC.AdminValue)
	}
	return out, nil
}

// truthy reads a boolean claim, which some providers send as a string.
func truthy(v any) bool {
	switch b := v.(type) {
	case bool:
		return b
	case string:
		return strings.EqualFold(b, "true")
	}
	return false
}

// claimHas reports whether claim is want, or contains it (an array claim
// such as groups); with want empty, whether it is true.
func claimHas(claim any, want string) bool {
	if want == "" {
		return truthy(claim)
	}
	switch c := claim.(type) {
	case string:
		return c == want
	case []any:
		for _, e := range c {
			if s, ok := e.(string); ok && s == want {
				return true
			}
		}
	}
	return false
}
