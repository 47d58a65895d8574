package codex

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNewClientValidation(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		err  string
	}{
		{"defaults", Config{}, ""},
		{"loopback http", Config{Upstream: "http://127.0.0.1:8080/backend-api/codex"}, ""},
		{"localhost http", Config{Upstream: "http://localhost:8080/x/"}, ""},
		{"ipv6 loopback", Config{Upstream: "http://[::1]:8080/x"}, ""},
		{"remote http", Config{Upstream: "http://chatgpt.com/backend-api/codex"}, "https"},
		{"ftp", Config{Upstream: "ftp://example.com"}, "https"},
		{"relative", Config{Upstream: "/backend-api"}, "absolute"},
		{"credentials", Config{Upstream: "https://u:p@example.com"}, "credentials"},
		{"query", Config{Upstream: "https://example.com/x?a=1"}, "query"},
		{"relay https", Config{RelayURL: "https://relay.example.fly.dev/codex", RelayToken: "t"}, ""},
		{"relay loopback http", Config{RelayURL: "http://127.0.0.1:9000", RelayToken: "t"}, ""},
		{"relay http", Config{RelayURL: "http://relay.example.com", RelayToken: "t"}, "https"},
		{"relay without token", Config{RelayURL: "https://relay.example.com"}, "relay token"},
		{"relay token newline", Config{RelayURL: "https://relay.example.com", RelayToken: "a\nb"}, "relay token"},
		{"originator newline", Config{Originator: "a\r\nb"}, "originator"},
		{"user agent control", Config{UserAgent: "x\x00"}, "user agent"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewClient(tc.cfg)
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if strings.HasSuffix(c.BaseURL(), "/") {
					t.Errorf("base %q keeps a trailing slash", c.BaseURL())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err %v, want %q", err, tc.err)
			}
			if strings.Contains(err.Error(), "u:p") {
				t.Fatal("credentials echoed")
			}
		})
	}
}

func TestClientDefaults(t *testing.T) {
	c, err := NewClient(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if c.BaseURL() != DefaultUpstream || c.idle != DefaultIdleTimeout || c.maxRetries != DefaultMaxRetries || c.retryBase != DefaultRetryBase {
		t.Fatalf("%+v", c)
	}
	if got := c.endpoint("/models", map[string][]string{"client_version": {"1.2"}}); got != DefaultUpstream+"/models?client_version=1.2" {
		t.Fatalf("endpoint %s", got)
	}
	custom, _ := NewClient(Config{UserAgent: "custom/1"})
	if custom.UserAgent() != "custom/1" {
		t.Fatal("UserAgent override ignored")
	}
}

func TestBackoff(t *testing.T) {
	c, _ := NewClient(Config{RetryBase: 100})
	for _, j := range []float64{0.9, 1.0, 1.0999} {
		c.jitter = func() float64 { return j }
		for n, base := range []float64{100, 200, 400, 800} {
			if got := float64(c.backoff(n)); got < base*j-1 || got > base*j+1 {
				t.Errorf("backoff(%d) with jitter %v = %v", n, j, got)
			}
		}
	}
	c.jitter = nil
	c2, _ := NewClient(Config{})
	for range 100 {
		if d := c2.backoff(0); d < DefaultRetryBase*9/10 || d > DefaultRetryBase*11/10 {
			t.Fatalf("jittered delay %v out of ±10%%", d)
		}
	}
}

func TestBuildUserAgent(t *testing.T) {
	ua := BuildUserAgent("codex_cli_rs", "0.171.0")
	if !strings.HasPrefix(ua, "codex_cli_rs/0.171.0 (") || !strings.HasSuffix(ua, ") usemysub") || !strings.Contains(ua, "; ") {
		t.Fatalf("ua %q", ua)
	}
	for _, r := range ua {
		if r < 0x20 || r > 0x7e {
			t.Fatalf("non-ASCII in %q", ua)
		}
	}
	if got := sanitizeUA("a\u00e9b\nc"); got != "a__b_c" {
		t.Fatalf("sanitize %q", got)
	}
}

func TestOSRelease(t *testing.T) {
	p := filepath.Join(t.TempDir(), "os-release")
	os.WriteFile(p, []byte("NAME=\"Ubuntu\"\nVERSION_ID=\"24.04\"\nID=ubuntu\nbroken line\n"), 0o600)
	if n, v := osRelease(p); n != "Ubuntu" || v != "24.04" {
		t.Fatalf("%q %q", n, v)
	}
	if n, v := osRelease(filepath.Join(t.TempDir(), "missing")); n != "" || v != "" {
		t.Fatal("missing file")
	}
}
