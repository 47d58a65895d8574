package dashboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"net/http"
	"path"
	"strconv"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

//go:embed templates static
var files embed.FS

// views holds the parsed templates and the static files.
type views struct {
	prefix   string
	pages    map[string]*template.Template
	mailText *texttemplate.Template
	mailHTML *template.Template
	assets   map[string]string // file name → content hash, for cache busting
	staticFS fs.FS
}

// pageNames are the templates under templates/ that are whole pages.
var pageNames = []string{
	"landing", "login", "confirm", "error", "onboarding", "overview",
	"keys", "key", "revoke", "requests", "chatgpt", "link", "unlink", "device", "notfound",
	"admin_users", "admin_user", "admin_signup", "admin_usage", "audit",
}

func loadViews(prefix string) (*views, error) {
	v := &views{prefix: prefix, pages: map[string]*template.Template{}, assets: map[string]string{}}
	st, err := fs.Sub(files, "static")
	if err != nil {
		return nil, err
	}
	v.staticFS = st
	err = fs.WalkDir(st, ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := fs.ReadFile(st, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		v.assets[p] = hex.EncodeToString(sum[:6])
		return nil
	})
	if err != nil {
		return nil, err
	}
	funcs := v.funcs()
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(files,
			"templates/layout.html", "templates/partials.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("dashboard: template %s: %w", name, err)
		}
		v.pages[name] = t
	}
	if v.mailText, err = texttemplate.New("login.txt").ParseFS(files, "templates/mail/login.txt"); err != nil {
		return nil, fmt.Errorf("dashboard: mail template: %w", err)
	}
	if v.mailHTML, err = template.New("login.html").ParseFS(files, "templates/mail/login.html"); err != nil {
		return nil, fmt.Errorf("dashboard: mail template: %w", err)
	}
	return v, nil
}

// static serves the embedded files; versioned URLs are cached for a year.
func (v *views) static() http.Handler {
	fsrv := http.FileServerFS(v.staticFS)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
		ver, ok := v.assets[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if r.URL.Query().Get("v") == ver {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "public, max-age=300")
		}
		fsrv.ServeHTTP(w, r)
	})
}

func (v *views) funcs() template.FuncMap {
	return template.FuncMap{
		"url": func(p string) string {
			if p == "" {
				return v.prefix + "/"
			}
			return v.prefix + "/" + p
		},
		"asset": func(name string) string {
			return v.prefix + "/static/" + name + "?v=" + v.assets[name]
		},
		"when":    when,
		"ago":     ago,
		"iso":     func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"clock":   func(t time.Time) string { return t.UTC().Format("Jan 2 15:04:05") },
		"utc":     func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
		"dur":     duration,
		"num":     number,
		"short":   shortNumber,
		"status":  statusClass,
		"add":     func(a, b int) int { return a + b },
		"add64":   func(a, b int64) int64 { return a + b },
		"snippet": snippet,
		"usd":     usd,
	}
}

// pageData is what every page template gets.
type pageData struct {
	Site  string
	Title string
	Nav   string
	CSRF  string
	User  *vault.User
	// Admin shows the admin pages in the menu.
	Admin  bool
	Relink bool
	Flash  string
	Error  string
	// ErrorDetail is the technical side of Error, behind a disclosure.
	ErrorDetail string
	Body        any
}

// render writes a page.
func (d *Dashboard) render(w http.ResponseWriter, r *http.Request, status int, name string, pd pageData) {
	t := d.views.pages[name]
	pd.Site = d.cfg.SiteName
	if pd.CSRF == "" {
		pd.CSRF = d.csrfToken(w, r)
	}
	if s := d.lookupSession(r); s != nil {
		u := s.user
		pd.User = &u
		pd.Admin = d.isAdmin(s)
		if info, err := d.cfg.Vault.TokenInfo(u.ID); err == nil && info.RelinkNeeded {
			pd.Relink = true
		}
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", pd); err != nil {
		d.log.Error("dashboard: rendering a page failed", "page", name, "error", err)
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// renderError writes the error page.
func (d *Dashboard) renderError(w http.ResponseWriter, r *http.Request, status int, title, msg string) {
	d.render(w, r, status, "error", pageData{Title: title, Body: errorBody{Title: title, Message: msg, Status: status}})
}

type errorBody struct {
	Title, Message string
	Status         int
}

// when formats a time for tables: UTC, to the minute.
func when(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// ago is a coarse relative time ("3 min ago").
func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := time.Since(t)
	future := d < 0
	if future {
		d = -d
	}
	var s string
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		s = fmt.Sprintf("%d min", int(d/time.Minute))
	case d < 48*time.Hour:
		s = fmt.Sprintf("%d h", int(d/time.Hour))
	default:
		s = fmt.Sprintf("%d days", int(d/(24*time.Hour)))
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

// duration formats a request duration: 850 ms, 12.3 s, 2 m 05 s.
func duration(d time.Duration) string {
	switch {
	case d <= 0:
		return "—"
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1f s", d.Seconds())
	default:
		return fmt.Sprintf("%d m %02d s", int(d.Minutes()), int(d.Seconds())%60)
	}
}

// number groups thousands: 1,234,567.
func number(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// shortNumber abbreviates: 950, 12.3k, 4.5M.
func shortNumber(n int64) string {
	f := float64(n)
	switch {
	case math.Abs(f) >= 1e9:
		return trimZero(fmt.Sprintf("%.1f", f/1e9)) + "B"
	case math.Abs(f) >= 1e6:
		return trimZero(fmt.Sprintf("%.1f", f/1e6)) + "M"
	case math.Abs(f) >= 1e4:
		return trimZero(fmt.Sprintf("%.1f", f/1e3)) + "k"
	}
	return number(n)
}

func trimZero(s string) string { return strings.TrimSuffix(s, ".0") }

// statusClass is the CSS class of an HTTP status badge.
func statusClass(code int) string {
	switch {
	case code >= 500:
		return "bad"
	case code >= 400:
		return "warn"
	case code >= 200:
		return "ok"
	}
	return "muted"
}
