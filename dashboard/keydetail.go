package dashboard

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/usemysub/caddy-codex-proxy/keypolicy"
	"github.com/usemysub/caddy-codex-proxy/translate"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// The key detail page: one key's usage (now and by day), its policy as a
// form the owner can edit, and a usage reset. Server-side forms with the
// usual CSRF token; no JavaScript needed.

// keyDays is how many days of per-key history the page shows, and
// keyDayRecords how many request-log records it reads at most for them.
const (
	keyDays       = 14
	keyDayRecords = 10000
)

type keyBody struct {
	Key    vault.Key
	Status keypolicy.Status
	Badge  string
	// Form holds the policy fields as text: the stored policy, or what
	// was submitted when it did not validate.
	Form    map[string]string
	Days    []keyDay
	Capped  bool // the history stopped at keyDayRecords
	Total   keyDay
	Efforts []string
}

// keyDay is one UTC day of a key's requests.
type keyDay struct {
	Day      time.Time
	Requests int64
	Errors   int64
	Tokens   int64
	Value    Value
}

// keyBadge names what would refuse the key's next request right now.
func keyBadge(k vault.Key, s keypolicy.Status) string {
	switch {
	case k.Disabled:
		return "revoked"
	case s.Expired:
		return "expired"
	case s.OverBudget:
		return "over budget"
	case s.RateLimited:
		return "rate-limited"
	}
	return ""
}

// keyBadges are the badges of the user's active keys, by key id.
func (d *Dashboard) keyBadges(keys []vault.Key) map[string]string {
	out := map[string]string{}
	for _, k := range keys {
		if b := keyBadge(k, d.cfg.Vault.KeyStatus(k)); b != "" && !k.Disabled {
			out[k.ID] = b
		}
	}
	return out
}

func policyForm(p keypolicy.Policy) map[string]string {
	f := map[string]string{}
	for _, name := range keypolicy.FieldNames {
		f[name] = p.Text(name)
	}
	return f
}

// keyPage shows one of the user's keys.
func (d *Dashboard) keyPage(w http.ResponseWriter, r *http.Request) {
	d.showKey(w, r, http.StatusOK, r.URL.Query().Get("id"), nil, flash(r), "")
}

func (d *Dashboard) showKey(w http.ResponseWriter, r *http.Request, status int, id string, form map[string]string, flashMsg, errMsg string) {
	s := sessionOf(r)
	k, err := d.cfg.Vault.GetKey(s.user.ID, id)
	if err != nil {
		d.renderError(w, r, http.StatusNotFound, "Key not found", "This key does not exist or is not yours.")
		return
	}
	b := keyBody{Key: k, Efforts: keypolicy.Efforts}
	if !k.Disabled {
		b.Status = d.cfg.Vault.KeyStatus(k)
	}
	b.Badge = keyBadge(k, b.Status)
	b.Form = form
	if b.Form == nil {
		b.Form = policyForm(k.Policy)
	}
	b.Days, b.Capped, err = d.keyHistory(s.user.ID, k.ID)
	if err != nil {
		d.log.Error("dashboard: reading a key's history failed", "user_id", s.user.ID, "key_id", k.ID, "error", err)
		errMsg = "The key's history could not be read."
	}
	for _, day := range b.Days {
		b.Total.Requests += day.Requests
		b.Total.Errors += day.Errors
		b.Total.Tokens += day.Tokens
		b.Total.Value.USD += day.Value.USD
	}
	title := "Key " + k.Prefix + "…"
	d.render(w, r, status, "key", pageData{Title: title, Nav: "keys", Flash: flashMsg, Error: errMsg, Body: b})
}

// keyHistory sums the key's requests per UTC day over the last keyDays
// days, newest first, from the request log.
func (d *Dashboard) keyHistory(userID, keyID string) ([]keyDay, bool, error) {
	since := keypolicy.DayStart(time.Now()).AddDate(0, 0, -(keyDays - 1))
	byDay := map[time.Time][]vault.LogRecord{}
	var before time.Time
	read, capped := 0, false
	for {
		recs, err := d.cfg.Vault.RecentRequests(userID, before, 1000, vault.StatusAll)
		if err != nil {
			return nil, false, err
		}
		done := len(recs) < 1000
		for _, rec := range recs {
			if rec.Time.Before(since) {
				done = true
				break
			}
			read++
			if rec.KeyID == keyID {
				day := keypolicy.DayStart(rec.Time)
				byDay[day] = append(byDay[day], rec)
			}
		}
		if done || len(recs) == 0 {
			break
		}
		if read >= keyDayRecords {
			capped = true
			break
		}
		before = recs[len(recs)-1].Time
	}
	var out []keyDay
	for day := keypolicy.DayStart(time.Now()); !day.Before(since); day = day.AddDate(0, 0, -1) {
		recs := byDay[day]
		if len(recs) == 0 {
			continue
		}
		kd := keyDay{Day: day, Value: d.prices.valueOf(recs, day)}
		for _, rec := range recs {
			kd.Requests++
			if rec.Status >= 400 || rec.ErrorCode != "" {
				kd.Errors++
			}
			kd.Tokens += rec.InputTokens + rec.OutputTokens
		}
		out = append(out, kd)
	}
	return out, capped, nil
}

// keyPolicySubmit saves the policy form. Every field is submitted; an
// empty one sets no limit.
func (d *Dashboard) keyPolicySubmit(w http.ResponseWriter, r *http.Request) {
	s := sessionOf(r)
	id := r.PostFormValue("id")
	k, err := d.cfg.Vault.GetKey(s.user.ID, id)
	if err != nil || k.Disabled {
		d.renderError(w, r, http.StatusNotFound, "Key not found", "This key does not exist, is revoked or is not yours.")
		return
	}
	form := map[string]string{}
	var p keypolicy.Policy
	now := time.Now()
	for _, name := range keypolicy.FieldNames {
		form[name] = r.PostFormValue(name)
	}
	// Over-long text is refused before it is parsed, and the form gets a
	// prefix of it back, not the whole post.
	for _, name := range keypolicy.FieldNames {
		if n := maxPolicyText(name); utf8.RuneCountInString(form[name]) > n {
			form[name] = quoteInput(form[name])
			d.showKey(w, r, http.StatusBadRequest, id, form, "", "Not saved: “"+policyLabels[name]+"” is too long (at most "+number(int64(n))+" characters).")
			return
		}
	}
	if _, ok := r.PostForm[keypolicy.FieldAccount]; !ok {
		form[keypolicy.FieldAccount] = k.Policy.Account // a form without the pin keeps it
	}
	for _, name := range keypolicy.FieldNames {
		if p, err = keypolicy.Set(p, name, form[name], now, resolveModel); err != nil {
			break
		}
	}
	if err == nil {
		err = p.Validate(now)
	}
	if err == nil && p.Account != "" && p.Account != k.Policy.Account {
		// As the CLI and the admin API: a new pin must name one of the
		// user's accounts. The current pin may stay after its account was
		// unlinked, so saving another field does not fail on it.
		err = d.checkPin(s.user.ID, p.Account)
	}
	if err == nil {
		_, err = d.cfg.Vault.UpdateKeyPolicy(s.user.ID, id, p)
	}
	switch {
	case errors.Is(err, keypolicy.ErrInvalid):
		d.showKey(w, r, http.StatusBadRequest, id, form, "", "Not saved: "+policyMessage(err))
		return
	case errors.Is(err, vault.ErrNoSuchAccount):
		d.showKey(w, r, http.StatusBadRequest, id, form, "", "Not saved: "+strings.TrimPrefix(err.Error(), "vault: ")+
			". Your linked accounts and their ids are on the ChatGPT page.")
		return
	case err != nil:
		d.log.Error("dashboard: saving a key policy failed", "user_id", s.user.ID, "key_id", id, "error", err)
		d.showKey(w, r, http.StatusInternalServerError, id, form, "", "The policy could not be saved. Try again.")
		return
	}
	d.log.Info("dashboard: key policy changed", "user_id", s.user.ID, "key_id", id)
	d.audit(r, vault.AuditKeyPolicy, vault.AuditTarget{KeyID: id}, policyChange(form))
	http.Redirect(w, r, d.url("keys/detail")+"?id="+url.QueryEscape(id)+"&msg=policy", http.StatusSeeOther)
}

// checkPin reports, wrapping vault.ErrNoSuchAccount, a pin to an account
// id the user does not have.
func (d *Dashboard) checkPin(userID, pin string) error {
	accts, err := d.cfg.Vault.Accounts(userID)
	if err != nil {
		return err
	}
	for _, a := range accts {
		if a.ID == pin {
			return nil
		}
	}
	return fmt.Errorf("%w: %q", vault.ErrNoSuchAccount, pin)
}

// keyResetSubmit resets the key's usage counters.
func (d *Dashboard) keyResetSubmit(w http.ResponseWriter, r *http.Request) {
	s := sessionOf(r)
	id := r.PostFormValue("id")
	err := d.cfg.Vault.ResetKeyUsage(s.user.ID, id)
	if errors.Is(err, vault.ErrNotFound) {
		d.renderError(w, r, http.StatusNotFound, "Key not found", "This key does not exist, is revoked or is not yours.")
		return
	}
	if err != nil {
		d.log.Error("dashboard: resetting key usage failed", "user_id", s.user.ID, "key_id", id, "error", err)
		d.showKey(w, r, http.StatusInternalServerError, id, nil, "", "The usage could not be reset. Try again.")
		return
	}
	d.log.Info("dashboard: key usage reset", "user_id", s.user.ID, "key_id", id)
	d.audit(r, vault.AuditKeyUsageReset, vault.AuditTarget{KeyID: id}, "")
	http.Redirect(w, r, d.url("keys/detail")+"?id="+url.QueryEscape(id)+"&msg=reset", http.StatusSeeOther)
}

// policyMessage is the text of a validation error without the package's
// prefix, and with the values it quotes cut to a prefix.
func policyMessage(err error) string {
	msg := err.Error()
	if p := keypolicy.ErrInvalid.Error() + ": "; len(msg) > len(p) && msg[:len(p)] == p {
		msg = msg[len(p):]
	}
	return clipQuoted(msg)
}

// policyLabels name the policy fields as the form does.
var policyLabels = map[string]string{
	keypolicy.FieldExpires:       "Expires",
	keypolicy.FieldModels:        "Models",
	keypolicy.FieldRPM:           "Requests per minute",
	keypolicy.FieldConcurrency:   "Requests at once",
	keypolicy.FieldTokensPerDay:  "Tokens per day",
	keypolicy.FieldTokensPerWeek: "Tokens per week",
	keypolicy.FieldMaxEffort:     "Highest reasoning effort",
	keypolicy.FieldAccount:       "Account pin",
	keypolicy.FieldImages:        "Images (allow or deny)",
	keypolicy.FieldServiceTier:   "Fast tier (allow, deny or force)",
}

// maxPolicyText is the longest text a policy field takes in the form: a
// list of models, or one short value (a number, a date, an RFC 3339 time,
// an effort or an account id, all well under it).
func maxPolicyText(field string) int {
	if field == keypolicy.FieldModels {
		return 2000
	}
	return maxQuoted
}

// resolveModel maps an allowlist name to its catalog name (aliases).
func resolveModel(name string) string {
	if r := translate.DefaultCatalog().Resolve(name); r.Known {
		return r.Upstream
	}
	return name
}
