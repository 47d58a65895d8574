package codex

import (
	"errors"
	"strings"
	"testing"
)

func TestParseCallback(t *testing.T) {
	tests := []struct {
		name        string
		in          string
		code, state string
		err         string // substring; "" = success
		entitlement bool
	}{
		{"full url", "http://localhost:1455/auth/callback?code=ac_1&scope=openid&state=st_1", "ac_1", "st_1", "", false},
		{"https and spaces", "  https://localhost:1455/auth/callback?state=s&code=c \n", "c", "s", "", false},
		{"quoted", `"http://localhost:1455/auth/callback?code=c&state=s"`, "c", "s", "", false},
		{"no scheme", "localhost:1455/auth/callback?code=c&state=s", "c", "s", "", false},
		{"path", "/auth/callback?code=c&state=s", "c", "s", "", false},
		{"query", "code=c&state=s", "c", "s", "", false},
		{"query with ?", "?code=c&state=s", "c", "s", "", false},
		{"escaped", "code=a%2Bb%3D&state=x%2Fy", "a+b=", "x/y", "", false},
		{"fragment ignored", "http://localhost:1455/auth/callback?code=c&state=s#frag", "c", "s", "", false},
		{"fragment carries", "http://localhost:1455/auth/callback#code=c&state=s", "c", "s", "", false},
		{"denied entitlement", "http://localhost:1455/auth/callback?error=access_denied&error_description=missing_codex_entitlement&state=s", "", "", "not enabled for this workspace", true},
		{"denied", "error=access_denied&state=s", "", "", "cancelled or denied", false},
		{"other error", "error=server_error&error_description=oops", "", "", "server_error", false},
		{"no code", "http://localhost:1455/auth/callback?state=s", "", "", "no code", false},
		{"no state", "code=c", "", "", "no state", false},
		{"bare code", "ac_123", "", "", "no code", false},
		{"empty", "   ", "", "", "nothing was pasted", false},
		{"bad escape", "code=%zz&state=s", "", "", "malformed", false},
		{"space in code", "code=a%20b&state=s", "", "", "malformed", false},
		{"too long", "code=" + strings.Repeat("a", 20000) + "&state=s", "", "", "too long", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, state, err := ParseCallback(tc.in)
			if tc.err == "" {
				if err != nil || code != tc.code || state != tc.state {
					t.Fatalf("got %q %q %v", code, state, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err %v, want %q", err, tc.err)
			}
			var ce *CallbackError
			if errors.As(err, &ce) && ce.MissingEntitlement() != tc.entitlement {
				t.Fatalf("entitlement %v", ce.MissingEntitlement())
			}
			if tc.entitlement && ce == nil {
				t.Fatal("not a CallbackError")
			}
		})
	}
}

func FuzzParseCallback(f *testing.F) {
	for _, s := range []string{
		"http://localhost:1455/auth/callback?code=ac_1&scope=openid&state=st_1",
		"/auth/callback?code=c&state=s", "code=c&state=s", "?error=access_denied&error_description=missing_codex_entitlement",
		"http://[::1", "%", "#code=c&state=s", "a?b?c=d",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		code, state, err := ParseCallback(in)
		if err != nil {
			if code != "" || state != "" || err.Error() == "" {
				t.Fatalf("values with error: %q %q %v", code, state, err)
			}
			return
		}
		if code == "" || state == "" || !opaqueParam(code) || !opaqueParam(state) {
			t.Fatalf("bad success %q %q", code, state)
		}
	})
}
