package vault

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestPutTokensAndInfo(t *testing.T) {
	v, path, clock := newTestVault(t, nil)
	u := mustUser(t, v, "a@example.com")
	b := bundle("rt-0", t0.Add(time.Hour))
	b.LastRefresh = time.Time{}
	b.Version = 99 // ignored: the vault numbers versions
	if err := v.PutTokens(u.ID, b); err != nil {
		t.Fatal(err)
	}
	if err := v.PutTokens(u.ID, b); err != nil {
		t.Fatal(err)
	}
	v.Close()
	v = openAt(t, path, testOptions(clock))
	info, err := v.TokenInfo(u.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := TokenInfo{AccountID: "acc-1", PlanType: "plus", Email: "chatgpt@example.com",
		Expiry: t0.Add(time.Hour), LastRefresh: t0, Version: 2, Updated: t0, Position: 1, Linked: t0}
	if info != want {
		t.Fatalf("TokenInfo = %+v\nwant       %+v", info, want)
	}
	js, _ := json.Marshal(info)
	if strings.Contains(string(js), "rt-0") || strings.Contains(string(js), b.AccessToken) {
		t.Fatal("TokenInfo carries secrets")
	}
	if err := v.Unlink(u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := v.TokenInfo(u.ID); err != ErrNotLinked {
		t.Fatalf("after Unlink: %v", err)
	}
	if err := v.Unlink(u.ID); err != nil {
		t.Fatalf("second Unlink: %v", err)
	}
}

func TestPutTokensRejects(t *testing.T) {
	v, _, _ := newTestVault(t, nil)
	u := mustUser(t, v, "a@example.com")
	if err := v.PutTokens("no-such-user", bundle("rt", t0)); err != ErrNotFound {
		t.Errorf("unknown user: %v", err)
	}
	b := bundle("", t0)
	if err := v.PutTokens(u.ID, b); err == nil || !strings.Contains(err.Error(), "refresh token") {
		t.Errorf("no refresh token: %v", err)
	}
}

func TestSecretsHiddenInStrings(t *testing.T) {
	b := withClaims(bundle("rt-secret-value", t0), false)
	r := RefreshedTokens{AccessToken: b.AccessToken, RefreshToken: b.RefreshToken, IDToken: b.IDToken}
	s := OAuthSession{UserID: "u", Verifier: "pkce-verifier-secret", Expires: t0}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		for _, val := range []any{b, &b, r, s} {
			out := fmt.Sprintf(verb, val)
			for _, secret := range []string{b.RefreshToken, b.AccessToken, b.IDToken, s.Verifier} {
				if strings.Contains(out, secret) {
					t.Errorf("%s of %T shows a secret: %s", verb, val, out)
				}
			}
		}
	}
	if !strings.Contains(b.String(), "acc-1") {
		t.Errorf("String lost the metadata: %s", b)
	}
}
