package codextest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

type authCode struct {
	account     string
	challenge   string
	redirectURI string
	used        bool
}

type deviceAuth struct {
	id, userCode string
	account      string // set when approved
}

// IssueCode returns an authorization code for the account, bound to a
// PKCE S256 challenge and redirect URI, as if the user had signed in.
func (s *Server) IssueCode(accountID, codeChallenge, redirectURI string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issueCodeLocked(accountID, codeChallenge, redirectURI)
}

func (s *Server) issueCodeLocked(accountID, challenge, redirectURI string) string {
	code := "ac_" + rand.Text()
	s.codes[code] = &authCode{account: accountID, challenge: challenge, redirectURI: redirectURI}
	return code
}

// handleAuthorize serves GET /oauth/authorize: it signs in the account
// named by login_hint (id or email; the only account when omitted) at once
// and redirects to redirect_uri, so a browser test can follow it.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	s.recordRequest(r, nil)
	q := r.URL.Query()
	fail := func(msg string) { http.Error(w, "codextest authorize: "+msg, http.StatusBadRequest) }
	switch {
	case q.Get("client_id") != s.opts.ClientID:
		fail("unknown client_id")
		return
	case q.Get("response_type") != "code":
		fail("response_type must be code")
		return
	case q.Get("code_challenge") == "" || q.Get("code_challenge_method") != "S256":
		fail("PKCE S256 code_challenge required")
		return
	case q.Get("state") == "":
		fail("state required")
		return
	}
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || redirect.Scheme == "" || redirect.Host == "" {
		fail("redirect_uri required")
		return
	}
	s.mu.Lock()
	acc := s.findAccountLocked(q.Get("login_hint"))
	var code string
	denied := acc != nil && acc.noCodex
	if acc != nil && !denied {
		code = s.issueCodeLocked(acc.id, q.Get("code_challenge"), redirect.String())
	}
	s.mu.Unlock()
	if acc == nil {
		fail("no account matches login_hint")
		return
	}
	rq := redirect.Query()
	if denied {
		rq.Set("error", "access_denied")
		rq.Set("error_description", "missing_codex_entitlement")
	} else {
		rq.Set("code", code)
		rq.Set("scope", q.Get("scope"))
	}
	rq.Set("state", q.Get("state"))
	redirect.RawQuery = rq.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

func (s *Server) findAccountLocked(hint string) *account {
	if hint == "" {
		if len(s.accounts) == 1 {
			for _, a := range s.accounts {
				return a
			}
		}
		return nil
	}
	if a := s.accounts[hint]; a != nil {
		return a
	}
	for _, a := range s.accounts {
		if strings.EqualFold(a.email, hint) {
			return a
		}
	}
	return nil
}

// tokenParams reads a token request body, form or JSON.
func tokenParams(r *http.Request, body []byte) url.Values {
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		var m map[string]any
		if json.Unmarshal(body, &m) != nil {
			return url.Values{}
		}
		v := url.Values{}
		for k, x := range m {
			if s, ok := x.(string); ok {
				v.Set(k, s)
			}
		}
		return v
	}
	v, _ := url.ParseQuery(string(body))
	return v
}

// handleToken serves POST /oauth/token for authorization_code and
// refresh_token grants.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	body, apiErr := readBody(r)
	s.recordRequest(r, body)
	if apiErr != nil {
		apiErr.write(w)
		return
	}
	p := tokenParams(r, body)
	flat := func(status int, code, desc string) {
		writeJSON(w, status, map[string]any{"error": code, "error_description": desc})
	}
	if p.Get("client_id") != s.opts.ClientID {
		flat(http.StatusUnauthorized, "invalid_client", "Unknown client.")
		return
	}
	switch p.Get("grant_type") {
	case "authorization_code":
		s.mu.Lock()
		c := s.codes[p.Get("code")]
		// denied is the issuer's wire text for a refused grant; empty when
		// the code is good.
		var denied string
		switch {
		case c == nil || c.used:
			denied = "Invalid authorization code."
		case c.redirectURI != p.Get("redirect_uri"):
			denied = "redirect_uri does not match the authorization request."
		case s256(p.Get("code_verifier")) != c.challenge:
			denied = "PKCE verification failed."
		}
		if c != nil {
			c.used = true
		}
		var t Tokens
		if denied == "" {
			if acc := s.accounts[c.account]; acc != nil {
				t = s.mintLocked(acc, newID("fam_"))
			} else {
				denied = "Unknown account."
			}
		}
		s.mu.Unlock()
		if denied != "" {
			flat(http.StatusBadRequest, "invalid_grant", denied)
			return
		}
		writeTokens(w, t)
	case "refresh_token":
		if !s.delayRefresh(r) {
			// The client went away while the grant was delayed: as far as
			// the issuer knows, the request never arrived.
			return
		}
		s.refreshGrant(w, p.Get("refresh_token"))
	default:
		flat(http.StatusBadRequest, "unsupported_grant_type", "Unsupported grant type.")
	}
}

// refreshGrant rotates refresh tokens: each works once; reusing one
// revokes its whole family, as the real issuer does (docs/protocol.md#refresh-permanent).
func (s *Server) refreshGrant(w http.ResponseWriter, token string) {
	nested := func(status int, code, msg string) {
		writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": msg}})
	}
	s.mu.Lock()
	s.refreshes++
	rec := s.refresh[token]
	var revoked string
	if rec != nil {
		revoked = s.families[rec.family]
	}
	switch {
	case rec == nil:
		s.mu.Unlock()
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_grant", "error_description": "Unknown or invalid refresh token."})
	case rec.used:
		s.reuses++
		s.families[rec.family] = "refresh_token_invalidated"
		s.mu.Unlock()
		nested(http.StatusBadRequest, "refresh_token_reused",
			"Your refresh token has already been used to generate a new access token. Please try signing in again.")
	case revoked != "":
		s.mu.Unlock()
		nested(http.StatusUnauthorized, revoked, "Your refresh token has been invalidated. Please try signing in again.")
	case rec.expired:
		s.mu.Unlock()
		nested(http.StatusUnauthorized, "refresh_token_expired", "Your refresh token has expired. Please try signing in again.")
	default:
		rec.used = true
		t := s.mintLocked(s.accounts[rec.account], rec.family)
		s.mu.Unlock()
		writeTokens(w, t)
	}
}

func writeTokens(w http.ResponseWriter, t Tokens) {
	writeJSON(w, http.StatusOK, map[string]any{
		"id_token": t.IDToken, "access_token": t.AccessToken, "refresh_token": t.RefreshToken,
		"token_type": "Bearer", "expires_in": int(t.ExpiresIn / time.Second),
		"scope": "openid profile email offline_access",
	})
}

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// handleDeviceStart serves POST /api/accounts/deviceauth/usercode.
func (s *Server) handleDeviceStart(w http.ResponseWriter, r *http.Request) {
	body, _ := readBody(r)
	s.recordRequest(r, body)
	var req struct {
		ClientID string `json:"client_id"`
	}
	if json.Unmarshal(body, &req) != nil || req.ClientID != s.opts.ClientID {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_client", "error_description": "Unknown client."})
		return
	}
	code := strings.ToUpper(rand.Text())
	d := &deviceAuth{id: newID("deviceauth_"), userCode: code[:4] + "-" + code[4:9]}
	s.mu.Lock()
	s.devices[d.id] = d
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"device_auth_id": d.id, "user_code": d.userCode, "interval": s.opts.DeviceInterval})
}

// ApproveDevice completes a device-code login for the account, as if the
// user had entered userCode at /codex/device.
func (s *Server) ApproveDevice(userCode, accountID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.accounts[accountID] == nil {
		return fmt.Errorf("codextest: unknown account %q", accountID)
	}
	for _, d := range s.devices {
		if d.userCode == userCode {
			d.account = accountID
			return nil
		}
	}
	return fmt.Errorf("codextest: unknown user code %q", userCode)
}

// handleDeviceToken serves POST /api/accounts/deviceauth/token: 403 while
// pending, then the code with a server-made PKCE pair (docs/protocol.md#device-code).
func (s *Server) handleDeviceToken(w http.ResponseWriter, r *http.Request) {
	body, _ := readBody(r)
	s.recordRequest(r, body)
	var req struct {
		ID       string `json:"device_auth_id"`
		UserCode string `json:"user_code"`
	}
	json.Unmarshal(body, &req)
	s.mu.Lock()
	d := s.devices[req.ID]
	if d == nil || d.userCode != req.UserCode {
		s.mu.Unlock()
		writeJSON(w, http.StatusNotFound, map[string]any{"error": map[string]any{"code": "deviceauth_not_found", "message": "Unknown device authorization."}})
		return
	}
	if d.account == "" {
		s.mu.Unlock()
		writeJSON(w, http.StatusForbidden, map[string]any{"error": map[string]any{"code": "deviceauth_authorization_pending", "message": "The user has not approved this device yet."}})
		return
	}
	delete(s.devices, d.id)
	b := make([]byte, 64)
	rand.Read(b)
	verifier := base64.RawURLEncoding.EncodeToString(b)
	challenge := s256(verifier)
	code := s.issueCodeLocked(d.account, challenge, s.IssuerURL+"/deviceauth/callback")
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"authorization_code": code, "code_challenge": challenge, "code_verifier": verifier})
}

// handleDevicePage serves the page users type the code into.
func (s *Server) handleDevicePage(w http.ResponseWriter, r *http.Request) {
	s.recordRequest(r, nil)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprint(w, "<!DOCTYPE html><html><body><h1>Enter your code</h1><p>codextest: call ApproveDevice.</p></body></html>")
}
