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
}

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
