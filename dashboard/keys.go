package dashboard

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// Key limits.
const (
	maxLabelRunes = 100
	maxActiveKeys = 50
)

type keysBody struct {
	From    string
	Keys    []vault.Key
	Active  int
	NewKey  string // plaintext, only in the answer to the create
	NewMeta vault.Key
	Setup   setup
	Label   string
	// Badges say which active keys would be refused right now (expired,
	// over budget, rate-limited), by key id.
	Badges map[string]string
}

// setup is what the client snippets need.
type setup struct {
	BaseURL string
	Key     string // the key, or a placeholder
	Real    bool   // Key is the real key
	Model   string
	Site    string
	EnvVar  string
}

func (d *Dashboard) setupFor(r *http.Request, key string) setup {
	st := setup{BaseURL: d.origin(r) + "/v1", Key: "cpk_your_key", Model: d.cfg.Model, Site: d.cfg.SiteName, EnvVar: envVarName(d.cfg.SiteName)}
	if key != "" {
		st.Key, st.Real = key, true
	}
	return st
}

// envVarName makes an environment variable name from the site name.
func envVarName(site string) string {
	var b strings.Builder
	for _, c := range strings.ToUpper(site) {
		if (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') {
			b.WriteRune(c)
		} else if b.Len() > 0 {
			b.WriteByte('_')
		}
	}
	name := strings.Trim(b.String(), "_")
	if name == "" || (name[0] >= '0' && name[0] <= '9') {
		name = "CODEX_PROXY"
	}
	return name + "_API_KEY"
}

func (d *Dashboard) keysPage(w http.ResponseWriter, r *http.Request) {
	d.showKeys(w, r, http.StatusOK, keysBody{}, flash(r), "")
}

func (d *Dashboard) showKeys(w http.ResponseWriter, r *http.Request, status int, b keysBody, flashMsg, errMsg string) {
	s := sessionOf(r)
	keys, err := d.cfg.Vault.ListKeys(s.user.ID)
	if err != nil {
		d.logf("dashboard: listing keys failed", "error", err)
		errMsg = "Your keys could not be read."
	}
	// Newest first; revoked keys after active ones.
	for i, j := 0, len(keys)-1; i < j; i, j = i+1, j-1 {
		keys[i], keys[j] = keys[j], keys[i]
	}
	active := make([]vault.Key, 0, len(keys))
	var revoked []vault.Key
	for _, k := range keys {
		if k.Disabled {
			revoked = append(revoked, k)
		} else {
			active = append(active, k)
		}
	}
	b.Active = len(active)
	b.Keys = append(active, revoked...)
	b.Badges = d.keyBadges(active)
	b.Setup = d.setupFor(r, b.NewKey)
	d.render(w, r, status, "keys", pageData{Title: "API keys", Nav: "keys", Flash: flashMsg, Error: errMsg, Body: b})
}

// keysCreate makes a key and shows it, once, with setup snippets.
func (d *Dashboard) keysCreate(w http.ResponseWriter, r *http.Request) {
	s := sessionOf(r)
	label := strings.TrimSpace(r.PostFormValue("label"))
	from := r.PostFormValue("from")
	if from != "onboarding" {
		from = ""
	}
	if utf8.RuneCountInString(label) > maxLabelRunes || len(label) > maxLabelRunes || strings.ContainsAny(label, "\r\n\t") {
		d.showKeys(w, r, http.StatusBadRequest, keysBody{Label: label}, "", "Labels are one line of at most "+strconv.Itoa(maxLabelRunes)+" characters.")
		return
	}
	if label == "" {
		label = "Key"
	}
	if n, err := d.activeKeys(s.user.ID); err == nil && n >= maxActiveKeys {
		d.showKeys(w, r, http.StatusBadRequest, keysBody{}, "", "You have "+strconv.Itoa(n)+" active keys, the most allowed. Revoke one first.")
		return
	}
	plain, k, err := d.cfg.Vault.CreateKey(s.user.ID, label)
	if err != nil {
		d.logf("dashboard: creating a key failed", "user_id", s.user.ID, "error", err)
		d.showKeys(w, r, http.StatusInternalServerError, keysBody{}, "", "The key could not be created. Try again.")
		return
	}
	d.logf("dashboard: API key created", "user_id", s.user.ID, "key_id", k.ID, "prefix", k.Prefix)
	d.showKeys(w, r, http.StatusOK, keysBody{From: from, NewKey: plain, NewMeta: k}, "", "")
}

// findKey returns one of the user's keys.
func (d *Dashboard) findKey(userID, id string) (vault.Key, error) {
	keys, err := d.cfg.Vault.ListKeys(userID)
	if err != nil {
		return vault.Key{}, err
	}
	for _, k := range keys {
		if k.ID == id {
			return k, nil
		}
	}
	return vault.Key{}, vault.ErrNotFound
}

// revokePage asks for confirmation.
func (d *Dashboard) revokePage(w http.ResponseWriter, r *http.Request) {
	s := sessionOf(r)
	k, err := d.findKey(s.user.ID, r.URL.Query().Get("id"))
	if err != nil {
		d.renderError(w, r, http.StatusNotFound, "Key not found", "This key does not exist or is not yours.")
		return
	}
	if k.Disabled {
		http.Redirect(w, r, d.url("keys"), http.StatusSeeOther)
		return
	}
	d.render(w, r, http.StatusOK, "revoke", pageData{Title: "Revoke key", Nav: "keys", Body: k})
}

func (d *Dashboard) revokeSubmit(w http.ResponseWriter, r *http.Request) {
	s := sessionOf(r)
	id := r.PostFormValue("id")
	err := d.cfg.Vault.RevokeKey(s.user.ID, id)
	if errors.Is(err, vault.ErrNotFound) {
		d.renderError(w, r, http.StatusNotFound, "Key not found", "This key does not exist or is not yours.")
		return
	}
	if err != nil {
		d.logf("dashboard: revoking a key failed", "user_id", s.user.ID, "error", err)
		d.showKeys(w, r, http.StatusInternalServerError, keysBody{}, "", "The key could not be revoked. Try again.")
		return
	}
	d.logf("dashboard: API key revoked", "user_id", s.user.ID, "key_id", id)
	http.Redirect(w, r, d.url("keys")+"?msg=revoked", http.StatusSeeOther)
}

func itoa(n int) string { return strconv.Itoa(n) }
