package dashboard

import (
	"context"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// signupInForce is the sign-up policy that decides now, and where it
// comes from.
type signupInForce struct {
	SignupPolicy
	// Override is the operator's, from the vault, when one is set: it
	// applies instead of Config.Signup on every instance sharing the
	// vault. Nil: the config's applies.
	Override *vault.SignupOverride
	// Unknown: the override could not be read and none was read before,
	// so sign-up is closed until it can be (existing users still sign in).
	Unknown bool
}

// signupPolicy is the policy in force: an override set from the admin
// pages, the CLI or the admin API (vault.SignupOverride: read at most
// every few seconds, so another instance's change applies within
// vault.Options.SettingsTTL), else Config.Signup. A failed read is logged
// and decided by the last override read, or, if there was none, closed:
// an admin who closed sign-up is not overruled by a database hiccup.
func (d *Dashboard) signupPolicy(ctx context.Context) signupInForce {
	o, ok, err := d.cfg.Vault.SignupOverride(ctx)
	if err != nil {
		d.log.Error("dashboard: reading the sign-up policy failed", "error", err)
		if !ok {
			return signupInForce{SignupPolicy: SignupPolicy{Mode: SignupClosed}, Unknown: true}
		}
	}
	if ok {
		return signupInForce{SignupPolicy: o.SignupPolicy, Override: &o}
	}
	return signupInForce{SignupPolicy: d.cfg.Signup}
}
