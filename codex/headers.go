package codex

import (
	"errors"
	"net/http"
	"sync"
)

// The headers every upstream request of one account carries (the bearer
// token, the account id, the client's identity, the relay token) are the
// same from one turn to the next until the token is refreshed: they are
// built, and the token checked, once per account and token instead of once
// per request (docs/performance.md).

// maxHeaderSets bounds the cache: past it, it starts again empty (a set is
// cheap to rebuild; the bound only keeps accounts long gone from piling
// up).
const maxHeaderSets = 4096

// errHeaderValue refuses a token or account id a header cannot carry. It
// never includes the value.
var errHeaderValue = errors.New("codex: token or account id contains characters not allowed in a header")

// headerSet is one account's shared headers, for one token.
type headerSet struct {
	token string
	h     http.Header
}

// headerCache maps an account id to its headerSet. The zero value is
// empty and ready.
type headerCache struct {
	mu   sync.RWMutex
	sets map[string]*headerSet
}

// accountHeaders returns the shared headers of a request with token on
// accountID. The result is shared: callers copy it (addHeaders) and never
// change it or its value slices.
func (c *Client) accountHeaders(token, accountID string) (http.Header, error) {
	hc := &c.headers
	hc.mu.RLock()
	s := hc.sets[accountID]
	hc.mu.RUnlock()
	if s != nil && s.token == token {
		return s.h, nil
	}
	if !validHeaderValue(token) || !validHeaderValue(accountID) {
		return nil, errHeaderValue
	}
	h := make(http.Header, 6)
	h.Set("Authorization", "Bearer "+token)
	if accountID != "" {
		h.Set("ChatGPT-Account-ID", accountID)
	}
	h.Set("originator", c.originator)
	h.Set("User-Agent", c.userAgent)
	h.Set("version", c.version)
	if c.relay {
		h.Set(RelayTokenHeader, c.relayToken)
	}
	hc.mu.Lock()
	if hc.sets == nil || len(hc.sets) >= maxHeaderSets {
		hc.sets = make(map[string]*headerSet)
	}
	hc.sets[accountID] = &headerSet{token: token, h: h}
	hc.mu.Unlock()
	return h, nil
}

// newHeader is a request's header map holding shared (from
// accountHeaders), with room for extra more keys. The value slices are
// shared, not copied: each holds one value at full capacity, so an Add
// reallocates rather than writes into them, and Set and Del replace or
// drop the map entry only.
func newHeader(shared http.Header, extra int) http.Header {
	h := make(http.Header, len(shared)+extra)
	for k, v := range shared {
		h[k] = v
	}
	return h
}
