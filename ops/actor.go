package ops

import "context"

// Actor is who asked for an operation: the operator behind the CLI or the
// admin API, or a dashboard admin. Front ends put it on the context of
// every [Service] call with [WithActor], so the use cases (and the audit
// log) can tell an admin acting in the browser from the operator on the
// server. The zero value is "the operator", as for calls made before
// actors existed.
type Actor struct {
	// UserID and Email name a dashboard admin; both empty for the operator.
	UserID string `json:"user_id,omitempty"`
	Email  string `json:"email,omitempty"`
	// Via is how the operator reached the vault: ViaCLI (the CLI on the
	// vault file) or ViaAdminAPI; empty for a dashboard admin, and for an
	// operator it counts as the CLI.
	Via string `json:"via,omitempty"`
	// OSUser is the operator's operating-system user: the CLI's own, or
	// what an admin API caller said it was (OperatorHeader).
	OSUser string `json:"os_user,omitempty"`
	// CLI is set on an admin API call that the CLI made (ClientHeader).
	CLI bool `json:"cli,omitempty"`
	// Source is the address the request came from: the browser's for a
	// dashboard admin, the admin API caller's; empty for the CLI.
	Source string `json:"source,omitempty"`
}

// Values of Actor.Via.
const (
	ViaCLI      = "cli"
	ViaAdminAPI = "admin-api"
)

// ClientHeader says which program calls the admin API: [Remote] sends
// ClientCLI, so the audit log tells the CLI through a running Caddy from
// other callers (a claim, as OperatorHeader is).
const (
	ClientHeader = "X-Codex-Proxy-Client"
	ClientCLI    = "codex-proxy-cli"
)

// OperatorHeader carries the operator's OS user from [Remote] to the admin
// API, which records it as the caller's claim (Caddy's admin endpoint
// authenticates no one: whoever reaches it is the operator).
const OperatorHeader = "X-Codex-Proxy-Operator"

type actorKey struct{}

// WithActor returns ctx carrying a as the actor of the operations called
// with it.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorOf returns the actor ctx carries; ok is false when none was set
// (the operator, on the CLI or the admin API).
func ActorOf(ctx context.Context) (a Actor, ok bool) {
	a, ok = ctx.Value(actorKey{}).(Actor)
	return a, ok
}
