package codex

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Device-code defaults (docs/protocol.md#device-code).
const (
	defaultDeviceInterval = 5 * time.Second
	defaultDeviceTimeout  = 15 * time.Minute
)

// ErrDeviceLoginDisabled reports an issuer without device-code login.
var ErrDeviceLoginDisabled = errors.New("codex: device-code login is not enabled on this issuer")

// ErrDeviceTimeout reports that nobody approved the code in time.
var ErrDeviceTimeout = errors.New("codex: device-code login was not completed in time; start again")

// DeviceCode is a pending device-code login: show UserCode and VerifyURL
// to the user, then call DevicePoll.
type DeviceCode struct {
	// DeviceAuthID identifies the login at the issuer.
	DeviceAuthID string
	// UserCode is what the user types at VerifyURL.
	UserCode string
	// VerifyURL is the page where the user enters the code.
	VerifyURL string
	// Interval is the polling period the issuer asked for.
	Interval time.Duration
}

// DeviceStart begins a device-code login (docs/protocol.md#device-code).
func (o *OAuth) DeviceStart(ctx context.Context) (DeviceCode, error) {
	body, _ := json.Marshal(map[string]string{"client_id": o.clientID()})
	status, resp, err := o.post(ctx, "/api/accounts/deviceauth/usercode", "application/json", body)
	if err != nil {
		return DeviceCode{}, fmt.Errorf("codex: device-code login: %w", err)
	}
	if status == http.StatusNotFound {
		return DeviceCode{}, ErrDeviceLoginDisabled
	}
	if status != http.StatusOK {
		return DeviceCode{}, fmt.Errorf("codex: device-code login: %s", parseTokenError(status, resp).describe())
	}
	var raw struct {
		DeviceAuthID string          `json:"device_auth_id"`
		UserCode     string          `json:"user_code"`
		UserCodeAlt  string          `json:"usercode"`
		Interval     json.RawMessage `json:"interval"`
	}
	if err := json.Unmarshal(resp, &raw); err != nil || raw.DeviceAuthID == "" {
		return DeviceCode{}, errors.New("codex: device-code login: unreadable answer from the issuer")
	}
	dc := DeviceCode{
		DeviceAuthID: raw.DeviceAuthID,
		UserCode:     firstNonEmpty(raw.UserCode, raw.UserCodeAlt),
		VerifyURL:    o.issuer() + "/codex/device",
		Interval:     defaultDeviceInterval,
	}
	if dc.UserCode == "" {
		return DeviceCode{}, errors.New("codex: device-code login: the issuer sent no user code")
	}
	// interval is a string of seconds in practice; accept numbers too.
	if s := rawString(raw.Interval); s != "" {
		if n, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil && n > 0 && n <= 600 {
			dc.Interval = time.Duration(n * float64(time.Second))
		}
	}
	return dc, nil
}

// DevicePoll polls until the user approved the code, ctx is done or the
// device timeout passes, then exchanges the code for tokens with the
// issuer-supplied PKCE verifier and redirect {issuer}/deviceauth/callback.
func (o *OAuth) DevicePoll(ctx context.Context, dc DeviceCode) (Tokens, error) {
	timeout := o.DeviceTimeout
	if timeout <= 0 {
		timeout = defaultDeviceTimeout
	}
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, ErrDeviceTimeout)
	defer cancel()
	interval := dc.Interval
	if interval <= 0 {
		interval = defaultDeviceInterval
	}
	body, _ := json.Marshal(map[string]string{"device_auth_id": dc.DeviceAuthID, "user_code": dc.UserCode})
	for {
		status, resp, err := o.post(ctx, "/api/accounts/deviceauth/token", "application/json", body)
		if err != nil {
			if ctx.Err() != nil {
				return Tokens{}, context.Cause(ctx)
			}
			return Tokens{}, fmt.Errorf("codex: device-code login: %w", err)
		}
		switch status {
		case http.StatusOK:
			var raw struct {
				Code     string `json:"authorization_code"`
				Verifier string `json:"code_verifier"`
			}
			if json.Unmarshal(resp, &raw) != nil || raw.Code == "" || raw.Verifier == "" {
				return Tokens{}, errors.New("codex: device-code login: unreadable approval from the issuer")
			}
			return o.exchange(ctx, raw.Code, raw.Verifier, o.issuer()+"/deviceauth/callback")
		case http.StatusForbidden, http.StatusNotFound:
			// Still pending.
		default:
			return Tokens{}, fmt.Errorf("codex: device-code login: %s", parseTokenError(status, resp).describe())
		}
		if err := sleepCtx(ctx, interval); err != nil {
			return Tokens{}, context.Cause(ctx)
		}
	}
}
