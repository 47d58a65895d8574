package api

import (
	"crypto/rand"
	"errors"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// Connection-scoped chains (docs/protocol.md#socket-chain). On a WebSocket
// the backend keeps the connection's last response even with store:false,
// and the Codex CLI relies on it: it chains its first turn to its
// generate:false prewarm and every later turn to the one before, all with
// store:false. The proxy does the same: a client socket remembers the id
// of its last completed response, and a store:false response is kept in
// the response store under a key of the socket's own (scopedKey), which no
// response id a client is given can name: GET /v1/responses/{id}, another
// socket and a later previous_response_id over HTTP do not find it. The
// entry is deleted when the next response on the socket replaces it and
// when the socket closes, so a socket keeps at most one, and at rest holds
// only two short strings in memory.

// scopedPrefix starts every connection-scoped key and no response id.
const scopedPrefix = "socket:"

// isScoped reports whether id is a connection-scoped key: a client naming
// one is answered as if it did not exist.
func isScoped(id string) bool { return strings.HasPrefix(id, scopedPrefix) }

// socketChain is a client socket's last response. The zero value is not
// usable; make one with newSocketChain.
type socketChain struct {
	id string // the socket's own, random, part of its keys

	mu sync.Mutex
	// last is the id the client saw of the socket's last completed
	// response ("" before one); key is where its store:false entry is
	// kept ("" when it was stored for good, or not at all).
	last, key string
	closed    bool
}

func newSocketChain() *socketChain { return &socketChain{id: rand.Text()} }

// scopedKey is the store key of the socket's store:false response id.
func (c *socketChain) scopedKey(id string) string { return scopedPrefix + c.id + ":" + id }

// keyFor is the key to look previous (a previous_response_id) up by: the
// socket's scoped key when it names the socket's last response and that
// was kept for the socket only, else previous itself (a stored response,
// or an id the lookup will not find).
func (c *socketChain) keyFor(previous string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if previous == c.last && c.key != "" {
		return c.key
	}
	return previous
}

// advance makes id the socket's last response, kept under key ("" when
// not kept for the socket only). It returns the scoped entry that is no
// longer needed, to be deleted: the previous one, or key itself when the
// socket closed meanwhile.
func (c *socketChain) advance(id, key string) (stale string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return key
	}
	stale = c.key
	if stale == key {
		stale = ""
	}
	c.last, c.key = id, key
	return stale
}

// close ends the chain; it returns the scoped entry to delete, if any.
func (c *socketChain) close() (stale string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	stale, c.last, c.key = c.key, "", ""
	return stale
}

// endChain deletes the socket's scoped entry once it closed. A write still
// in flight deletes its own entry when it lands (advance).
func (h *Handler) endChain(userID string, c *socketChain) {
	if stale := c.close(); stale != "" && h.store != nil {
		h.dropScoped(userID, stale)
	}
}

// dropScoped deletes a scoped entry, straight from the store: the caller
// is, or follows, the write that made it stale.
func (h *Handler) dropScoped(userID, key string) {
	if err := h.store.Responses.DeleteResponse(userID, key); err != nil && !errors.Is(err, vault.ErrNotFound) {
		// Unreachable by any id a client holds; the retention drops it.
		h.log.Warn("deleting a socket's response failed", zap.String("user_id", userID), zap.Error(err))
	}
}
