package dashboard

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// Cookie names. Over HTTPS they carry the __Host- prefix (Secure, Path=/,
// no Domain: the cookie cannot be set or read by a sibling host); browsers
// refuse that prefix without Secure, so plain HTTP uses the bare names.
const (
	sessionCookie = "codex_session"
	csrfCookie    = "codex_csrf"
	hostPrefix    = "__Host-"
)

// maxFormBytes bounds form posts (an auth.json upload is at most 1 MiB).
const maxFormBytes = 2 << 20

// session is a signed-in request.
type session struct {
	user  vault.User
	token string
	csrf  string
	// AdminByClaim is set for a session an OpenID Connect sign-in made
	// whose configured claim names an admin (see isAdmin).
	AdminByClaim bool
}

type ctxKey struct{}

// sessionOf returns the session stored by auth (or looked up by csrf).
func sessionOf(r *http.Request) *session {
	s, _ := r.Context().Value(ctxKey{}).(*session)
	return s
}

// cookieName is name with the __Host- prefix when cookies are Secure.
func (d *Dashboard) cookieName(r *http.Request, name string) string {
	if d.secure(r) {
		return hostPrefix + name
	}
	return name
}

// lookupSession reads the session cookie; nil when absent or invalid.
func (d *Dashboard) lookupSession(r *http.Request) *session {
	if s := sessionOf(r); s != nil {
		return s
	}
	c, err := r.Cookie(d.cookieName(r, sessionCookie))
	if err != nil || c.Value == "" || len(c.Value) > 200 {
		return nil
	}
	u, err := d.cfg.Vault.SessionUser(c.Value)
	if err != nil {
		return nil
	}
	return &session{user: u, token: c.Value, csrf: sessionCSRF(c.Value)}
}

// sessionCSRF derives the per-session CSRF token: a hash of the session
// token under its own label, so it reveals nothing about the token and
// differs from the vault's storage key (SHA-256 of the bare token).
func sessionCSRF(token string) string {
	sum := sha256.Sum256([]byte("codex-dashboard csrf\x00" + token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// setSession starts a session for u and sets its cookie.
func (d *Dashboard) setSession(w http.ResponseWriter, r *http.Request, u vault.User) error {
	if old := d.lookupSession(r); old != nil {
		if err := d.cfg.Vault.DeleteSession(old.token); err != nil {
			d.log.Warn("dashboard: ending the previous session failed; it stays valid until it expires", "user_id", old.user.ID, "error", err)
		}
	}
	token, err := d.cfg.Vault.CreateSession(u.ID, d.cfg.SessionTTL)
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{
		Name:     d.cookieName(r, sessionCookie),
		Value:    token,
		Path:     "/",
		MaxAge:   int(d.cfg.SessionTTL / time.Second),
		HttpOnly: true,
		Secure:   d.secure(r),
		SameSite: http.SameSiteLaxMode,
	})
	return nil
}

// clearSession ends the request's session and deletes its cookie.
func (d *Dashboard) clearSession(w http.ResponseWriter, r *http.Request) {
	if s := d.lookupSession(r); s != nil {
		if err := d.cfg.Vault.DeleteSession(s.token); err != nil {
			// The cookie goes, but the session itself still works.
			d.log.Error("dashboard: ending a session failed; it stays valid until it expires", "user_id", s.user.ID, "error", err)
		}
	}
	http.SetCookie(w, &http.Cookie{
		Name: d.cookieName(r, sessionCookie), Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: d.secure(r), SameSite: http.SameSiteLaxMode,
	})
}

// auth runs h for signed-in requests. Others are sent to the login page
// (GET) or refused (POST).
func (d *Dashboard) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := d.lookupSession(r)
		if s == nil {
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				http.Redirect(w, r, d.url("login")+"?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			d.renderError(w, r, http.StatusUnauthorized, "Your session has ended", "Sign in again to continue.")
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, s)))
	}
}

// csrfToken is the token forms must send back: the session's, or for
// visitors not signed in a random value in a cookie (double submit).
func (d *Dashboard) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if s := d.lookupSession(r); s != nil {
		return s.csrf
	}
	name := d.cookieName(r, csrfCookie)
	if c, err := r.Cookie(name); err == nil && len(c.Value) >= 32 && len(c.Value) <= 100 {
		return c.Value
	}
	tok := randomToken()
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: tok, Path: "/", MaxAge: int((24 * time.Hour) / time.Second),
		HttpOnly: true, Secure: d.secure(r), SameSite: http.SameSiteLaxMode,
	})
	// Later lookups in this request see it.
	r.AddCookie(&http.Cookie{Name: name, Value: tok})
	return tok
}

// csrf checks a POST: a same-origin request (Origin and Sec-Fetch-Site,
// when the browser sends them) carrying the expected token in the form.
func (d *Dashboard) csrf(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if !d.sameOrigin(r) {
			d.renderError(w, r, http.StatusForbidden, "Request refused", "This form was sent from another site.")
			return
		}
		var err error
		if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
			err = r.ParseMultipartForm(maxFormBytes)
		} else {
			err = r.ParseForm()
		}
		if err != nil {
			d.renderError(w, r, http.StatusBadRequest, "Bad request", "The form could not be read.")
			return
		}
		var want string
		if s := d.lookupSession(r); s != nil {
			want = s.csrf
			r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, s))
		} else if c, err := r.Cookie(d.cookieName(r, csrfCookie)); err == nil {
			want = c.Value
		}
		got := r.PostFormValue("csrf")
		if want == "" || got == "" || subtle.ConstantTimeCompare([]byte(want), []byte(got)) != 1 {
			d.renderError(w, r, http.StatusForbidden, "This form has expired",
				"The page was open too long or your session changed. Go back, reload the page and try again.")
			return
		}
		h(w, r)
	}
}

// sameOrigin rejects cross-site posts by Sec-Fetch-Site and Origin.
func (d *Dashboard) sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" || o == "null" {
		// Browsers send "null" under Referrer-Policy: no-referrer, old
		// ones and other clients nothing; Sec-Fetch-Site and the token
		// still decide.
		return true
	}
	u, err := url.Parse(o)
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	if d.cfg.PublicOrigin != "" && strings.EqualFold(o, d.cfg.PublicOrigin) {
		return true
	}
	return false
}

// randomToken returns 32 random bytes, base64url.
func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
