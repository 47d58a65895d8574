package dashboard

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/usemysub/caddy-codex-proxy/codex"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// Device-code sign-in: for someone who cannot open the authorize link in a
// browser that reaches localhost (or prefers typing a code on their phone).
// The pending code lives in memory, one per user, for deviceTTL; each
// "check" polls the issuer once.
const (
	deviceTTL       = 15 * time.Minute
	devicePollLimit = 6 * time.Second
)

type pendingDevice struct {
	code    codex.DeviceCode
	expires time.Time
}

// devices holds the pending device codes by user id.
type devices struct {
	mu sync.Mutex
	m  map[string]pendingDevice
}

func (ds *devices) put(userID string, p pendingDevice, now time.Time) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	if ds.m == nil {
		ds.m = map[string]pendingDevice{}
	}
	for id, e := range ds.m {
		if now.After(e.expires) {
			delete(ds.m, id)
		}
	}
	ds.m[userID] = p
}

func (ds *devices) get(userID string, now time.Time) (pendingDevice, bool) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	p, ok := ds.m[userID]
	if ok && now.After(p.expires) {
		delete(ds.m, userID)
		return pendingDevice{}, false
	}
	return p, ok
}

func (ds *devices) drop(userID string) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	delete(ds.m, userID)
}

type deviceBody struct {
	From      string
	UserCode  string
	VerifyURL string
	Minutes   int
}

// deviceStart asks the issuer for a user code and shows it.
func (d *Dashboard) deviceStart(w http.ResponseWriter, r *http.Request) {
	s := sessionOf(r)
	from := fromPage(r.PostFormValue("from"))
	ctx, cancel := context.WithTimeout(r.Context(), exchangeTimeout)
	defer cancel()
	dc, err := d.cfg.OAuth.DeviceStart(ctx)
	if err != nil {
		msg := "ChatGPT did not give a device code. Use the sign-in link instead."
		if errors.Is(err, codex.ErrDeviceLoginDisabled) {
			msg = "Device-code sign-in is not available. Use the sign-in link instead."
		}
		d.log.Warn("dashboard: device-code start failed", "error", err)
		d.linkFailed(w, r, from, msg)
		return
	}
	now := d.cfg.Now()
	d.devices.put(s.user.ID, pendingDevice{code: dc, expires: now.Add(deviceTTL)}, now)
	d.renderDevice(w, r, http.StatusOK, "", "", from, dc)
}

func (d *Dashboard) renderDevice(w http.ResponseWriter, r *http.Request, status int, flashMsg, errMsg, from string, dc codex.DeviceCode) {
	nav := "chatgpt"
	if from == "onboarding" {
		nav = ""
	}
	d.render(w, r, status, "device", pageData{Title: "Link ChatGPT with a code", Nav: nav, Flash: flashMsg, Error: errMsg,
		Body: deviceBody{From: from, UserCode: dc.UserCode, VerifyURL: dc.VerifyURL, Minutes: int(deviceTTL / time.Minute)}})
}

// deviceCheck polls the issuer once: linked, still waiting, or failed.
func (d *Dashboard) deviceCheck(w http.ResponseWriter, r *http.Request) {
	s := sessionOf(r)
	from := fromPage(r.PostFormValue("from"))
	p, ok := d.devices.get(s.user.ID, d.cfg.Now())
	if !ok {
		d.linkFailed(w, r, from, "This device code expired or was already used. Start again.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), d.devicePoll)
	defer cancel()
	tok, err := d.cfg.OAuth.DevicePoll(ctx, p.code)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && r.Context().Err() == nil {
			d.renderDevice(w, r, http.StatusOK, "", "Not confirmed yet. Enter the code on ChatGPT's page, then check again.", from, p.code)
			return
		}
		d.devices.drop(s.user.ID)
		d.log.Warn("dashboard: device-code sign-in failed", "user_id", s.user.ID, "error", err)
		d.linkFailed(w, r, from, "The device-code sign-in failed. Start again.")
		return
	}
	d.devices.drop(s.user.ID)
	b := vault.TokenBundle{IDToken: tok.IDToken, AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken}
	if tok.ExpiresIn > 0 {
		b.Expiry = d.cfg.Now().Add(tok.ExpiresIn).UTC()
	}
	d.storeTokens(w, r, from, b)
}
