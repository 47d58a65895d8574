package api

import (
	"net/http"
	"time"

	"github.com/usemysub/caddy-codex-proxy/apierror"
	"github.com/usemysub/caddy-codex-proxy/keypolicy"
	"github.com/usemysub/caddy-codex-proxy/translate"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// request is what one API call carries through the stages: who sent it
// and what it became. How it ended is not here but in the outcome each
// endpoint returns, so its status is decided in one place.
type request struct {
	id    string
	route string
	start time.Time
	user  vault.User
	key   vault.Key
	// hold is the generation's place under the key's limits (nil for
	// other endpoints): its slot and its token reservation.
	hold *keypolicy.Hold
	// mapped is the translated generation (nil for other endpoints).
	mapped *translate.Mapped
	// turn is what a /v1/responses request resolved to, kept for storing
	// its response (nil: nothing to store).
	turn *turn
	// account is the linked ChatGPT account that served the request;
	// failoverFrom the ones tried before it that were at their limit.
	account      string
	failoverFrom []string
	// link is the upstream socket of the client socket a turn came on
	// (nil: the request goes upstream over HTTP).
	link *upstreamLink
	// chain is the last response of the client socket a turn came on
	// (nil: not a socket's turn).
	chain *socketChain
}

// outcome is how a request ended: the status the client got (or
// relay.ClientGone), the error it got if any, and what the upstream said
// of the generation.
type outcome struct {
	status int
	err    *apierror.Error
	result translate.StreamResult
	ttfb   time.Duration
	// sent is true once the generation reached the upstream, which bills
	// its prompt whatever happens next: without the upstream's usage, the
	// record charges an estimate.
	sent bool
}

// reject answers e as the whole response, with Retry-After when retry is
// positive, and returns the outcome it makes. Only before any byte of a
// response was written.
func (h *Handler) reject(w http.ResponseWriter, e *apierror.Error, retry time.Duration) outcome {
	apierror.SetRetryAfter(w.Header(), retry)
	apierror.Write(w, e) // in the request's dialect: see dialectWriter
	return outcome{status: e.Status, err: e}
}
