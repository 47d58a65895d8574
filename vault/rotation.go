package vault

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Reconfiguring an open vault as a whole: a long-running owner (the Caddy
// app, across config reloads) hands over the settings of the config in
// force; the vault applies what changed, refuses a key list that would
// strand stored tokens, and re-encrypts old bundles in the background so
// that an older key can be dropped by the next reload.

// Settings are the settings an owner may change on an open vault without
// closing it. Errors about them name the settings as the Caddyfile does
// (encryption_key, api_key_pepper), since an operator reads them.
type Settings struct {
	// EncryptionKeys as in Options: the first seals, all open.
	EncryptionKeys []string
	// Pepper as in Options; a change invalidates every API key.
	Pepper string
	// LogRetention as in Options (<= 0: DefaultLogRetention).
	LogRetention time.Duration
	// Limits as in Options (zero fields: the defaults).
	Limits Limits
}

// Options are the Options that open a vault with s, the other fields
// zero (their defaults) for the caller to fill in.
func (s Settings) Options() Options {
	return Options{EncryptionKeys: slices.Clone(s.EncryptionKeys), Pepper: s.Pepper, LogRetention: s.LogRetention, Limits: s.Limits}
}

// reencryptedMsg is logged (INFO) when every token bundle is sealed
// with the first encryption key, so the others can be removed. The error
// refusing a key removal quotes it, telling the operator what to wait for.
const reencryptedMsg = "token bundles re-encrypted with the first encryption_key; the others can be removed"

// rotation is the vault's reconfiguration state.
type rotation struct {
	mu      sync.Mutex // serialises Reconfigure, Restore and CheckKeyRemoval
	applied Settings   // as given, not normalised: changes are logged against it

	quit chan struct{} // closed when Close begins: a waiting pass gives up

	reMu      sync.Mutex
	reRunning bool
	reAgain   bool
	reWG      sync.WaitGroup
}

// Settings returns the settings in force: those of Options, or of the
// last successful Reconfigure or Restore.
func (v *Vault) Settings() Settings {
	v.rot.mu.Lock()
	defer v.rot.mu.Unlock()
	s := v.rot.applied
	s.EncryptionKeys = slices.Clone(s.EncryptionKeys)
	return s
}

// Reconfigure makes s the settings the vault runs with, logging each
// change. It refuses (changing nothing) keys that are invalid or that
// leave out a key still sealing a stored bundle; that error wraps
// ErrKeyStillInUse. With more than one key, the bundles not sealed with
// the first are re-encrypted in the background, off the request path.
func (v *Vault) Reconfigure(s Settings) error {
	v.rot.mu.Lock()
	defer v.rot.mu.Unlock()
	return v.apply(s, false)
}

// Restore is Reconfigure for a rollback to settings that were in force
// before (a newer config stopped before the one it replaced): the keys in
// force stay listed after s's, so no bundle they seal is lost, and
// re-encryption moves the bundles back to s's first key.
func (v *Vault) Restore(s Settings) error {
	v.rot.mu.Lock()
	defer v.rot.mu.Unlock()
	return v.apply(s, true)
}

// apply changes the vault to s; v.rot.mu is held.
func (v *Vault) apply(s Settings, keepKeys bool) error {
	if err := CheckKeys(s.EncryptionKeys); err != nil {
		return fmt.Errorf("encryption_key: %v", err)
	}
	if err := CheckPepper(s.Pepper); err != nil {
		return fmt.Errorf("api_key_pepper: %v", err)
	}
	if err := s.Limits.Validate(); err != nil {
		return err
	}
	cur := v.rot.applied
	if keepKeys {
		for _, k := range cur.EncryptionKeys {
			if !slices.Contains(s.EncryptionKeys, k) {
				s.EncryptionKeys = append(slices.Clip(s.EncryptionKeys), k)
			}
		}
	}
	if !slices.Equal(s.EncryptionKeys, cur.EncryptionKeys) {
		if err := v.SetEncryptionKeys(s.EncryptionKeys); err != nil {
			var inUse *KeyInUseError
			if errors.As(err, &inUse) {
				return keysInUseError(cur.EncryptionKeys, inUse)
			}
			return fmt.Errorf("encryption_key: %v", err)
		}
		id, _ := KeyID(s.EncryptionKeys[0])
		v.logInfo("encryption keys changed; new token bundles are sealed with the first one",
			"first_key_id", id, "keys", len(s.EncryptionKeys))
	}
	if s.Pepper != cur.Pepper {
		_ = v.SetPepper(s.Pepper) // checked above
		v.logWarn("api_key_pepper changed: every API key created before no longer works; issue new keys")
	}
	if s.LogRetention != cur.LogRetention {
		v.SetLogRetention(s.LogRetention)
		v.logInfo("log_retention changed", "log_retention", s.LogRetention)
	}
	if s.Limits.AuditRetention != cur.Limits.AuditRetention {
		v.SetAuditRetention(s.Limits.AuditRetention)
		v.logInfo("audit_retention changed", "audit_retention", v.AuditRetention())
	}
	if s.Limits != cur.Limits {
		l := s.Limits.withDefaults()
		if l.ResponseRetention < v.limits.Load().ResponseRetention {
			v.responseCut.Store(true)
		}
		v.limits.Store(&l)
		v.logInfo("storage limits changed", "response_retention", l.ResponseRetention,
			"max_response_size", l.MaxResponseBytes, "max_user_response_size", l.MaxUserResponseBytes)
	}
	s.EncryptionKeys = slices.Clone(s.EncryptionKeys)
	v.rot.applied = s
	if len(s.EncryptionKeys) > 1 {
		// A rotation in progress: re-seal what an older key still holds,
		// so the older key can be dropped next.
		v.reencrypt()
	}
	return nil
}

// CheckKeyRemoval reports, without changing anything, whether the vault
// could switch to the key list next: no key in force that next leaves out
// may still seal a stored bundle (of any instance) or be what another live
// instance seals with. An owner calls it before committing to a new
// config, so that a reload fails before anything starts.
func (v *Vault) CheckKeyRemoval(next []string) error {
	v.rot.mu.Lock()
	defer v.rot.mu.Unlock()
	var keep []aeadKey
	for _, k := range next {
		if ks, err := parseKeys([]string{k}); err == nil {
			keep = append(keep, ks...)
		}
	}
	inUse, err := v.keysInUse(keep)
	if err != nil {
		return err
	}
	if inUse == nil {
		return nil
	}
	return keysInUseError(v.rot.applied.EncryptionKeys, inUse)
}

// keysInUseError explains a refused key removal, naming keys by their
// place in the running config and their id, never their value.
func keysInUseError(running []string, e *KeyInUseError) error {
	var parts []string
	for i, k := range running {
		id, _ := KeyID(k)
		if n, ok := e.Bundles[id]; ok {
			parts = append(parts, fmt.Sprintf("encryption_key #%d of the running config (id %s) still encrypts %d linked ChatGPT account(s)", i+1, id, n))
		}
		if names, ok := e.Instances[id]; ok {
			parts = append(parts, fmt.Sprintf("encryption_key #%d of the running config (id %s) is still what instance(s) %s seal new logins with: reload them with the new key listed first", i+1, id, strings.Join(names, ", ")))
		}
	}
	return fmt.Errorf("%w: %s; list the new key first and keep this one after it until Caddy logs %q, then remove it; the running config is unchanged",
		ErrKeyStillInUse, strings.Join(parts, "; "), reencryptedMsg)
}

// reencrypt runs ReencryptAll in the background, once more if asked again
// meanwhile. Requests do not wait for it: tokens are served from memory
// and a re-seal is one short write transaction. Close waits for it.
func (v *Vault) reencrypt() {
	r := &v.rot
	r.reMu.Lock()
	defer r.reMu.Unlock()
	if r.reRunning {
		r.reAgain = true
		return
	}
	r.reRunning = true
	r.reWG.Add(1)
	go func() {
		defer r.reWG.Done()
		for {
			if !v.awaitPrimary() {
				r.reMu.Lock()
				r.reRunning, r.reAgain = false, false
				r.reMu.Unlock()
				return
			}
			n, err := v.ReencryptAll()
			switch {
			case errors.Is(err, ErrClosed):
			case err != nil:
				v.logError("re-encrypting token bundles with the first encryption_key failed; keep the other keys configured", "error", err)
			default:
				v.logInfo(reencryptedMsg, "reencrypted", n)
			}
			r.reMu.Lock()
			if !r.reAgain || errors.Is(err, ErrClosed) {
				r.reRunning = false
				r.reMu.Unlock()
				return
			}
			r.reAgain = false
			r.reMu.Unlock()
		}
	}()
}

// awaitPrimary waits until this instance seals with its first key, which
// on a cluster is once every live instance holds it: re-encrypting before
// would leave the others unable to open what they refresh. It logs (INFO)
// what it waits for, and reports false if the vault closed meanwhile.
func (v *Vault) awaitPrimary() bool {
	logged := ""
	for {
		primary := v.keyring.primaryID()
		if v.keyring.sealID() == primary {
			return true
		}
		missing := v.peersWithout(primary)
		if what := primary + fmt.Sprint(missing); what != logged {
			logged = what
			v.logInfo("re-encryption to the first encryption_key waits until every live instance holds it; reload the others with it listed",
				"first_key_id", primary, "instances_without_it", strings.Join(missing, ", "))
		}
		select {
		case <-v.rot.quit:
			return false
		case <-time.After(v.opts.InstanceHeartbeat):
		}
	}
}
