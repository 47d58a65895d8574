package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Operator settings: small named values an operator sets at run time
// (from the admin pages, the CLI or the admin API) that every instance
// sharing the store applies, overriding what the config says, without a
// restart or a reload. One today: the sign-up policy.
//
// Instances do not announce a setting's change to each other: each
// re-reads it at most every Options.SettingsTTL (default 5 s), so a
// change made on one instance is in force on all within that, and at once
// on the instance that made it. The settings are read where they decide
// (a sign-in of an unknown address, the sign-in pages), never on the /v1
// hot path.

// DefaultSettingsTTL is how long a Vault trusts its copy of a setting.
const DefaultSettingsTTL = 5 * time.Second

// ErrNoSettingStore is what the setting methods fail with when the vault's
// engine keeps no settings (it is not a SettingStore).
var ErrNoSettingStore = errors.New("vault: this storage engine keeps no settings")

// SettingStore is the optional part of a Store that keeps operator
// settings, each a small opaque value (the Vault's JSON) under a name.
// Both engines in this module implement it; vault backup and migrate copy
// the settings with the rest.
type SettingStore interface {
	// GetSetting returns the value stored under name, or ErrNotFound.
	GetSetting(ctx context.Context, name string) ([]byte, error)
	// PutSetting stores value under name, replacing what was there.
	PutSetting(ctx context.Context, name string, value []byte) error
	// DeleteSetting removes name; none stored is not an error.
	DeleteSetting(ctx context.Context, name string) error
	// ExportSettings returns every setting by name, for a copy.
	ExportSettings(ctx context.Context) (map[string][]byte, error)
}

// Setting names.
const settingSignup = "signup"

// SignupOverride is the sign-up policy an operator set, and who and when.
type SignupOverride struct {
	SignupPolicy
	// Set is when it was set.
	Set time.Time `json:"set"`
	// By says who set it, for people: an admin's email, or the operator
	// on the server ("cli (alice)", "admin API"); empty if unknown.
	By string `json:"by,omitempty"`
}

// settingCache is a Vault's copy of the sign-up override.
type settingCache struct {
	mu   sync.Mutex
	read time.Time // when the store was last read (monotonic); zero: never
	val  *SignupOverride
}

// settings is the engine's SettingStore, or ErrNoSettingStore.
func (v *Vault) settings() (SettingStore, error) {
	ss, ok := v.store.(SettingStore)
	if !ok {
		return nil, ErrNoSettingStore
	}
	return ss, nil
}

// SignupOverride returns the sign-up policy an operator set for every
// instance; ok is false when none is set (the config's applies). It reads
// the store at most once per Options.SettingsTTL. When that read fails the
// error is returned with the last value read, if there was one, so a
// caller that must decide can keep deciding as before (and log the
// error); an engine without settings has no override (ok false, no error).
func (v *Vault) SignupOverride(ctx context.Context) (o SignupOverride, ok bool, err error) {
	ss, err := v.settings()
	if err != nil {
		return SignupOverride{}, false, nil
	}
	c := &v.signup
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.read.IsZero() && v.opts.SettingsTTL > 0 && time.Since(c.read) < v.opts.SettingsTTL {
		return c.current()
	}
	raw, err := ss.GetSetting(ctx, settingSignup)
	switch {
	case errors.Is(err, ErrNotFound):
		c.read, c.val = time.Now(), nil
	case err != nil:
		o, ok, _ := c.current()
		return o, ok, fmt.Errorf("vault: reading the sign-up policy: %w", err)
	default:
		var rec SignupOverride
		if err := json.Unmarshal(raw, &rec); err != nil {
			o, ok, _ := c.current()
			return o, ok, fmt.Errorf("vault: the stored sign-up policy is unreadable: %w", err)
		}
		c.read, c.val = time.Now(), &rec
	}
	return c.current()
}

// current is the cached value; c.mu is held.
func (c *settingCache) current() (SignupOverride, bool, error) {
	if c.val == nil {
		return SignupOverride{}, false, nil
	}
	o := *c.val
	o.Domains = append([]string(nil), o.Domains...)
	return o, true, nil
}

// SetSignupOverride stores o (validated, then normalised) as the sign-up
// policy of every instance; Set defaults to now. It is in force here at
// once and on the other instances within Options.SettingsTTL.
func (v *Vault) SetSignupOverride(ctx context.Context, o SignupOverride) (SignupOverride, error) {
	if err := o.Validate(); err != nil {
		return SignupOverride{}, err
	}
	ss, err := v.settings()
	if err != nil {
		return SignupOverride{}, err
	}
	o.SignupPolicy = o.Normalized()
	if o.Set.IsZero() {
		o.Set = v.opts.Now()
	}
	o.Set = o.Set.UTC()
	raw, err := json.Marshal(o)
	if err != nil {
		return SignupOverride{}, err
	}
	c := &v.signup
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := ss.PutSetting(ctx, settingSignup, raw); err != nil {
		return SignupOverride{}, err
	}
	c.read, c.val = time.Now(), &o
	o, _, _ = c.current()
	return o, nil
}

// ClearSignupOverride removes the override, so the config's policy applies
// again (here at once, elsewhere within Options.SettingsTTL). Clearing
// none is not an error.
func (v *Vault) ClearSignupOverride(ctx context.Context) error {
	ss, err := v.settings()
	if err != nil {
		return err
	}
	c := &v.signup
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := ss.DeleteSetting(ctx, settingSignup); err != nil {
		return err
	}
	c.read, c.val = time.Now(), nil
	return nil
}
