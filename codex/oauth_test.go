package codex

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
)

func TestAuthorizeURL(t *testing.T) {
	o := &OAuth{}
	raw := o.AuthorizeURL("state-1", "chal-1")
	if !strings.HasPrefix(raw, "https://auth.openai.com/oauth/authorize?response_type=code&") {
		t.Fatalf("url %s", raw)
	}
	if !strings.Contains(raw, "scope=openid%20profile%20email%20offline_access") {
		t.Errorf("scope not %%20-encoded: %s", raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"response_type":              "code",
		"client_id":                  DefaultClientID,
		"redirect_uri":               DefaultRedirectURI,
		"scope":                      DefaultScope,
		"code_challenge":             "chal-1",
		"code_challenge_method":      "S256",
		"id_token_add_organizations": "true",
		"codex_cli_simplified_flow":  "true",
		"state":                      "state-1",
		"originator":                 "codex_cli_rs",
	}
	q := u.Query()
	if len(q) != len(want) {
		t.Errorf("params %v", q)
	}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, q.Get(k), v)
		}
	}
	custom := (&OAuth{Issuer: "http://127.0.0.1:9/", ClientID: "c", RedirectURI: "http://localhost:1457/auth/callback", Originator: "o"}).AuthorizeURL("s&x", "c")
	cu, _ := url.Parse(custom)
	if cu.Host != "127.0.0.1:9" || cu.Query().Get("state") != "s&x" || cu.Query().Get("originator") != "o" || cu.Query().Get("redirect_uri") != "http://localhost:1457/auth/callback" {
		t.Errorf("custom %s", custom)
	}
}

func TestPKCE(t *testing.T) {
	p, err := NewPKCE()
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Verifier) != 86 || strings.ContainsAny(p.Verifier, "=+/") {
		t.Errorf("verifier %q", p.Verifier)
	}
	if b, err := base64.RawURLEncoding.DecodeString(p.Challenge); err != nil || len(b) != 32 || p.Challenge != S256Challenge(p.Verifier) {
		t.Errorf("challenge %q", p.Challenge)
	}
	// Cross-checked with Python's hashlib + urlsafe_b64encode.
	if got := S256Challenge("dBjftJeZ4CVP-mJ0kzzQuGFwBq8LTzpIwWiA5ceKzwpWtzsP"); got != "Tp_2QJdSjHCtMhQ2kKGTAcIyo5p8gECv7kosCkLtO9k" {
		t.Errorf("S256 %s", got)
	}
	q, _ := NewPKCE()
	s1, _ := NewState()
	s2, _ := NewState()
	if q.Verifier == p.Verifier || s1 == s2 || len(s1) != 43 {
		t.Error("not random")
	}
}

func TestExchangeAgainstFake(t *testing.T) {
	srv := codextest.New(t)
	srv.AddAccount("acc-1", "a@example.com", "plus")
	o := &OAuth{Issuer: srv.IssuerURL}
	p, _ := NewPKCE()
	code := srv.IssueCode("acc-1", p.Challenge, DefaultRedirectURI)
	tok, err := o.Exchange(t.Context(), code, p.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	if tok.IDToken == "" || tok.AccessToken == "" || tok.RefreshToken == "" || tok.ExpiresIn != time.Hour {
		t.Fatalf("tokens %+v", tok)
	}
	c, err := tok.Claims()
	if err != nil || c.AccountID != "acc-1" || c.Email != "a@example.com" || c.PlanType != "plus" || c.Expiry.IsZero() {
		t.Fatalf("claims %+v %v", c, err)
	}
	r := srv.RequestsTo("/oauth/token")[0]
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") ||
		r.Form.Get("grant_type") != "authorization_code" || r.Form.Get("code_verifier") != p.Verifier ||
		r.Form.Get("redirect_uri") != DefaultRedirectURI || r.Form.Get("client_id") != DefaultClientID {
		t.Fatalf("exchange request %+v", r.Form)
	}
	// The code is single-use.
	if _, err := o.Exchange(t.Context(), code, p.Verifier); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("reuse: %v", err)
	}
	// Wrong verifier.
	code = srv.IssueCode("acc-1", p.Challenge, DefaultRedirectURI)
	if _, err := o.Exchange(t.Context(), code, "wrong"); err == nil || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("bad verifier: %v", err)
	}
	if _, err := o.Exchange(t.Context(), "", ""); err == nil {
		t.Fatal("empty code accepted")
	}
}

func TestBrowserLoginAgainstFake(t *testing.T) {
	srv := codextest.New(t)
	srv.AddAccount("acc-1", "a@example.com", "plus")
	o := &OAuth{Issuer: srv.IssuerURL}
	p, _ := NewPKCE()
	state, _ := NewState()
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(o.AuthorizeURL(state, p.Challenge) + "&login_hint=acc-1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// The user pastes the address the browser could not open.
	code, gotState, err := ParseCallback(resp.Header.Get("Location"))
	if err != nil || gotState != state {
		t.Fatalf("callback: %v %q", err, gotState)
	}
	tok, err := o.Exchange(t.Context(), code, p.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	// The minted tokens work against the backend.
	c, _ := newTestClient(t, Config{Upstream: srv.URL})
	cl, _ := tok.Claims()
	st, err := c.Responses(t.Context(), TokenSourceFunc(func(context.Context, bool) (string, string, error) {
		return tok.AccessToken, cl.AccountID, nil
	}), requestBody("logged in"), RequestHeaders{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
}

func TestRefreshRotationAgainstFake(t *testing.T) {
	srv := codextest.New(t)
	first := srv.AddAccount("acc-1", "a@example.com", "plus")
	o := &OAuth{Issuer: srv.IssuerURL}
	tok, err := o.Refresh(t.Context(), first.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken == first.AccessToken || tok.RefreshToken == first.RefreshToken || tok.IDToken == "" {
		t.Fatal("not rotated")
	}
	r := srv.RequestsTo("/oauth/token")[0]
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") || len(r.JSON) != 3 ||
		r.JSON["grant_type"] != "refresh_token" || r.JSON["client_id"] != DefaultClientID || r.JSON["refresh_token"] != first.RefreshToken {
		t.Fatalf("refresh body %v", r.JSON)
	}
	// Reusing the old refresh token: permanent, and the family is dead.
	_, err = o.Refresh(t.Context(), first.RefreshToken)
	assertRefreshError(t, err, 400, "refresh_token_reused", true)
	_, err = o.Refresh(t.Context(), tok.RefreshToken)
	assertRefreshError(t, err, 401, "refresh_token_invalidated", true)
	_, err = o.Refresh(t.Context(), "rt_unknown")
	assertRefreshError(t, err, 401, "invalid_grant", true)
	fresh := srv.AddAccount("acc-1", "a@example.com", "plus")
	srv.ExpireRefresh("acc-1")
	_, err = o.Refresh(t.Context(), fresh.RefreshToken)
	assertRefreshError(t, err, 401, "refresh_token_expired", true)
	for _, e := range []error{err} {
		if strings.Contains(e.Error(), fresh.RefreshToken) {
			t.Fatal("refresh token in error")
		}
	}
	if _, err := o.Refresh(t.Context(), ""); err == nil {
		t.Fatal("empty refresh token")
	}
}

func assertRefreshError(t *testing.T, err error, status int, code string, permanent bool) {
	t.Helper()
	var re *RefreshError
	if !errors.As(err, &re) {
		t.Fatalf("%T %v", err, err)
	}
	var p interface{ Permanent() bool }
	if !errors.As(err, &p) || p.Permanent() != permanent || re.Status != status || re.Code != code {
		t.Fatalf("got %d %q permanent=%v, want %d %q %v", re.Status, re.Code, re.Permanent(), status, code, permanent)
	}
}

func TestRefreshTransportError(t *testing.T) {
	o := &OAuth{Issuer: "http://127.0.0.1:1"}
	_, err := o.Refresh(t.Context(), "rt")
	var re *RefreshError
	if !errors.As(err, &re) || re.Permanent() || re.Err == nil || re.Status != 0 {
		t.Fatalf("%v", err)
	}
}

func TestParseTokenError(t *testing.T) {
	tests := []struct {
		status    int
		body      string
		code, msg string
		permanent bool
	}{
		{400, `{"error":"invalid_grant","error_description":"bad"}`, "invalid_grant", "bad", false},
		{400, `{"error":{"code":"refresh_token_reused","message":"used"}}`, "refresh_token_reused", "used", true},
		{400, `{"error":{"code":"refresh_token_expired"}}`, "refresh_token_expired", "", true},
		{400, `{"code":"refresh_token_invalidated","message":"revoked"}`, "refresh_token_invalidated", "revoked", true},
		{401, `{}`, "", "", true},
		{401, `not json`, "", "not json", true},
		{503, `<html>down</html>`, "", "", false},
		{500, ``, "", "", false},
	}
	for _, tc := range tests {
		e := parseTokenError(tc.status, []byte(tc.body))
		if e.Code != tc.code || e.Message != tc.msg || e.Permanent() != tc.permanent || e.Status != tc.status {
			t.Errorf("%s: %+v permanent=%v", tc.body, e, e.Permanent())
		}
		if e.Error() == "" {
			t.Error("empty message")
		}
	}
}

func FuzzParseTokenError(f *testing.F) {
	f.Add(400, `{"error":{"code":"refresh_token_reused","message":"m"}}`)
	f.Add(401, `{"error":"x","error_description":"y"}`)
	f.Add(500, "\xff")
	f.Fuzz(func(t *testing.T, status int, body string) {
		e := parseTokenError(status, []byte(body))
		if len(e.Code) > 200 || len(e.Message) > 400 {
			t.Fatalf("%+v", e)
		}
		_ = e.Error()
	})
}

func TestDeviceFlowAgainstFake(t *testing.T) {
	srv := codextest.New(t)
	srv.AddAccount("acc-1", "a@example.com", "plus")
	o := &OAuth{Issuer: srv.IssuerURL}
	dc, err := o.DeviceStart(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if dc.Interval != 5*time.Second || dc.VerifyURL != srv.IssuerURL+"/codex/device" || dc.UserCode == "" || dc.DeviceAuthID == "" {
		t.Fatalf("device code %+v", dc)
	}
	dc.Interval = 5 * time.Millisecond
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Approve once the client has polled (and been told "pending") twice.
		for len(srv.RequestsTo("/deviceauth/token")) < 2 {
			time.Sleep(time.Millisecond)
		}
		srv.ApproveDevice(dc.UserCode, "acc-1")
	}()
	tok, err := o.DevicePoll(t.Context(), dc)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := tok.Claims(); c.AccountID != "acc-1" || tok.RefreshToken == "" {
		t.Fatalf("tokens %+v", tok)
	}
	ex := srv.RequestsTo("/oauth/token")
	if len(ex) != 1 || ex[0].Form.Get("redirect_uri") != srv.IssuerURL+"/deviceauth/callback" {
		t.Fatalf("exchange %+v", ex)
	}
	poll := srv.RequestsTo("/deviceauth/token")[0]
	if poll.JSON["device_auth_id"] != dc.DeviceAuthID || poll.JSON["user_code"] != dc.UserCode {
		t.Fatalf("poll body %v", poll.JSON)
	}
}

func TestDevicePollTimeout(t *testing.T) {
	srv := codextest.New(t)
	o := &OAuth{Issuer: srv.IssuerURL, DeviceTimeout: 30 * time.Millisecond}
	dc, err := o.DeviceStart(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	dc.Interval = 5 * time.Millisecond
	if _, err := o.DevicePoll(t.Context(), dc); !errors.Is(err, ErrDeviceTimeout) {
		t.Fatalf("err %v", err)
	}
}

func TestDeviceStartErrors(t *testing.T) {
	srv := codextest.New(t)
	if _, err := (&OAuth{Issuer: srv.IssuerURL + "/nowhere"}).DeviceStart(t.Context()); !errors.Is(err, ErrDeviceLoginDisabled) {
		t.Fatalf("404: %v", err)
	}
	if _, err := (&OAuth{Issuer: srv.IssuerURL, ClientID: "other"}).DeviceStart(t.Context()); err == nil {
		t.Fatal("bad client accepted")
	}
}
