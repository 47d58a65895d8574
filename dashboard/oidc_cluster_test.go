package dashboard

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/usemysub/caddy-codex-proxy/internal/oidctest"
	"github.com/usemysub/caddy-codex-proxy/internal/pgtest"
	"github.com/usemysub/caddy-codex-proxy/vault"
	"github.com/usemysub/caddy-codex-proxy/vault/engine"
)

// TestSSOAcrossACluster: two instances on one PostgreSQL behind one public
// origin. A sign-in started on one finishes on the other (the flow is in
// the shared vault), its state is then spent on both, and the session it
// made, admin by claim, is seen by both.
func TestSSOAcrossACluster(t *testing.T) {
	pg := pgtest.Start(t)
	dsn := pg.NewDB(t)
	idp := oidctest.Start(t)
	idp.AddUser(oidctest.User{Email: "lead@example.com", EmailVerified: true, Groups: []string{"codex-admins"}})

	// The public origin is instance A's address: the redirect URI is the
	// same whichever instance builds it, as behind a load balancer.
	var srvs [2]*httptest.Server
	var ds [2]*Dashboard
	var vs [2]*vault.Vault
	var origin string
	for i := range srvs {
		v, err := engine.Open(context.Background(), dsn, vault.Options{EncryptionKeys: []string{testEncKey}, Pepper: testPepper})
		if err != nil {
			t.Fatal(err)
		}
		var d *Dashboard
		srvs[i] = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { d.ServeHTTP(w, r) }))
		srvs[i].Start()
		if i == 0 {
			origin = srvs[0].URL
		}
		d, err = NewDashboard(Config{Vault: v, PublicOrigin: origin, Signup: SignupPolicy{Mode: SignupOpen},
			OIDC: &OIDCConfig{Issuer: idp.Issuer, ClientID: oidctest.ClientID, ClientSecret: oidctest.ClientSecret, AdminClaim: "groups", AdminValue: "codex-admins"}})
		if err != nil {
			t.Fatal(err)
		}
		ds[i], vs[i] = d, v
		t.Cleanup(func() {
			srvs[i].Close()
			_ = d.Close(context.Background())
			_ = v.Close()
		})
	}
	idp.AllowRedirect(origin + "/login/oidc/callback")

	// A browser whose requests the "load balancer" sends to instance A
	// for the start and to B for the callback (cookies are per host, not
	// per port, so both see them).
	s := &ssoEnv{env: &env{t: t, srv: srvs[0], v: vs[0], d: ds[0]}, idp: idp}
	b := s.browser()
	callback := s.toCallback(b, "lead@example.com", "")
	onB := strings.Replace(callback, srvs[0].URL, srvs[1].URL, 1)
	r := b.get(onB)
	if r.status != http.StatusSeeOther {
		t.Fatalf("callback on the other instance: %d %s", r.status, r.body)
	}
	if r := b.get(callback); r.status != http.StatusBadRequest {
		t.Fatalf("the state spent on B was taken again on A: %d", r.status)
	}
	u, _ := url.Parse(origin)
	var token string
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == sessionCookie {
			token = c.Value
		}
	}
	for i, v := range vs {
		usr, rec, err := v.Session(token)
		if err != nil || usr.Email != "lead@example.com" || !rec.AdminByClaim {
			t.Fatalf("instance %d sees the session as %+v %+v %v", i, usr, rec, err)
		}
	}
}
