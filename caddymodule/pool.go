package caddymodule

import (
	"context"
	"log/slog"
	"math"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"

	"github.com/usemysub/caddy-codex-proxy/codex"
	"github.com/usemysub/caddy-codex-proxy/metrics"
	"github.com/usemysub/caddy-codex-proxy/ratelimit"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// vaults shares one open vault per file across config reloads: during a
// reload the old and new configs live side by side, and bbolt allows one
// opener per file. The codex_proxy app (app.go) takes and releases them.
var vaults = caddy.NewUsagePool()

// pooledVault closes the vault when the last config using it is cleaned up.
type pooledVault struct {
	*vault.Vault
	path string     // its key in vaults
	live *liveVault // follows config reloads (vaultlive.go)
}

// Destruct implements caddy.Destructor.
func (p *pooledVault) Destruct() error {
	var err error
	if p.live != nil {
		err = p.live.close()
	} else {
		err = p.Vault.Close()
	}
	metrics.Vaults.Retire(p.Vault) // after Close: drops while closing count too
	return err
}

// refresher adapts the OAuth client to the vault's Refresher and counts
// each attempt by outcome. The counter is the package's, so refreshes the
// shared vault runs are counted whichever config is current.
type refresher struct {
	oauth *codex.OAuth
}

// Refresh exchanges a refresh token; codex.RefreshError tells the vault
// whether the failure is permanent.
func (r refresher) Refresh(ctx context.Context, refreshToken string) (vault.RefreshedTokens, error) {
	t, err := r.oauth.Refresh(ctx, refreshToken)
	metrics.CountRefresh(err)
	if err != nil {
		return vault.RefreshedTokens{}, err
	}
	return vault.RefreshedTokens{IDToken: t.IDToken, AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, ExpiresIn: t.ExpiresIn}, nil
}

// slogOf bridges a zap logger to the slog.Logger the vault and the
// dashboard log through, keeping each message's level and the logger's
// name. Stack traces stay off at ERROR, as in Caddy's own Slogger: these
// errors are operational, not bugs.
func slogOf(l *zap.Logger) *slog.Logger {
	return slog.New(zapslog.NewHandler(l.Core(), zapslog.WithName(l.Name()), zapslog.AddStacktraceAt(slog.Level(math.MaxInt8))))
}

// limiters holds the one set of rate-limit tables every codex_proxy
// handler shares, under limiterPoolKey, so counts survive a config reload
// (the new handlers load it before the old ones let go). It is dropped
// when the last handler is cleaned up: counts do not survive a restart.
var limiters = caddy.NewUsagePool()

const limiterPoolKey = "codex_proxy.limiter"

// pooledLimiter is the shared state: fixed-size tables, allocated once.
type pooledLimiter struct {
	api    *ratelimit.Table // failed API key attempts per client address
	signin *ratelimit.Table // the dashboard's sign-in link requests per address and per email
}

// Destruct implements caddy.Destructor; the tables are plain memory.
func (*pooledLimiter) Destruct() error { return nil }

// loadLimiter takes a hold on the shared tables, making them on first use.
func loadLimiter() (*pooledLimiter, error) {
	v, _, err := limiters.LoadOrNew(limiterPoolKey, func() (caddy.Destructor, error) {
		return &pooledLimiter{
			api:    ratelimit.New(ratelimit.Config{}),
			signin: ratelimit.New(ratelimit.Config{Capacity: 1 << 14}),
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*pooledLimiter), nil
}
