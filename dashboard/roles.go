package dashboard

import (
	"context"
	"fmt"
	"net/http"

	"github.com/usemysub/caddy-codex-proxy/ops"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// Roles: an admin sees every user and acts on them (the admin pages under
// /admin/); everyone else is a member, who sees only their own account.
// An admin is a member too, with their own keys and accounts.
//
// Who is an admin is decided on every request, from the running config
// (Config.Admins, so a caddy reload changes it at once) and from the
// session (adminByClaim, set by an OpenID Connect sign-in whose claim
// made the user an admin). Nothing about the role is stored on the user.

// adminSet normalises Config.Admins into a set of emails.
func adminSet(emails []string) (map[string]bool, error) {
	set := make(map[string]bool, len(emails))
	for _, e := range emails {
		n, err := vault.NormalizeEmail(e)
		if err != nil {
			return nil, fmt.Errorf("dashboard: admin %q is not an email address", e)
		}
		set[n] = true
	}
	return set, nil
}

// isAdmin reports whether the session is an admin's: their email is in
// Config.Admins, or their OpenID Connect sign-in carried the admin claim.
// A nil session is nobody's.
func (d *Dashboard) isAdmin(sess *session) bool {
	if sess == nil {
		return false
	}
	return sess.adminByClaim || d.admins[sess.user.Email]
}

// admin runs h for admins only. Visitors not signed in go to the login page
// (GET) or get a 401 (POST), as with auth; members get a plain 403 page that
// says nothing about what is behind the URL. The handler's context carries
// the admin as the actor of the ops calls it makes (actorContext).
func (d *Dashboard) admin(h http.HandlerFunc) http.HandlerFunc {
	return d.auth(func(w http.ResponseWriter, r *http.Request) {
		s := sessionOf(r)
		if !d.isAdmin(s) {
			d.log.Info("dashboard: admin page refused to a member", "user_id", s.user.ID, "path", r.URL.Path)
			d.renderError(w, r, http.StatusForbidden, "Not allowed", "This page is for the site's admins.")
			return
		}
		h(w, r.WithContext(actorContext(r.Context(), s, d.cfg.ClientIP(r))))
	})
}

// actorContext puts the signed-in admin on ctx as the actor of the ops
// calls made with it, the one place the dashboard names its actor; source
// is the browser's address, for the audit log.
func actorContext(ctx context.Context, s *session, source string) context.Context {
	return ops.WithActor(ctx, ops.Actor{UserID: s.user.ID, Email: s.user.Email, Source: source})
}
