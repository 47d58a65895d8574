package codextest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func form(t *testing.T, s *Server, v url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(s.IssuerURL+"/oauth/token", v)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func jsonPost(t *testing.T, s *Server, path string, v any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(v)
	resp, err := http.Post(s.IssuerURL+path, "application/json", strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func challengeOf(v string) string {
	sum := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func errCode(m map[string]any) string {
	switch e := m["error"].(type) {
	case string:
		return e
	case map[string]any:
		c, _ := e["code"].(string)
		return c
	}
	return ""
}

func TestAuthorizationCodeGrant(t *testing.T) {
	s := New(t)
	s.AddAccount("acc-1", "a@example.com", "plus")
	const redirect = "http://localhost:1455/auth/callback"
	verifier := "verifier-0123456789012345678901234567890123456789"
	code := s.IssueCode("acc-1", challengeOf(verifier), redirect)
	base := url.Values{"grant_type": {"authorization_code"}, "client_id": {DefaultClientID}, "redirect_uri": {redirect}, "code": {code}}

	bad := cloneValues(base)
	bad.Set("code_verifier", "wrong")
	if st, m := form(t, s, bad); st != 400 || errCode(m) != "invalid_grant" {
		t.Fatalf("bad verifier: %d %v", st, m)
	}
	// The failed attempt consumed the code, as a real issuer does.
	code = s.IssueCode("acc-1", challengeOf(verifier), redirect)
	ok := cloneValues(base)
	ok.Set("code", code)
	ok.Set("code_verifier", verifier)
	st, m := form(t, s, ok)
	if st != 200 || m["id_token"] == "" || m["access_token"] == "" || m["refresh_token"] == "" || m["expires_in"] != 3600.0 {
		t.Fatalf("exchange: %d %v", st, m)
	}
	if st, _ := form(t, s, ok); st != 400 {
		t.Fatalf("code reuse: %d", st)
	}
	wrongRedirect := cloneValues(ok)
	wrongRedirect.Set("code", s.IssueCode("acc-1", challengeOf(verifier), redirect))
	wrongRedirect.Set("redirect_uri", "http://localhost:1457/auth/callback")
	if st, _ := form(t, s, wrongRedirect); st != 400 {
		t.Fatalf("redirect mismatch: %d", st)
	}
	wrongClient := cloneValues(ok)
	wrongClient.Set("client_id", "app_other")
	if st, m := form(t, s, wrongClient); st != 401 || errCode(m) != "invalid_client" {
		t.Fatalf("client: %d %v", st, m)
	}
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

func TestRefreshRotation(t *testing.T) {
	s := New(t)
	tok := s.AddAccount("acc-1", "a@example.com", "plus")
	refresh := func(rt string) (int, map[string]any) {
		return jsonPost(t, s, "/oauth/token", map[string]string{"client_id": DefaultClientID, "grant_type": "refresh_token", "refresh_token": rt})
	}
	st, m := refresh(tok.RefreshToken)
	if st != 200 {
		t.Fatalf("refresh: %d %v", st, m)
	}
	second := m["refresh_token"].(string)
	if second == tok.RefreshToken || m["access_token"] == tok.AccessToken {
		t.Fatal("tokens not rotated")
	}
	// New access token works; form-encoded refresh works too.
	if r := post(t, s, Tokens{AccessToken: m["access_token"].(string)}, "acc-1", validBody("x")); r.StatusCode != 200 {
		t.Fatalf("new access token: %d", r.StatusCode)
	}
	st, m = form(t, s, url.Values{"client_id": {DefaultClientID}, "grant_type": {"refresh_token"}, "refresh_token": {second}})
	if st != 200 {
		t.Fatalf("form refresh: %d %v", st, m)
	}
	third := m["refresh_token"].(string)

	// Reusing an old token fails and revokes the family.
	st, m = refresh(tok.RefreshToken)
	if st != 400 || errCode(m) != "refresh_token_reused" {
		t.Fatalf("reuse: %d %v", st, m)
	}
	st, m = refresh(third)
	if st != 401 || errCode(m) != "refresh_token_invalidated" {
		t.Fatalf("family: %d %v", st, m)
	}
	if st, m = refresh("rt_unknown"); st != 401 || errCode(m) != "invalid_grant" {
		t.Fatalf("unknown: %d %v", st, m)
	}
	if s.RefreshCount() != 5 {
		t.Fatalf("refresh count %d", s.RefreshCount())
	}
	// Another login is a new family and unaffected.
	fresh := s.AddAccount("acc-1", "a@example.com", "plus")
	s.ExpireRefresh("acc-1")
	if st, m = refresh(fresh.RefreshToken); st != 401 || errCode(m) != "refresh_token_expired" {
		t.Fatalf("expired: %d %v", st, m)
	}
}

func TestAuthorizeEndpoint(t *testing.T) {
	s := New(t)
	s.AddAccount("acc-1", "a@example.com", "plus")
	s.AddAccount("acc-2", "b@example.com", "team")
	s.DenyCodex("acc-2")
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	verifier := "v-0123456789012345678901234567890123456789012345"
	authorize := func(hint string) *http.Response {
		q := url.Values{
			"response_type": {"code"}, "client_id": {DefaultClientID}, "redirect_uri": {"http://localhost:1455/auth/callback"},
			"scope": {"openid profile email offline_access"}, "code_challenge": {challengeOf(verifier)},
			"code_challenge_method": {"S256"}, "state": {"st-1"}, "login_hint": {hint},
		}
		resp, err := noFollow.Get(s.IssuerURL + "/oauth/authorize?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := authorize("a@example.com")
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: %d", resp.StatusCode)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if loc.Host != "localhost:1455" || loc.Query().Get("state") != "st-1" || loc.Query().Get("code") == "" {
		t.Fatalf("location %s", loc)
	}
	st, m := form(t, s, url.Values{"grant_type": {"authorization_code"}, "client_id": {DefaultClientID},
		"redirect_uri": {"http://localhost:1455/auth/callback"}, "code": {loc.Query().Get("code")}, "code_verifier": {verifier}})
	if st != 200 {
		t.Fatalf("exchange of authorize code: %d %v", st, m)
	}
	loc, _ = url.Parse(authorize("acc-2").Header.Get("Location"))
	if loc.Query().Get("error") != "access_denied" || loc.Query().Get("error_description") != "missing_codex_entitlement" {
		t.Fatalf("denied location %s", loc)
	}
	if r := authorize("nobody"); r.StatusCode != 400 {
		t.Fatalf("unknown hint: %d", r.StatusCode)
	}
}

func TestDeviceFlow(t *testing.T) {
	s := New(t)
	s.AddAccount("acc-1", "a@example.com", "plus")
	st, m := jsonPost(t, s, "/api/accounts/deviceauth/usercode", map[string]string{"client_id": DefaultClientID})
	if st != 200 || m["interval"] != "5" {
		t.Fatalf("usercode: %d %v", st, m)
	}
	poll := map[string]string{"device_auth_id": m["device_auth_id"].(string), "user_code": m["user_code"].(string)}
	if st, _ := jsonPost(t, s, "/api/accounts/deviceauth/token", poll); st != 403 {
		t.Fatalf("pending: %d", st)
	}
	if err := s.ApproveDevice("nope", "acc-1"); err == nil {
		t.Fatal("approved unknown code")
	}
	if err := s.ApproveDevice(poll["user_code"], "acc-1"); err != nil {
		t.Fatal(err)
	}
	st, m = jsonPost(t, s, "/api/accounts/deviceauth/token", poll)
	if st != 200 || challengeOf(m["code_verifier"].(string)) != m["code_challenge"] {
		t.Fatalf("approved: %d %v", st, m)
	}
	st, m = form(t, s, url.Values{"grant_type": {"authorization_code"}, "client_id": {DefaultClientID},
		"redirect_uri": {s.IssuerURL + "/deviceauth/callback"}, "code": {m["authorization_code"].(string)}, "code_verifier": {m["code_verifier"].(string)}})
	if st != 200 {
		t.Fatalf("device exchange: %d %v", st, m)
	}
	if st, _ := jsonPost(t, s, "/api/accounts/deviceauth/token", poll); st != 404 {
		t.Fatalf("device code reused: %d", st)
	}
}
