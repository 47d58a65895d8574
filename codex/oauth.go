package codex

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/usemysub/caddy-codex-proxy/claims"
)

// OAuth defaults (docs/protocol.md#oauth-constants).
const (
	DefaultIssuer      = "https://auth.openai.com"
	DefaultClientID    = "app_EMoamEEZ73f0CkXaXp7hrann"
	DefaultRedirectURI = "http://localhost:1455/auth/callback"
	// DefaultScope is the scope third-party clients request (docs/protocol.md#authorize); the
	// connector scopes of the newer official client are not needed.
	DefaultScope = "openid profile email offline_access"
)

// maxTokenBody bounds token endpoint answers.
const maxTokenBody = 1 << 20

// OAuth runs the "Sign in with ChatGPT" flows against the issuer. The zero
// value uses the official Codex CLI client registration.
type OAuth struct {
	// Issuer is the OAuth server base URL; DefaultIssuer when empty.
	Issuer string
	// ClientID is the OAuth client id; DefaultClientID when empty.
	ClientID string
	// RedirectURI must be registered with the issuer for ClientID;
	// DefaultRedirectURI when empty.
	RedirectURI string
	// Originator is sent as the authorize URL's originator parameter;
	// DefaultOriginator when empty.
	Originator string
	// HTTPClient performs token requests; a client with a 30 s timeout
	// that follows no redirects when nil.
	HTTPClient *http.Client
	// DeviceTimeout bounds DevicePoll; 15 minutes when zero (docs/protocol.md#device-code).
	DeviceTimeout time.Duration
}

// Tokens are the credentials the token endpoint returns.
type Tokens struct {
	IDToken      string
	AccessToken  string
	RefreshToken string
	// ExpiresIn is the access token lifetime announced by the issuer; zero
	// when not sent (use the JWT exp then).
	ExpiresIn time.Duration
}

// Claims merges the routing claims of the id token and the access token
// (account id, plan, email, expiry of the access token).
func (t Tokens) Claims() (claims.Claims, error) {
	acc, errA := claims.Parse(t.AccessToken)
	id, errI := claims.Parse(t.IDToken)
	if errA != nil && errI != nil {
		return claims.Claims{}, errA
	}
	// The access token's exp is the one that matters for refreshing.
	return acc.Merge(id), nil
}

func (o *OAuth) issuer() string      { return strings.TrimRight(orDefault(o.Issuer, DefaultIssuer), "/") }
func (o *OAuth) clientID() string    { return orDefault(o.ClientID, DefaultClientID) }
func (o *OAuth) redirectURI() string { return orDefault(o.RedirectURI, DefaultRedirectURI) }

var defaultOAuthClient = &http.Client{
	Timeout: 30 * time.Second,
	// Token requests carry codes, verifiers and refresh tokens: never
	// replay them to wherever a redirect points.
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func (o *OAuth) client() *http.Client {
	if o.HTTPClient != nil {
		return o.HTTPClient
	}
	return defaultOAuthClient
}

// AuthorizeURL returns the browser URL that starts a login (docs/protocol.md#authorize). state is
// echoed back in the callback; challenge is PKCE.Challenge.
func (o *OAuth) AuthorizeURL(state, challenge string) string {
	params := [][2]string{
		{"response_type", "code"},
		{"client_id", o.clientID()},
		{"redirect_uri", o.redirectURI()},
		{"scope", DefaultScope},
		{"code_challenge", challenge},
		{"code_challenge_method", "S256"},
		{"id_token_add_organizations", "true"},
		{"codex_cli_simplified_flow", "true"},
		{"state", state},
		{"originator", orDefault(o.Originator, DefaultOriginator)},
	}
	var b strings.Builder
	b.WriteString(o.issuer())
	b.WriteString("/oauth/authorize")
	for i, p := range params {
		if i == 0 {
			b.WriteByte('?')
		} else {
			b.WriteByte('&')
		}
		// Percent-encode spaces as %20 like the official client.
		b.WriteString(url.PathEscape(p[0]))
		b.WriteByte('=')
		b.WriteString(strings.ReplaceAll(url.QueryEscape(p[1]), "+", "%20"))
	}
	return b.String()
}

// Exchange trades an authorization code for tokens (docs/protocol.md#code-exchange). All three
// tokens are required.
func (o *OAuth) Exchange(ctx context.Context, code, verifier string) (Tokens, error) {
	return o.exchange(ctx, code, verifier, o.redirectURI())
}

func (o *OAuth) exchange(ctx context.Context, code, verifier, redirectURI string) (Tokens, error) {
	if code == "" || verifier == "" {
		return Tokens{}, errors.New("codex: token exchange needs a code and a PKCE verifier")
	}
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {redirectURI},
		"client_id":     {o.clientID()},
		"code_verifier": {verifier},
	}
	status, body, err := o.post(ctx, "/oauth/token", "application/x-www-form-urlencoded", []byte(form.Encode()))
	if err != nil {
		return Tokens{}, fmt.Errorf("codex: token exchange failed: %w", err)
	}
	if status != http.StatusOK {
		te := parseTokenError(status, body)
		return Tokens{}, fmt.Errorf("codex: token exchange failed: %s", te.describe())
	}
	t, err := decodeTokens(body)
	if err != nil {
		return Tokens{}, fmt.Errorf("codex: token exchange failed: %w", err)
	}
	if t.IDToken == "" || t.AccessToken == "" || t.RefreshToken == "" {
		return Tokens{}, errors.New("codex: token exchange failed: the issuer did not return id, access and refresh tokens")
	}
	return t, nil
}

// Refresh trades a refresh token for new tokens (docs/protocol.md#refresh-request) with the JSON body
// of the newer official client. Each returned token is optional: keep the
// old value for any that is empty. Failures are *RefreshError.
func (o *OAuth) Refresh(ctx context.Context, refreshToken string) (Tokens, error) {
	if refreshToken == "" {
		return Tokens{}, &RefreshError{Code: "refresh_token_missing", Message: "no refresh token stored"}
	}
	body, _ := json.Marshal(map[string]string{
		"client_id":     o.clientID(),
		"grant_type":    "refresh_token",
		"refresh_token": refreshToken,
	})
	status, resp, err := o.post(ctx, "/oauth/token", "application/json", body)
	if err != nil {
		return Tokens{}, &RefreshError{Message: "token endpoint unreachable", Err: err}
	}
	if status != http.StatusOK {
		return Tokens{}, parseTokenError(status, resp)
	}
	t, err := decodeTokens(resp)
	if err != nil {
		return Tokens{}, &RefreshError{Status: status, Code: "invalid_response", Message: "unreadable token response", Err: err}
	}
	if t.AccessToken == "" && t.IDToken == "" && t.RefreshToken == "" {
		return Tokens{}, &RefreshError{Status: status, Code: "invalid_response", Message: "token response carried no token"}
	}
	return t, nil
}

// post sends body to the issuer path and returns the status and body.
// Errors are transport errors only.
func (o *OAuth) post(ctx context.Context, path, contentType string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.issuer()+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/json")
	resp, err := o.client().Do(req)
	if err != nil {
		return 0, nil, redactURLError(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenBody))
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, b, nil
}

// redactURLError keeps the failing operation but drops the URL, which for
// the issuer carries nothing secret today but might with a custom issuer.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// decodeTokens reads a token endpoint success body.
func decodeTokens(body []byte) (Tokens, error) {
	var raw struct {
		IDToken      string          `json:"id_token"`
		AccessToken  string          `json:"access_token"`
		RefreshToken string          `json:"refresh_token"`
		ExpiresIn    json.RawMessage `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return Tokens{}, errors.New("token response is not JSON")
	}
	t := Tokens{IDToken: raw.IDToken, AccessToken: raw.AccessToken, RefreshToken: raw.RefreshToken}
	if f, ok := rawNumber(raw.ExpiresIn); ok && f > 0 && f < 1e9 {
		t.ExpiresIn = time.Duration(f) * time.Second
	}
	return t, nil
}
