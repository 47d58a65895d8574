package certstore

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
)

// describe names the server and database of a parsed config, without
// user or password.
func describe(pc *pgxpool.Config) string {
	cc := pc.ConnConfig
	return fmt.Sprintf("%s:%d/%s", cc.Host, cc.Port, cc.Database)
}

var kvPassword = regexp.MustCompile(`(?:^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)`)

// dsnSecrets extracts the password written in a DSN (URL or key=value
// form), as written and decoded, so that error texts can be scrubbed of it.
func dsnSecrets(dsn string) []string {
	var out []string
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if u, err := url.Parse(dsn); err == nil && u.User != nil {
			if pw, ok := u.User.Password(); ok {
				out = append(out, pw)
			}
		}
		// As written: between the first ':' of the userinfo and its '@'.
		rest := dsn[strings.Index(dsn, "://")+3:]
		if at := strings.LastIndex(rest, "@"); at > 0 {
			if c := strings.Index(rest[:at], ":"); c >= 0 {
				out = append(out, rest[c+1:at])
			}
		}
	} else if m := kvPassword.FindStringSubmatch(dsn); m != nil {
		out = append(out, m[1], strings.Trim(m[1], "'"))
	}
	if pw := passwordParam.FindStringSubmatch(dsn); pw != nil {
		out = append(out, pw[1])
		if dec, err := url.QueryUnescape(pw[1]); err == nil {
			out = append(out, dec)
		}
	}
	return out
}

// passwordParam finds ?password=... in a URL DSN.
var passwordParam = regexp.MustCompile(`[?&]password=([^&]*)`)

// scrubbed is an error whose text has the password replaced; errors.Is
// and errors.As still see the original.
type scrubbed struct {
	err  error
	text string
}

func (e *scrubbed) Error() string { return e.text }
func (e *scrubbed) Unwrap() error { return e.err }

// scrub hides the secrets (and their URL-escaped forms) in err's text.
func scrub(err error, secrets []string) error {
	if err == nil || len(secrets) == 0 {
		return err
	}
	text := err.Error()
	for _, s := range secrets {
		for _, p := range []string{s, url.QueryEscape(s), url.PathEscape(s)} {
			if p != "" {
				text = strings.ReplaceAll(text, p, "xxxxx")
			}
		}
	}
	return &scrubbed{err: err, text: text}
}
