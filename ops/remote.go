package ops

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// Timeouts for talking to the admin endpoint: the probe decides between
// the admin API and the file, so it must not hang on a wedged endpoint.
const (
	probeTimeout  = 5 * time.Second
	callTimeout   = time.Minute
	dialTimeout   = 2 * time.Second
	backupTimeout = time.Hour
)

// Endpoint is where a Caddy admin endpoint listens, as net.Dial takes it:
// Network "tcp" (or "tcp4", "tcp6") with a host:port Address, or "unix"
// with a socket path.
type Endpoint struct {
	Network string
	Address string
}

// RemoteService is the [Service] of a running Caddy, reached through its
// admin API. It talks to the endpoint the way Caddy's own CLI does (same
// Origin rules, unix sockets too), but tells transport errors from error
// answers, which the probe in [RemoteService.Holds] needs.
type RemoteService struct {
	base   string // scheme and host of request URLs
	origin string // "" for unix sockets, where Caddy checks no origin
	http   *http.Client
	vault  string // sent as ?vault= so a Caddy with several vaults picks the right one
}

// Remote returns the [Service] of the vault at vaultPath in the Caddy
// whose admin endpoint is ep. Nothing is sent until a call; use Holds to
// learn whether that Caddy has the vault open.
func Remote(ep Endpoint, vaultPath string) *RemoteService {
	base := "http://" + ep.Address
	origin := base
	if strings.HasPrefix(ep.Network, "unix") {
		base, origin = "http://127.0.0.1", ""
	}
	d := &net.Dialer{Timeout: dialTimeout}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, ep.Network, ep.Address)
		},
	}
	return &RemoteService{base: base, origin: origin, http: &http.Client{Transport: tr}, vault: vaultPath}
}

// Close drops the idle connections to the endpoint.
func (c *RemoteService) Close() error {
	c.http.CloseIdleConnections()
	return nil
}

// Holds reports, as nil, that the Caddy at the endpoint has the
// codex_proxy admin module and this vault open.
func (c *RemoteService) Holds(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	var res VaultsResult
	if err := c.do(ctx, http.MethodGet, "vaults", nil, nil, &res); err != nil {
		if StatusOf(err) == http.StatusNotFound {
			return errors.New("the Caddy there has no codex_proxy admin module")
		}
		return err
	}
	if !slices.Contains(res.Vaults, c.vault) {
		return fmt.Errorf("the Caddy there does not have this vault open (it has: %s)", ListOrNone(res.Vaults))
	}
	return nil
}

// call sends one operation to the vault, bounded by callTimeout.
func (c *RemoteService) call(ctx context.Context, method, path string, q url.Values, in, out any) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if q == nil {
		q = url.Values{}
	}
	q.Set("vault", c.vault)
	return c.do(ctx, method, path, q, in, out)
}

// request builds a request for path under AdminPrefix.
func (c *RemoteService) request(ctx context.Context, method, path string, q url.Values, body io.Reader) (*http.Request, error) {
	u := c.base + AdminPrefix + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if c.origin != "" {
		req.Header.Set("Origin", c.origin)
	}
	if a, ok := ActorOf(ctx); ok && a.OSUser != "" {
		req.Header.Set(OperatorHeader, a.OSUser)
	}
	if a, ok := ActorOf(ctx); ok && a.Via == ViaCLI {
		req.Header.Set(ClientHeader, ClientCLI)
	}
	return req, nil
}

// do sends one request; an error answer becomes an *Error with the
// endpoint's status and message.
func (c *RemoteService) do(ctx context.Context, method, path string, q url.Values, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := c.request(ctx, method, path, q, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("reading the admin answer: %w", err)
	}
	if resp.StatusCode >= 300 {
		return answerError(resp.StatusCode, data)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("reading the admin answer: %w", err)
	}
	return nil
}

// answerError rebuilds the *Error of an error answer.
func answerError(status int, body []byte) error {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return &Error{Status: status, Err: errors.New(e.Error)}
	}
	return errorf(status, "the admin endpoint answered HTTP %d", status)
}

// ListUsers implements [Service].
func (c *RemoteService) ListUsers(ctx context.Context) (res UsersResult, err error) {
	return res, c.call(ctx, http.MethodGet, "users", nil, nil, &res)
}

// GetUser implements [Service].
func (c *RemoteService) GetUser(ctx context.Context, email string) (res UserInfo, err error) {
	return res, c.call(ctx, http.MethodGet, "users/"+url.PathEscape(email), nil, nil, &res)
}

// UpsertUser implements [Service].
func (c *RemoteService) UpsertUser(ctx context.Context, req UserRequest) (res UserResult, err error) {
	return res, c.call(ctx, http.MethodPost, "users", nil, req, &res)
}

// SetUserEnabled implements [Service].
func (c *RemoteService) SetUserEnabled(ctx context.Context, email string, enabled bool) (res UserStateResult, err error) {
	action := "disable"
	if enabled {
		action = "enable"
	}
	return res, c.call(ctx, http.MethodPost, "users/"+url.PathEscape(email)+"/"+action, nil, nil, &res)
}

// ListAudit implements [Service].
func (c *RemoteService) ListAudit(ctx context.Context, req AuditRequest) (res AuditResult, err error) {
	return res, c.call(ctx, http.MethodGet, "audit", req.Query(), nil, &res)
}

// ListKeys implements [Service].
func (c *RemoteService) ListKeys(ctx context.Context, email string) (res KeysResult, err error) {
	return res, c.call(ctx, http.MethodGet, "keys", url.Values{"email": {email}}, nil, &res)
}

// CreateKey implements [Service].
func (c *RemoteService) CreateKey(ctx context.Context, req KeyRequest) (res CreatedKey, err error) {
	return res, c.call(ctx, http.MethodPost, "keys", nil, req, &res)
}

// RevokeKey implements [Service].
func (c *RemoteService) RevokeKey(ctx context.Context, email, id string) (res RevokeResult, err error) {
	return res, c.call(ctx, http.MethodDelete, "keys/"+url.PathEscape(id), url.Values{"email": {email}}, nil, &res)
}

// UpdateKeyPolicy implements [Service].
func (c *RemoteService) UpdateKeyPolicy(ctx context.Context, id string, req KeyUpdateRequest) (res KeyUpdateResult, err error) {
	return res, c.call(ctx, http.MethodPost, "keys/"+url.PathEscape(id)+"/policy", nil, req, &res)
}

// ResetKeyUsage implements [Service].
func (c *RemoteService) ResetKeyUsage(ctx context.Context, email, id string) (res KeyUpdateResult, err error) {
	return res, c.call(ctx, http.MethodPost, "keys/"+url.PathEscape(id)+"/reset-usage", url.Values{"email": {email}}, nil, &res)
}

// ListAccounts implements [Service].
func (c *RemoteService) ListAccounts(ctx context.Context, email string) (res AccountsResult, err error) {
	return res, c.call(ctx, http.MethodGet, "accounts", url.Values{"email": {email}}, nil, &res)
}

// AddAccount implements [Service].
func (c *RemoteService) AddAccount(ctx context.Context, req AccountAddRequest) (res vault.Account, err error) {
	return res, c.call(ctx, http.MethodPost, "accounts", nil, req, &res)
}

// RemoveAccount implements [Service].
func (c *RemoteService) RemoveAccount(ctx context.Context, email, id string) (res AccountsResult, err error) {
	return res, c.call(ctx, http.MethodDelete, "accounts/"+url.PathEscape(id), url.Values{"email": {email}}, nil, &res)
}

// OrderAccounts implements [Service].
func (c *RemoteService) OrderAccounts(ctx context.Context, req AccountOrderRequest) (res AccountsResult, err error) {
	return res, c.call(ctx, http.MethodPost, "accounts/order", nil, req, &res)
}

// SetAccountPolicy implements [Service].
func (c *RemoteService) SetAccountPolicy(ctx context.Context, req AccountPolicyRequest) (res AccountsResult, err error) {
	return res, c.call(ctx, http.MethodPost, "accounts/policy", nil, req, &res)
}

// Backup implements [Service]: it streams the answer of GET
// /codex_proxy/backup to w and checks it arrived whole.
func (c *RemoteService) Backup(ctx context.Context, w io.Writer) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, backupTimeout)
	defer cancel()
	req, err := c.request(ctx, http.MethodGet, "backup", url.Values{"vault": {c.vault}}, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		return 0, answerError(resp.StatusCode, data)
	}
	n, err := io.Copy(w, resp.Body)
	if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
		err = fmt.Errorf("the admin API sent %d of %d bytes", n, resp.ContentLength)
	}
	return n, err
}

// Interface guards
var (
	_ Service = local{}
	_ Service = (*RemoteService)(nil)
)
