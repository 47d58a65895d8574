// Package oidctest runs a real OpenID provider on loopback for tests: the
// provider of github.com/zitadel/oidc/v3 (its pkg/op, with the in-memory
// storage of its example server), one registered web client, and a tiny
// sign-in page a test drives with a plain HTTP client or Chromium.
//
// Nothing here is a fake of the protocol: discovery, the authorization
// code flow with PKCE, the token endpoint, the JWKS and userinfo are
// zitadel's. For attacks, Tamper rewrites the claims of the next ID tokens
// the token endpoint returns and signs them again, with the provider's key
// (so only the claim is wrong) or with another key (a forgery).
package oidctest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"html/template"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// Client credentials of the one registered client.
const (
	ClientID     = "usemysub-dashboard"
	ClientSecret = "oidctest-client-secret"
)

// User is an account at the provider; its Email is also what the sign-in
// page takes as the username.
type User struct {
	Email         string
	EmailVerified bool
	// Groups is sent as the array claim "groups" in ID tokens.
	Groups []string
}

// Provider is a running OpenID provider.
type Provider struct {
	// Issuer is http://127.0.0.1:<port>.
	Issuer string
	// TokenRequests counts calls to the token endpoint.
	TokenRequests atomic.Int32
	// UserinfoOnly keeps email and email_verified out of ID tokens, as
	// providers that give them only at the userinfo endpoint do.
	UserinfoOnly atomic.Bool

	srv   *httptest.Server
	store *store
	mu    sync.Mutex
	// tamper rewrites the claims of the ID tokens returned from now on;
	// forge signs them with another key.
	tamper    func(map[string]any)
	forge     bool
	redirects []string
}

// AllowRedirect registers another redirect URI of the client (a test's
// server address is known after the provider's).
func (p *Provider) AllowRedirect(uri string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.redirects = append(p.redirects, uri)
}

// Start runs a provider until the test ends, with a web client (ClientID,
// ClientSecret) allowed to redirect to redirectURIs and to those given to
// AllowRedirect later.
func Start(t testing.TB, redirectURIs ...string) *Provider {
	t.Helper()
	return StartOn(t, "127.0.0.1:0", redirectURIs...)
}

// StartOn is Start on a given address, for a test that needs the issuer
// before the provider runs (one that was down at first).
func StartOn(t testing.TB, addr string, redirectURIs ...string) *Provider {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	p := &Provider{Issuer: "http://" + ln.Addr().String(), redirects: redirectURIs}
	users := &userStore{users: map[string]*storage.User{}, groups: map[string][]string{}}
	client := storage.WebClient(ClientID, ClientSecret, redirectURIs...)
	p.store = &store{Storage: storage.NewStorageWithClients(users, map[string]*storage.Client{ClientID: client}), users: users, p: p}
	key := sha256.Sum256([]byte("oidctest crypto key"))
	prov, err := op.NewProvider(&op.Config{
		CryptoKey:      key,
		CodeMethodS256: true,
		AuthMethodPost: true,
	}, p.store, op.StaticIssuer(p.Issuer), op.WithAllowInsecure())
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	login := &loginPage{store: p.store, callback: op.AuthCallbackURL(prov)}
	mux.Handle("/login/username", op.NewIssuerInterceptor(prov.IssuerFromRequest).Handler(login))
	mux.Handle("/oauth/token", p.tokenEndpoint(prov))
	mux.Handle("/", prov)
	p.srv = httptest.NewUnstartedServer(mux)
	p.srv.Listener.Close()
	p.srv.Listener = ln
	p.srv.Start()
	t.Cleanup(p.srv.Close)
	return p
}

// AddUser creates (or replaces) an account.
func (p *Provider) AddUser(u User) {
	p.store.users.add(u)
}

// Tamper rewrites the claims of every ID token the token endpoint returns
// from now on with f, signed again with the provider's key or, with forge,
// with a key of its own under the same key id. Tamper(nil, false) stops.
func (p *Provider) Tamper(f func(claims map[string]any), forge bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tamper, p.forge = f, forge
}

// tokenEndpoint serves the token endpoint through the provider and
// applies Tamper to the ID token of a successful answer.
func (p *Provider) tokenEndpoint(prov http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.TokenRequests.Add(1)
		p.mu.Lock()
		tamper, forge := p.tamper, p.forge
		p.mu.Unlock()
		if tamper == nil {
			prov.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		prov.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if rec.Code == http.StatusOK {
			if b, err := p.retoken(r.Context(), body, tamper, forge); err == nil {
				body = b
			} else {
				http.Error(w, "oidctest: tampering failed: "+err.Error(), http.StatusInternalServerError)
				return
			}
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
	})
}

// retoken rewrites the id_token of a token response.
func (p *Provider) retoken(ctx context.Context, body []byte, tamper func(map[string]any), forge bool) ([]byte, error) {
	var resp map[string]any
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, err
	}
	raw, _ := resp["id_token"].(string)
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return nil, err
	}
	var claims map[string]any
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &claims); err != nil {
		return nil, err
	}
	tamper(claims)
	sk, err := p.store.SigningKey(ctx)
	if err != nil {
		return nil, err
	}
	key := sk.Key()
	if forge {
		if key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			return nil, err
		}
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: sk.ID()}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, err
	}
	payload, _ := json.Marshal(claims)
	signed, err := signer.Sign(payload)
	if err != nil {
		return nil, err
	}
	if resp["id_token"], err = signed.CompactSerialize(); err != nil {
		return nil, err
	}
	return json.Marshal(resp)
}

// store is the example storage with the ID token asserting the userinfo
// claims (email, email_verified) and the groups claim.
type store struct {
	*storage.Storage
	users *userStore
	p     *Provider
}

// GetClientByClientID returns the client, asserting userinfo claims in
// the ID token as most providers do with the email scope.
func (s *store) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.Storage.GetClientByClientID(ctx, id)
	if err != nil {
		return nil, err
	}
	return claimsClient{c, s.p}, nil
}

// SetUserinfoFromRequest adds the groups claim to ID tokens.
func (s *store) SetUserinfoFromRequest(ctx context.Context, ui *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	if err := s.Storage.SetUserinfoFromRequest(ctx, ui, req, scopes); err != nil {
		return err
	}
	if g := s.users.groupsOf(req.GetSubject()); g != nil {
		ui.AppendClaims("groups", g)
	}
	return nil
}

type claimsClient struct {
	op.Client
	p *Provider
}

func (c claimsClient) IDTokenUserinfoClaimsAssertion() bool { return !c.p.UserinfoOnly.Load() }

func (c claimsClient) RedirectURIs() []string {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	return append([]string(nil), c.p.redirects...)
}

// userStore holds the accounts, by id (the email).
type userStore struct {
	mu     sync.Mutex
	users  map[string]*storage.User
	groups map[string][]string
}

func (u *userStore) add(x User) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.users[x.Email] = &storage.User{ID: x.Email, Username: x.Email, Email: x.Email, EmailVerified: x.EmailVerified,
		FirstName: "Test", LastName: "User", PreferredLanguage: language.English}
	u.groups[x.Email] = x.Groups
}

func (u *userStore) groupsOf(id string) []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.groups[id]
}

func (u *userStore) GetUserByID(id string) *storage.User {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.users[id]
}

func (u *userStore) GetUserByUsername(name string) *storage.User { return u.GetUserByID(name) }

func (u *userStore) ExampleClientID() string { return storage.ServiceUserID }

// loginPage is the provider's sign-in page: a username (the email) and no
// password; it finishes the authorization request as that user.
type loginPage struct {
	store    *store
	callback func(context.Context, string) string
}

var loginTmpl = template.Must(template.New("login").Parse(`<!doctype html><title>Test provider</title>
<form method="post" action="/login/username"><input type="hidden" name="id" value="{{.ID}}">
<label for="username">Email</label> <input id="username" name="username" value="">
<button id="idp-submit" type="submit">Sign in at the provider</button>{{with .Error}}<p id="idp-error">{{.}}</p>{{end}}</form>`))

func (l *loginPage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	id := r.FormValue("authRequestID")
	if r.Method == http.MethodPost {
		id = r.FormValue("id")
		// Users have no password here: the test decides who signs in.
		if err := l.store.CheckUsernamePassword(r.FormValue("username"), "", id); err != nil {
			var b bytes.Buffer
			_ = loginTmpl.Execute(&b, map[string]string{"ID": id, "Error": err.Error()})
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.Copy(w, &b)
			return
		}
		http.Redirect(w, r, l.callback(r.Context(), id), http.StatusFound)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = loginTmpl.Execute(w, map[string]string{"ID": id})
}

// LoginURL reports whether u is the provider's sign-in page.
func (p *Provider) LoginURL(u string) bool {
	return strings.HasPrefix(u, p.Issuer+"/login/username") || strings.HasPrefix(u, "/login/username")
}
