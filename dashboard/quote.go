package dashboard

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Refusals quote what was sent so the user recognises it, but only a
// prefix: a page that echoes a field in full turns a 100 KB post into a
// 100 KB answer (and any text an attacker chose into the page).
const maxQuoted = 64

// quoteInput is s cut to maxQuoted characters, with "…" when it was cut.
func quoteInput(s string) string {
	n := 0
	for i := range s {
		if n == maxQuoted {
			return s[:i] + "…"
		}
		n++
	}
	return s
}

// clipQuoted cuts every Go-quoted string in msg (the %q of an error from
// another package, such as keypolicy's "model %q: …") to maxQuoted
// characters.
func clipQuoted(msg string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(msg, '"')
		if i < 0 {
			break
		}
		q, err := strconv.QuotedPrefix(msg[i:])
		if err != nil {
			b.WriteString(msg[:i+1])
			msg = msg[i+1:]
			continue
		}
		b.WriteString(msg[:i])
		msg = msg[i+len(q):]
		if s, err := strconv.Unquote(q); err == nil && utf8.RuneCountInString(s) > maxQuoted {
			q = strconv.Quote(quoteInput(s))
		}
		b.WriteString(q)
	}
	b.WriteString(msg)
	return b.String()
}
