package translate

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestShortenToolName(t *testing.T) {
	exact := strings.Repeat("a", MaxToolNameLen)
	long := strings.Repeat("b", 100)
	mcp := "mcp__some_very_long_server_name_that_goes_on_and_on__and_on_and_on__read_file"
	mcpLongLast := "mcp__srv__" + strings.Repeat("x", 80)
	multibyte := strings.Repeat("é", 40) // 80 bytes

	tests := []struct {
		name       string
		in         string
		wantPrefix string
	}{
		{"short unchanged", "get_weather", ""},
		{"exactly 64 unchanged", exact, ""},
		{"long generic", long, strings.Repeat("b", 55) + "_"},
		{"mcp keeps prefix and last segment", mcp, "mcp__read_file_"},
		{"mcp with long last segment", mcpLongLast, "mcp__" + strings.Repeat("x", 50) + "_"},
		{"multibyte not split", multibyte, strings.Repeat("é", 27) + "_"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ShortenToolName(tt.in)
			if tt.wantPrefix == "" {
				if got != tt.in {
					t.Fatalf("ShortenToolName(%q) = %q, want unchanged", tt.in, got)
				}
				return
			}
			if len(got) > MaxToolNameLen {
				t.Fatalf("len = %d > %d: %q", len(got), MaxToolNameLen, got)
			}
			if !strings.HasPrefix(got, tt.wantPrefix) || len(got) != len(tt.wantPrefix)+toolNameHashLen {
				t.Fatalf("ShortenToolName(%q) = %q, want prefix %q + 8 hex", tt.in, got, tt.wantPrefix)
			}
			if !utf8.ValidString(got) {
				t.Fatalf("invalid UTF-8: %q", got)
			}
			if again := ShortenToolName(tt.in); again != got {
				t.Fatalf("not deterministic: %q vs %q", got, again)
			}
		})
	}
	// Distinct long names with a shared prefix stay distinct.
	a, b := ShortenToolName(long+"1"), ShortenToolName(long+"2")
	if a == b {
		t.Fatalf("collision: %q", a)
	}
}

func TestToolNamesRestore(t *testing.T) {
	var nilMap ToolNames
	if nilMap.Restore("x") != "x" {
		t.Fatal("nil map must restore identity")
	}
	var names ToolNames
	long := strings.Repeat("t", 70)
	short := names.shorten(long)
	if names.shorten("tiny") != "tiny" || len(names) != 1 {
		t.Fatalf("only changed names are recorded: %v", names)
	}
	if names.Restore(short) != long || names.Restore("tiny") != "tiny" {
		t.Fatalf("Restore failed: %v", names)
	}
}

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	inputs := []string{
		"", "plain", `quote " and \ backslash`, "<b>&</b>", "tab\tnew\nline\rcr",
		"\x00\x01\x1f\x7f", "é ü 日本", "\u2028\u2029", "bad \xff\xfe utf8", "trunc \xe2\x82",
		strings.Repeat("x", 300),
	}
	for i := range 256 {
		inputs = append(inputs, string([]byte{byte(i), 'a', byte(255 - i)}))
	}
	for _, in := range inputs {
		want, err := marshalCompact(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := quoteJSON(in); string(got) != string(want) {
			t.Errorf("quoteJSON(%q) = %s, want %s", in, got, want)
		}
	}
}
