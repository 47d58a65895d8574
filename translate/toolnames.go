package translate

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"unicode/utf8"
)

// MaxToolNameLen is the longest tool name the upstream accepts.
const MaxToolNameLen = 64

// toolNameHashLen is the number of hex digits of sha256 kept in a shortened
// name: enough to keep distinct long names apart.
const toolNameHashLen = 8

// ShortenToolName returns name unchanged when it fits MaxToolNameLen bytes.
// Longer names become a readable prefix, "_" and 8 hex digits of
// sha256(name), at most MaxToolNameLen bytes in total. For MCP names
// ("mcp__server__tool") the "mcp__" prefix and the last segment are kept
// because that is what the model needs to recognise the tool. The result is
// deterministic, so the same name shortens the same way on every turn.
func ShortenToolName(name string) string {
	if len(name) <= MaxToolNameLen {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	suffix := "_" + hex.EncodeToString(sum[:])[:toolNameHashLen]
	budget := MaxToolNameLen - len(suffix)

	prefix := name
	if strings.HasPrefix(name, "mcp__") {
		if i := strings.LastIndex(name, "__"); i > len("mcp__")-2 {
			if last := name[i+2:]; last != "" {
				prefix = "mcp__" + last
			}
		}
	}
	return truncateUTF8(prefix, budget) + suffix
}

// truncateUTF8 cuts s to at most n bytes without splitting a rune, so the
// result survives a JSON round trip byte for byte.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// ToolNames maps shortened upstream tool names back to the client's
// originals. Only names that were changed have an entry.
type ToolNames map[string]string

// Restore returns the client's name for an upstream tool name; names that
// were not shortened are returned unchanged. A nil map is valid.
func (t ToolNames) Restore(upstream string) string {
	if orig, ok := t[upstream]; ok {
		return orig
	}
	return upstream
}

// shorten returns the upstream name for a client tool name and records the
// mapping when the name changes. *t is allocated on first use so that
// requests without long names keep a nil map.
func (t *ToolNames) shorten(name string) string {
	short := ShortenToolName(name)
	if short != name {
		if *t == nil {
			*t = make(ToolNames)
		}
		(*t)[short] = name
	}
	return short
}
