package dashboard

import (
	"context"
	"errors"
	"net/http"
	"strings"
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
	from    string
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

// deviceStart asks the issuer for a user code, then (post/redirect/get)
// shows it.
func (d *Dashboard) deviceStart(w http.ResponseWriter, r *http.Request) {
	s := sessionOf(r)
	from := fromPage(r.PostFormValue("from"))
	ctx, cancel := context.WithTimeout(r.Context(), exchangeTimeout)
	defer cancel()
	dc, err := d.cfg.OAuth.DeviceStart(ctx)
	if err != nil {
		msg := "ChatGPT did not give a code just now. Try again in a minute, or use “Link with ChatGPT” instead."
		if errors.Is(err, codex.ErrDeviceLoginDisabled) {
			msg = "Signing in with a code is not available for this ChatGPT service. Use “Link with ChatGPT” instead."
		}
		d.log.Warn("dashboard: device-code start failed", "error", err)
		d.linkFailed(w, r, from, msg, strings.TrimPrefix(err.Error(), "codex: "))
		return
	}
	now := d.cfg.Now()
	d.devices.put(s.user.ID, pendingDevice{code: dc, from: from, expires: now.Add(deviceTTL)}, now)
	http.Redirect(w, r, d.url("chatgpt/device"), http.StatusSeeOther)
}

// devicePage shows the pending code; none pending goes to the status page.
func (d *Dashboard) devicePage(w http.ResponseWriter, r *http.Request) {
	s := sessionOf(r)
	p, ok := d.devices.get(s.user.ID, d.cfg.Now())
	if !ok {
		http.Redirect(w, r, d.url("chatgpt"), http.StatusSeeOther)
		return
	}
	errMsg := ""
	if r.URL.Query().Get("wait") != "" {
		errMsg = "Not confirmed yet. Enter the code on ChatGPT’s page and approve it, then press the button again."
	}
	d.renderDevice(w, r, http.StatusOK, "", errMsg, p.from, p.code)
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
		d.linkFailed(w, r, from, "This code has expired or was already used. Start again.", "")
		return
	}
	from = p.from
	ctx, cancel := context.WithTimeout(r.Context(), d.devicePoll)
	defer cancel()
	tok, err := d.cfg.OAuth.DevicePoll(ctx, p.code)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && r.Context().Err() == nil {
			http.Redirect(w, r, d.url("chatgpt/device")+"?wait=1", http.StatusSeeOther)
			return
		}
		d.devices.drop(s.user.ID)
		d.log.Warn("dashboard: device-code sign-in failed", "user_id", s.user.ID, "error", err)
		d.linkFailed(w, r, from, "Signing in with the code did not work. Start again.", strings.TrimPrefix(err.Error(), "codex: "))
		return
	}
	d.devices.drop(s.user.ID)
	b := vault.TokenBundle{IDToken: tok.IDToken, AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken}
	if tok.ExpiresIn > 0 {
		b.Expiry = d.cfg.Now().Add(tok.ExpiresIn).UTC()
	}
	d.storeTokens(w, r, from, b)
}
