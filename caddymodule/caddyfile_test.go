package caddymodule

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile" // the caddyfile adapter
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/standard"
)

var updateAdapt = flag.Bool("update-adapt", false, "rewrite the adapt golden files")

// TestCaddyfileAdapt compares each testdata/adapt/*.caddyfile with the JSON
// it must adapt to, so the directive's public syntax cannot drift.
func TestCaddyfileAdapt(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "adapt", "*.caddyfile"))
	if len(files) == 0 {
		t.Fatal("no adapt fixtures")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			in, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(in, map[string]any{"filename": f})
			if err != nil {
				t.Fatal(err)
			}
			if len(warnings) > 0 {
				t.Fatalf("warnings: %v", warnings)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, out, "", "\t"); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			golden := strings.TrimSuffix(f, ".caddyfile") + ".json"
			if *updateAdapt {
				if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update-adapt)", err)
			}
			if !bytes.Equal(pretty.Bytes(), want) {
				t.Fatalf("adapted JSON differs from %s:\n%s", golden, pretty.String())
			}
		})
	}
}

// TestCaddyfileErrors: mistakes are reported with the file and line.
func TestCaddyfileErrors(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"unknown subdirective", "codex_proxy {\n\tvalt /x\n}", `unrecognized subdirective "valt"`},
		{"repeated subdirective", "codex_proxy {\n\tupstream http://a\n\tupstream http://b\n}", `"upstream" given more than once`},
		{"argument on the directive", "codex_proxy extra", "wrong argument count"},
		{"missing argument", "codex_proxy {\n\tvault\n}", "wrong argument count"},
		{"bad duration", "codex_proxy {\n\tkeepalive soon\n}", "keepalive"},
		{"negative duration", "codex_proxy {\n\tkeepalive -1s\n}", "positive"},
		{"bad header timeout", "codex_proxy {\n\tupstream_header_timeout forever\n}", `invalid upstream_header_timeout "forever"`},
		{"zero header timeout", "codex_proxy {\n\tupstream_header_timeout 0s\n}", "upstream_header_timeout must be a positive duration"},
		{"header timeout without value", "codex_proxy {\n\tupstream_header_timeout\n}", "wrong argument count"},
		{"bad size", "codex_proxy {\n\tmax_body_size lots\n}", "max_body_size"},
		{"unknown relay option", "codex_proxy {\n\trelay https://r {\n\t\tsecret x\n\t}\n}", `unrecognized relay subdirective "secret"`},
		{"duplicate relay token", "codex_proxy {\n\trelay https://r {\n\t\ttoken a\n\t\ttoken b\n\t}\n}", "relay token given more than once"},
		{"origins missing", "codex_proxy {\n\tcors_origins\n}", "wrong argument count"},
		{"keys missing", "codex_proxy {\n\tencryption_key\n}", "wrong argument count"},
		{"repeated duration", "codex_proxy {\n\tmodels_ttl 1m\n\tmodels_ttl 2m\n}", `"models_ttl" given more than once`},
		{"duplicate alias", "codex_proxy {\n\talias a gpt-5.5\n\talias a gpt-5.4\n}", `alias "a" given more than once`},
		{"price argument count", "codex_proxy {\n\tprice gpt-5.5 1 2\n}", "price takes"},
		{"price not a number", "codex_proxy {\n\tprice gpt-5.5 1 cheap 10\n}", `"cheap" is not a price`},
		{"negative price", "codex_proxy {\n\tprice gpt-5.5 1 -0.1 10\n}", "not a price"},
		{"duplicate price", "codex_proxy {\n\tprice m 1 0.1 10\n\tprice m 2 0.2 20\n}", `price for "m" given more than once`},
		{"oidc without issuer", "codex_proxy {\n\toidc {\n\t\tclient_id c\n\t}\n}", "wrong argument count"},
		{"oidc unknown option", "codex_proxy {\n\toidc https://id.example.com {\n\t\tsecret x\n\t}\n}", `unrecognized oidc subdirective "secret"`},
		{"oidc email_links", "codex_proxy {\n\toidc https://id.example.com {\n\t\temail_links maybe\n\t}\n}", "email_links takes on or off"},
		{"admins without emails", "codex_proxy {\n\tadmins\n}", "wrong argument count"},
		{"responses unknown option", "codex_proxy {\n\tresponses {\n\t\tttl 1d\n\t}\n}", `unknown responses option "ttl" (retention, max_size, max_user_size)`},
		{"responses bad retention", "codex_proxy {\n\tresponses {\n\t\tretention forever\n\t}\n}", `responses retention "forever": use a positive duration`},
		{"responses bad size", "codex_proxy {\n\tresponses {\n\t\tmax_size 0\n\t}\n}", `responses max_size "0"`},
		{"responses twice", "codex_proxy {\n\tresponses {\n\t}\n\tresponses {\n\t}\n}", `"responses" given more than once`},
		{"oidc twice", "codex_proxy {\n\toidc https://a.example.com\n\toidc https://b.example.com\n}", `"oidc" given more than once`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := "ai.example.com {\n" + tc.body + "\n}\n"
			_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), map[string]any{"filename": "Caddyfile"})
			if err == nil {
				t.Fatal("adapted without error")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "Caddyfile:") {
				t.Fatalf("error %q should contain %q and the file:line", err, tc.want)
			}
		})
	}
}

// TestValidateRejects covers the checks Validate makes after adapting.
func TestValidateRejects(t *testing.T) {
	for _, h := range []Handler{
		{SystemPrompt: "system"},
		{SystemPrompt: "developer", ReasoningSummary: "loud"},
		{SystemPrompt: "developer", RelayURL: "https://relay"},
		{SystemPrompt: "developer", SocketMaxAge: caddy.Duration(time.Second)},
		{SystemPrompt: "developer", SocketPing: caddy.Duration(2 * time.Hour)},
	} {
		if err := h.Validate(); err == nil {
			t.Errorf("%+v validated", h)
		}
	}
}
