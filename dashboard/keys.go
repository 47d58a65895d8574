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
	From      string
	Keys      []vault.Key
	Active    int
	NewKey    string // plaintext, only on the GET that takes the flash
	NewMeta   vault.Key
	Setup     setup
	Label     string
	FormToken string // one-time token of the create form
	Linked    bool
	// Badges say which active keys would be refused right now (expired,
	// over budget, rate-limited), by key id.
	Badges map[string]string
}

// createdKey is the flash a key creation leaves for the next GET.
type createdKey struct {
	Plain string
	Meta  vault.Key
	From  string
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
	s := sessionOf(r)
	b := keysBody{}
	flashMsg := flash(r)
	if id := r.URL.Query().Get("created"); id != "" {
		// The key is shown on this GET only: a reload shows the list.
		if v, ok := d.flashes.take(id, "user:"+s.user.ID, d.cfg.Now()); ok {
			if ck, ok := v.(createdKey); ok {
				b.NewKey, b.NewMeta, b.From = ck.Plain, ck.Meta, ck.From
			}
		} else {
			flashMsg = "The new key was shown once and is hidden now. If you did not copy it, revoke it and create another."
		}
	}
	d.showKeys(w, r, http.StatusOK, b, flashMsg, "")
}

func (d *Dashboard) showKeys(w http.ResponseWriter, r *http.Request, status int, b keysBody, flashMsg, errMsg string) {
	s := sessionOf(r)
	keys, err := d.cfg.Vault.ListKeys(s.user.ID)
	if err != nil {
		d.log.Error("dashboard: listing keys failed", "user_id", s.user.ID, "error", err)
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
	b.FormToken = d.forms.issue(s.user.ID, d.cfg.Now())
	if _, err := d.cfg.Vault.TokenInfo(s.user.ID); err == nil {
		b.Linked = true
	}
	d.render(w, r, status, "keys", pageData{Title: "API keys", Nav: "keys", Flash: flashMsg, Error: errMsg, Body: b})
}

// keysCreate makes a key and redirects to the page that shows it once.
// The form's one-time token makes a reload or a double click create one
// key, not two: a repeated POST goes where the first one went.
func (d *Dashboard) keysCreate(w http.ResponseWriter, r *http.Request) {
	s := sessionOf(r)
	label := strings.TrimSpace(r.PostFormValue("label"))
	from := r.PostFormValue("from")
	if from != "onboarding" {
		from = ""
	}
	if utf8.RuneCountInString(label) > maxLabelRunes || len(label) > maxLabelRunes || strings.ContainsAny(label, "\r\n\t") {
		d.showKeys(w, r, http.StatusBadRequest, keysBody{Label: quoteInput(label)}, "", "Labels are one line of at most "+strconv.Itoa(maxLabelRunes)+" characters.")
		return
	}
	if label == "" {
		label = "Key"
	}
	var status int
	var errMsg string
	now := d.cfg.Now()
	dest, replay, ok := d.forms.use(r.PostFormValue("form_token"), s.user.ID, now, func() string {
		if n, err := d.activeKeys(s.user.ID); err == nil && n >= maxActiveKeys {
			status, errMsg = http.StatusBadRequest, "You have "+strconv.Itoa(n)+" active keys, the most allowed. Revoke one first."
			return ""
		}
		plain, k, err := d.cfg.Vault.CreateKey(s.user.ID, label)
		if err != nil {
			d.log.Error("dashboard: creating a key failed", "user_id", s.user.ID, "error", err)
			status, errMsg = http.StatusInternalServerError, "The key could not be created. Try again."
			return ""
		}
		d.log.Info("dashboard: API key created", "user_id", s.user.ID, "key_id", k.ID, "prefix", k.Prefix)
		d.audit(r, vault.AuditKeyCreated, vault.AuditTarget{KeyID: k.ID}, "label="+strconv.Quote(label))
		id := d.flashes.put("user:"+s.user.ID, createdKey{Plain: plain, Meta: k, From: from}, now, flashTTL)
		return d.url("keys") + "?created=" + id
	})
	switch {
	case !ok:
		d.showKeys(w, r, http.StatusConflict, keysBody{Label: label}, "",
			"This form was already sent or is too old, so no key was created. Check the list below, then create the key again if you need it.")
	case dest != "":
		http.Redirect(w, r, dest, http.StatusSeeOther)
	case replay:
		http.Redirect(w, r, d.url("keys"), http.StatusSeeOther)
	default:
		d.showKeys(w, r, status, keysBody{Label: label}, "", errMsg)
	}
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
		d.log.Error("dashboard: revoking a key failed", "user_id", s.user.ID, "error", err)
		d.showKeys(w, r, http.StatusInternalServerError, keysBody{}, "", "The key could not be revoked. Try again.")
		return
	}
	d.log.Info("dashboard: API key revoked", "user_id", s.user.ID, "key_id", id)
	d.audit(r, vault.AuditKeyRevoked, vault.AuditTarget{KeyID: id}, "")
	http.Redirect(w, r, d.url("keys")+"?msg=revoked", http.StatusSeeOther)
}

func itoa(n int) string { return strconv.Itoa(n) }
