package vault

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/claims"
)

// Real-shaped tokens for the fixtures.
var (
	fixtureExp     = time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	fixtureID      = claims.Encode(claims.Claims{AccountID: "acct-from-id", PlanType: "pro", Email: "dev@example.com", Expiry: fixtureExp.Add(-240 * time.Hour)})
	fixtureAccess  = claims.Encode(claims.Claims{AccountID: "acct-from-access", PlanType: "plus", Expiry: fixtureExp})
	fixtureRefresh = "rt_" + strings.Repeat("R", 40)
)

// authFile fills a template's ID/ACCESS/REFRESH placeholders.
func authFile(tmpl string) []byte {
	return []byte(strings.NewReplacer("ID", fixtureID, "ACCESS", fixtureAccess, "REFRESH", fixtureRefresh).Replace(tmpl))
}

func TestParseAuthJSON(t *testing.T) {
	lastRefresh := time.Date(2026, 3, 1, 10, 20, 30, 123456000, time.UTC)
	for _, tc := range []struct {
		name    string
		file    string
		account string
		last    time.Time
	}{
		{"official", `{
  "OPENAI_API_KEY": null,
  "tokens": {
    "id_token": "ID",
    "access_token": "ACCESS",
    "refresh_token": "REFRESH",
    "account_id": "acct-explicit"
  },
  "last_refresh": "2026-03-01T10:20:30.123456Z"
}`, "acct-explicit", lastRefresh},
		{"official newer, with api key and auth_mode", `{"auth_mode":"chatgpt","OPENAI_API_KEY":"sk-proj-abc","tokens":{"id_token":"ID","access_token":"ACCESS","refresh_token":"REFRESH","account_id":"acct-explicit"},"last_refresh":"2026-03-01T10:20:30.123456Z","agent_identity":null}`, "acct-explicit", lastRefresh},
		{"official old, no account_id", `{"OPENAI_API_KEY":null,"tokens":{"id_token":"ID","access_token":"ACCESS","refresh_token":"REFRESH"},"last_refresh":"2026-03-01T10:20:30.123456Z"}`, "acct-from-id", lastRefresh},
		{"flat top level (CLIProxyAPI)", `{"id_token":"ID","access_token":"ACCESS","refresh_token":"REFRESH","account_id":"acct-explicit","last_refresh":"2026-03-01T10:20:30.123456Z","email":"other@example.com","type":"codex","expired":"2026-04-01T00:00:00Z"}`, "acct-explicit", lastRefresh},
		{"token wrapper", `{"token":{"access_token":"ACCESS","refresh_token":"REFRESH","id_token":"ID"},"last_refresh":1772360430}`, "acct-from-id", time.Unix(1772360430, 0).UTC()},
		{"camelCase", `{"tokens":{"idToken":"ID","accessToken":"ACCESS","refreshToken":"REFRESH","accountId":"acct-explicit"},"lastRefresh":"2026-03-01T10:20:30.123456Z"}`, "acct-explicit", lastRefresh},
		{"camelCase flat, no id token", `{"accessToken":"ACCESS","refreshToken":"REFRESH"}`, "acct-from-access", time.Time{}},
		{"byte order mark", "\ufeff" + `{"tokens":{"access_token":"ACCESS","refresh_token":"REFRESH"}}`, "acct-from-access", time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := ParseAuthJSON(authFile(tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if b.AccessToken != fixtureAccess || b.RefreshToken != fixtureRefresh {
				t.Fatal("tokens not read")
			}
			if b.AccountID != tc.account || !b.LastRefresh.Equal(tc.last) {
				t.Fatalf("account %q last refresh %v", b.AccountID, b.LastRefresh)
			}
			// Expiry is the access token's; plan and email prefer the id token.
			if !b.Expiry.Equal(fixtureExp) {
				t.Errorf("expiry %v, want the access token's %v", b.Expiry, fixtureExp)
			}
			wantPlan, wantEmail := "pro", "dev@example.com"
			if !strings.Contains(tc.file, "ID") {
				wantPlan, wantEmail = "plus", ""
			}
			if b.PlanType != wantPlan || b.Email != wantEmail {
				t.Errorf("plan %q email %q", b.PlanType, b.Email)
			}
		})
	}
}

func TestParseAuthJSONRejects(t *testing.T) {
	for _, tc := range []struct {
		name, file, want string
	}{
		{"api key only", `{"OPENAI_API_KEY":"sk-proj-1234567890","tokens":null,"last_refresh":null}`, "OpenAI API key, not a ChatGPT login"},
		{"api key mode", `{"auth_mode":"apikey"}`, "OpenAI API key"},
		{"no refresh token", `{"tokens":{"id_token":"ID","access_token":"ACCESS","account_id":"a"}}`, "no refresh_token"},
		{"no account id", `{"tokens":{"access_token":"opaque","refresh_token":"REFRESH"}}`, "no ChatGPT account id"},
		{"no tokens", `{"something":"else"}`, "no ChatGPT tokens"},
		{"empty object", `{}`, "no ChatGPT tokens"},
		{"not json", `this is not json REFRESH`, "not valid JSON"},
		{"truncated", `{"tokens":{"refresh_token":"REFRESH"`, "not valid JSON"},
		{"array", `["REFRESH"]`, "must be a JSON object"},
		{"null", `null`, "must be a JSON object"},
		{"empty", ``, "not valid JSON"},
		{"trailing data", `{"tokens":{"refresh_token":"REFRESH"}} {}`, "after the JSON object"},
		{"number token", `{"tokens":{"access_token":"ACCESS","refresh_token":42}}`, `"refresh_token" must be a string`},
		{"bad last_refresh", `{"tokens":{"access_token":"ACCESS","refresh_token":"REFRESH"},"last_refresh":"yesterday REFRESH"}`, "RFC 3339"},
		{"deep", strings.Repeat(`{"a":`, 100) + "1" + strings.Repeat("}", 100), "deeper than"},
		{"huge", `{"pad":"` + strings.Repeat("x", 1<<20) + `"}`, "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseAuthJSON(authFile(tc.file))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			for _, secret := range []string{fixtureRefresh, fixtureAccess, fixtureID, "sk-proj-1234567890"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error echoes a secret: %q", err)
				}
			}
		})
	}
	if _, err := ParseAuthJSON([]byte(`{"OPENAI_API_KEY":"sk-x"}`)); !errors.Is(err, ErrAPIKeyOnly) {
		t.Errorf("API key file: %v, want ErrAPIKeyOnly", err)
	}
}

func TestImportedAuthJSONWorks(t *testing.T) {
	v, _, _ := newTestVault(t, nil)
	u := mustUser(t, v, "a@example.com")
	b, err := ParseAuthJSON(authFile(`{"tokens":{"id_token":"ID","access_token":"ACCESS","refresh_token":"REFRESH"},"last_refresh":"2026-03-01T00:00:00Z"}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := v.PutTokens(u.ID, b); err != nil {
		t.Fatal(err)
	}
	tok, acc, err := v.AccessToken(t.Context(), u.ID, false)
	if err != nil || tok != fixtureAccess || acc != "acct-from-id" {
		t.Fatalf("got %v, account %q", err, acc)
	}
}

func FuzzParseAuthJSON(f *testing.F) {
	for _, s := range []string{
		`{"OPENAI_API_KEY":null,"tokens":{"id_token":"ID","access_token":"ACCESS","refresh_token":"REFRESH","account_id":"a"},"last_refresh":"2026-03-01T10:20:30Z"}`,
		`{"accessToken":"ACCESS","refreshToken":"REFRESH","lastRefresh":1700000000}`,
		`{"token":{"access_token":"x","refresh_token":"y","account_id":"z"}}`,
		`{"OPENAI_API_KEY":"sk-1"}`,
		`[[[[{}]]]]`,
		`{"tokens":{"refresh_token":"\"\\u0041"}}`,
	} {
		f.Add(authFile(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseAuthJSON(data)
		if err != nil {
			if len(err.Error()) > 300 {
				t.Fatalf("error message is %d bytes: may echo input", len(err.Error()))
			}
			return
		}
		if b.RefreshToken == "" || b.AccountID == "" {
			t.Fatalf("accepted a bundle without refresh token or account: %v", b)
		}
	})
}
