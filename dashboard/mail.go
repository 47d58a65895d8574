package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/mail"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// Message is one email.
type Message struct {
	To      string
	Subject string
	Text    string // text/plain body
	HTML    string // text/html alternative; optional
}

// Mailer delivers email.
type Mailer interface {
	Send(ctx context.Context, m Message) error
}

// LogMailer writes messages to a log instead of sending them: for
// development, where the magic link is read from the log. Anyone who can
// read the log can sign in as anyone who asked for a link.
type LogMailer struct {
	Log func(msg string, kv ...any)
}

// Send logs the recipient, subject and text body.
func (l LogMailer) Send(_ context.Context, m Message) error {
	if l.Log == nil {
		return errors.New("dashboard: LogMailer has no Log")
	}
	l.Log("dashboard mail (mail log: not sent)", "to", m.To, "subject", m.Subject, "text", m.Text)
	return nil
}

// NewMailer chooses how sign-in links are sent: through Resend, through an
// SMTP server, or, with neither, written to log (a LogMailer, for
// development). The mailer given is validated; resend and smtp exclude
// each other.
func NewMailer(resend *ResendMailer, smtp *SMTPMailer, log func(msg string, kv ...any)) (Mailer, error) {
	switch {
	case resend != nil && smtp != nil:
		return nil, errors.New("dashboard: smtp and resend exclude each other")
	case resend != nil:
		if err := resend.Validate(); err != nil {
			return nil, err
		}
		return *resend, nil
	case smtp != nil:
		if err := smtp.Validate(); err != nil {
			return nil, err
		}
		return *smtp, nil
	default:
		return LogMailer{Log: log}, nil
	}
}

// TLS modes of SMTPMailer.
const (
	// SMTPStartTLSRequired upgrades with STARTTLS and fails without it
	// (the default; port 465 uses implicit TLS instead).
	SMTPStartTLSRequired = "required"
	// SMTPStartTLSOpportunistic upgrades when the server offers STARTTLS.
	SMTPStartTLSOpportunistic = "opportunistic"
	// SMTPStartTLSOff never upgrades: only for a relay on localhost.
	SMTPStartTLSOff = "off"
)

// SMTPMailer sends through an SMTP server (submission, port 587 with
// STARTTLS, or 465 with implicit TLS).
type SMTPMailer struct {
	// Addr is host:port.
	Addr string
	// Username and Password authenticate (PLAIN/LOGIN/CRAM-MD5/SCRAM,
	// whichever the server offers); none when Username is empty.
	Username, Password string
	// From is the sender, "Name <addr@example.com>" or a bare address.
	From string
	// StartTLS is required (default), opportunistic or off; ignored on
	// port 465, which speaks TLS from the start.
	StartTLS string
	// Timeout bounds connecting and each command (default 15 s).
	Timeout time.Duration
}

// Validate checks the settings.
func (s SMTPMailer) Validate() error {
	host, port, err := net.SplitHostPort(s.Addr)
	if err != nil || host == "" {
		return fmt.Errorf("dashboard: smtp address %q must be host:port", s.Addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("dashboard: smtp port %q is not a port number", port)
	}
	if s.From == "" {
		return errors.New("dashboard: smtp needs a from address")
	}
	if _, err := mail.ParseAddress(s.From); err != nil {
		return fmt.Errorf("dashboard: smtp from %q is not an email address", s.From)
	}
	switch s.StartTLS {
	case "", SMTPStartTLSRequired, SMTPStartTLSOpportunistic, SMTPStartTLSOff:
	default:
		return fmt.Errorf("dashboard: smtp starttls must be required, opportunistic or off, not %q", s.StartTLS)
	}
	if s.Password != "" && s.Username == "" {
		return errors.New("dashboard: smtp password given without a username")
	}
	return nil
}

// Send delivers m.
func (s SMTPMailer) Send(ctx context.Context, m Message) error {
	if err := s.Validate(); err != nil {
		return err
	}
	host, portStr, _ := net.SplitHostPort(s.Addr)
	port, _ := strconv.Atoi(portStr)
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 15 * time.Second
	}
	opts := []gomail.Option{gomail.WithPort(port), gomail.WithTimeout(timeout)}
	switch {
	case port == 465:
		opts = append(opts, gomail.WithSSL())
	case s.StartTLS == SMTPStartTLSOff:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	case s.StartTLS == SMTPStartTLSOpportunistic:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if s.Username != "" {
		auth := gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover) // no cleartext password on an unencrypted link
		if s.StartTLS == SMTPStartTLSOff && port != 465 {
			// Told to stay unencrypted (a relay on localhost): PLAIN and
			// LOGIN allowed.
			auth = gomail.WithOpportunisticSMTPAuth(gomail.SMTPAuthSCRAMSHA256, gomail.SMTPAuthSCRAMSHA1,
				gomail.SMTPAuthCramMD5, gomail.SMTPAuthPlainNoEnc, gomail.SMTPAuthLoginNoEnc)
		}
		opts = append(opts, auth, gomail.WithUsername(s.Username), gomail.WithPassword(s.Password))
	}
	c, err := gomail.NewClient(host, opts...)
	if err != nil {
		return fmt.Errorf("dashboard: smtp client: %w", err)
	}
	msg := gomail.NewMsg()
	if err := msg.From(s.From); err != nil {
		return fmt.Errorf("dashboard: smtp from: %w", err)
	}
	if err := msg.To(m.To); err != nil {
		return fmt.Errorf("dashboard: smtp recipient: %w", err)
	}
	msg.Subject(m.Subject)
	msg.SetMessageID()
	msg.SetDate()
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("dashboard: sending mail via %s: %w", s.Addr, scrubSMTPError(err, s.Password))
	}
	return nil
}

// scrubSMTPError keeps the password out of an error, whatever the library
// puts in it.
func scrubSMTPError(err error, password string) error {
	if password == "" || !strings.Contains(err.Error(), password) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), password, "[redacted]"))
}

// DefaultResendEndpoint is Resend's send-email API.
const DefaultResendEndpoint = "https://api.resend.com/emails"

// ResendMailer sends through Resend's HTTP API.
type ResendMailer struct {
	// APIKey is the re_… key.
	APIKey string
	// From is the sender, on a domain verified with Resend.
	From string
	// Endpoint overrides DefaultResendEndpoint (tests).
	Endpoint string
	// Client performs the request; one with a 30 s timeout when nil.
	Client *http.Client
}

// Validate checks the settings.
func (m ResendMailer) Validate() error {
	if m.APIKey == "" {
		return errors.New("dashboard: resend needs an api_key")
	}
	if _, err := mail.ParseAddress(m.From); err != nil {
		return fmt.Errorf("dashboard: resend from %q is not an email address", m.From)
	}
	return nil
}

// Send delivers msg.
func (m ResendMailer) Send(ctx context.Context, msg Message) error {
	if err := m.Validate(); err != nil {
		return err
	}
	body, err := json.Marshal(map[string]any{
		"from": m.From, "to": []string{msg.To}, "subject": msg.Subject, "text": msg.Text, "html": msg.HTML,
	})
	if err != nil {
		return err
	}
	endpoint := m.Endpoint
	if endpoint == "" {
		endpoint = DefaultResendEndpoint
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+m.APIKey)
	req.Header.Set("Content-Type", "application/json")
	c := m.Client
	if c == nil {
		c = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("dashboard: resend: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		var e struct {
			Message string `json:"message"`
			Name    string `json:"name"`
		}
		_ = json.Unmarshal(b, &e)
		return fmt.Errorf("dashboard: resend answered %d %s: %s", resp.StatusCode, e.Name, e.Message)
	}
	return nil
}
