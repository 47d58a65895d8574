package dashboard

import (
	"context"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// smtpSink is an in-process SMTP server that keeps what it receives.
type smtpSink struct {
	addr  string
	got   chan received
	users map[string]string // when set, AUTH PLAIN is required
}

type received struct {
	from string
	to   []string
	data []byte
	user string
}

func newSMTPSink(t *testing.T, users map[string]string) *smtpSink {
	t.Helper()
	s := &smtpSink{got: make(chan received, 10), users: users}
	srv := smtp.NewServer(s)
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = l.Addr().String()
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return s
}

func (s *smtpSink) NewSession(*smtp.Conn) (smtp.Session, error) { return &sinkSession{s: s}, nil }

type sinkSession struct {
	s   *smtpSink
	cur received
}

func (ss *sinkSession) AuthMechanisms() []string {
	if ss.s.users == nil {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *sinkSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if ss.s.users[user] != pass || pass == "" {
			return &smtp.SMTPError{Code: 535, Message: "bad credentials"}
		}
		ss.cur.user = user
		return nil
	}), nil
}

func (ss *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.users != nil && ss.cur.user == "" {
		return smtp.ErrAuthRequired
	}
	ss.cur.from = from
	return nil
}

func (ss *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.cur.to = append(ss.cur.to, to)
	return nil
}

func (ss *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.cur.data = b
	ss.s.got <- ss.cur
	return nil
}

func (ss *sinkSession) Reset()        { ss.cur = received{user: ss.cur.user} }
func (ss *sinkSession) Logout() error { return nil }

func (s *smtpSink) wait(t *testing.T) received {
	t.Helper()
	select {
	case r := <-s.got:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no mail received")
		return received{}
	}
}

// mimeParts returns the decoded text/plain and text/html parts of a
// message.
func mimeParts(t *testing.T, raw []byte) (text, html string, hdr mail.Header) {
	t.Helper()
	m, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	var walk func(ctype string, h func(string) string, body io.Reader)
	walk = func(ctype string, h func(string) string, body io.Reader) {
		mt, params, err := mime.ParseMediaType(ctype)
		if err != nil {
			t.Fatalf("content type %q: %v", ctype, err)
		}
		if strings.HasPrefix(mt, "multipart/") {
			mr := multipart.NewReader(body, params["boundary"])
			for {
				p, err := mr.NextRawPart()
				if err == io.EOF {
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				walk(p.Header.Get("Content-Type"), p.Header.Get, p)
			}
		}
		var r io.Reader = body
		if strings.EqualFold(h("Content-Transfer-Encoding"), "quoted-printable") {
			r = quotedprintable.NewReader(body)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		switch mt {
		case "text/plain":
			text = string(b)
		case "text/html":
			html = string(b)
		}
	}
	walk(m.Header.Get("Content-Type"), m.Header.Get, m.Body)
	return text, html, m.Header
}

func TestSMTPMailer(t *testing.T) {
	sink := newSMTPSink(t, map[string]string{"mailer": "s3cret"})
	m := SMTPMailer{Addr: sink.addr, Username: "mailer", Password: "s3cret", From: "UseMySub <noreply@example.com>", StartTLS: SMTPStartTLSOff}
	link := "https://ai.example.com/login/confirm?token=abc_DEF-123&next=%2Fkeys"
	err := m.Send(context.Background(), Message{To: "ada@example.com", Subject: "Sign in", Text: "Open " + link + "\n", HTML: `<a href="` + strings.ReplaceAll(link, "&", "&amp;") + `">Sign in</a>`})
	if err != nil {
		t.Fatal(err)
	}
	got := sink.wait(t)
	if got.user != "mailer" || got.from != "noreply@example.com" || len(got.to) != 1 || got.to[0] != "ada@example.com" {
		t.Fatalf("envelope %+v", got)
	}
	text, html, hdr := mimeParts(t, got.data)
	if !strings.Contains(text, link) || !strings.Contains(html, "token=abc_DEF-123&amp;next") {
		t.Fatalf("bodies:\n%s\n%s", text, html)
	}
	if hdr.Get("Subject") != "Sign in" || hdr.Get("Message-Id") == "" || hdr.Get("Date") == "" {
		t.Fatalf("headers %v", hdr)
	}

	// Wrong password: an error without the password.
	bad := m
	bad.Password = "wrong-password-123"
	err = bad.Send(context.Background(), Message{To: "ada@example.com", Subject: "x", Text: "x"})
	if err == nil || strings.Contains(err.Error(), "wrong-password-123") {
		t.Fatalf("bad auth: %v", err)
	}
	// STARTTLS required but not offered.
	req := m
	req.StartTLS = ""
	if err := req.Send(context.Background(), Message{To: "ada@example.com", Subject: "x", Text: "x"}); err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("required STARTTLS without support: %v", err)
	}
}

func TestSMTPMailerValidate(t *testing.T) {
	for _, m := range []SMTPMailer{
		{Addr: "mail.example.com", From: "a@example.com"},
		{Addr: "mail.example.com:0", From: "a@example.com"},
		{Addr: "mail.example.com:587"},
		{Addr: "mail.example.com:587", From: "not an address"},
		{Addr: "mail.example.com:587", From: "a@example.com", StartTLS: "always"},
		{Addr: "mail.example.com:587", From: "a@example.com", Password: "p"},
	} {
		if err := m.Validate(); err == nil {
			t.Errorf("%+v accepted", m)
		}
	}
	if err := (SMTPMailer{Addr: "mail.example.com:465", From: "Team <a@example.com>"}).Validate(); err != nil {
		t.Error(err)
	}
}

// The dashboard's mail through SMTP: text and HTML, link decodable.
func TestLoginMailOverSMTP(t *testing.T) {
	sink := newSMTPSink(t, nil)
	e := newEnv(t, func(c *Config) {
		c.Mailer = SMTPMailer{Addr: sink.addr, From: "noreply@example.com", StartTLS: SMTPStartTLSOff}
		c.PublicOrigin = "https://ai.example.com"
	})
	b := e.browser()
	b.get("/login")
	b.login(url.Values{"email": {"ada@example.com"}})
	got := sink.wait(t)
	text, html, hdr := mimeParts(t, got.data)
	link := linkIn(t, text)
	if !strings.HasPrefix(link, "https://ai.example.com/login/confirm?token=") {
		t.Fatalf("link %q", link)
	}
	if linkIn(t, html) != link {
		t.Fatalf("html link differs:\n%s", html)
	}
	if !strings.Contains(hdr.Get("Subject"), "Sign in to UseMySub") {
		t.Fatalf("subject %q", hdr.Get("Subject"))
	}
}

func TestResendMailer(t *testing.T) {
	var got map[string]any
	var auth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
			t.Error(err)
		}
		if got["from"] == "bad@example.com" {
			w.WriteHeader(422)
			w.Write([]byte(`{"name":"validation_error","message":"The example.com domain is not verified."}`))
			return
		}
		w.Write([]byte(`{"id":"49a3999c"}`))
	}))
	t.Cleanup(srv.Close)
	m := ResendMailer{APIKey: "re_123", From: "UseMySub <noreply@example.com>", Endpoint: srv.URL}
	if err := m.Send(context.Background(), Message{To: "ada@example.com", Subject: "Sign in", Text: "t", HTML: "<p>h</p>"}); err != nil {
		t.Fatal(err)
	}
	if auth != "Bearer re_123" || got["subject"] != "Sign in" || got["html"] != "<p>h</p>" || got["to"].([]any)[0] != "ada@example.com" {
		t.Fatalf("request %v %v", auth, got)
	}
	m.From = "bad@example.com"
	if err := m.Send(context.Background(), Message{To: "a@example.com"}); err == nil || !strings.Contains(err.Error(), "not verified") {
		t.Fatalf("error: %v", err)
	}
	if (ResendMailer{From: "a@example.com"}).Validate() == nil {
		t.Fatal("no api key accepted")
	}
}
