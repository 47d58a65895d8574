package api

import (
	"errors"
	"sync"
	"time"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// A response is stored after its terminal event has gone to the client, by
// a goroutine of its own, so the stream never waits on the vault. A client
// may name it at once — the next response.create on the same socket, or a
// POST with previous_response_id right after the stream ended — so the
// Handler reads the store through pendingStore: a read of a user's
// responses first waits (briefly) for that user's writes still in flight
// on this instance.
//
// Across a cluster, another instance knows nothing of this instance's
// writes in flight: a lookup there that misses tries once more after
// clusterGrace, which covers a write that takes less (one sealed row in
// PostgreSQL takes milliseconds). A write slower than that, or one that
// failed, is a 404 previous_response_not_found, as a response that was
// never stored.

// Bounds of the waits for writes in flight.
const (
	// pendingWait bounds how long a read waits for this instance's writes.
	pendingWait = 5 * time.Second
	// clusterGrace is how long a missed lookup waits before its one retry,
	// for a write in flight on another instance.
	clusterGrace = 250 * time.Millisecond
)

// pendingStore is the Handler's Responses: the configured store, with the
// writes in flight per user. Its zero value is not usable; make one with
// newPendingStore.
type pendingStore struct {
	Responses
	mu    sync.Mutex
	users map[string]*userWrites
	// writes are all writes in flight, for Shutdown.
	writes sync.WaitGroup
	// grace is clusterGrace; tests may shorten it.
	grace time.Duration
}

// userWrites is one user's writes in flight; done closes when the last ends.
type userWrites struct {
	n    int
	done chan struct{}
}

func newPendingStore(r Responses) *pendingStore {
	return &pendingStore{Responses: r, users: make(map[string]*userWrites), grace: clusterGrace}
}

// begin registers a write for userID that is about to start; the write
// calls the returned end once it has finished, stored or not.
func (p *pendingStore) begin(userID string) (end func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	u := p.users[userID]
	if u == nil {
		u = &userWrites{done: make(chan struct{})}
		p.users[userID] = u
	}
	u.n++
	p.writes.Add(1)
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			if u.n--; u.n == 0 {
				close(u.done)
				delete(p.users, userID)
			}
			p.mu.Unlock()
			p.writes.Done()
		})
	}
}

// settle waits until userID has no write in flight, at most pendingWait.
func (p *pendingStore) settle(userID string) {
	p.mu.Lock()
	u := p.users[userID]
	p.mu.Unlock()
	if u == nil {
		return
	}
	t := time.NewTimer(pendingWait)
	defer t.Stop()
	select {
	case <-u.done:
	case <-t.C:
	}
}

// Response is the stored response id of userID, once this instance's
// writes for the user have landed; a miss is retried once after the
// cluster's grace.
func (p *pendingStore) Response(userID, id string) (vault.StoredResponse, error) {
	return p.read(userID, func() (vault.StoredResponse, error) { return p.Responses.Response(userID, id) })
}

// ResponseByItem is Response for the response holding an item.
func (p *pendingStore) ResponseByItem(userID, itemID string) (vault.StoredResponse, error) {
	return p.read(userID, func() (vault.StoredResponse, error) { return p.Responses.ResponseByItem(userID, itemID) })
}

// read runs a lookup of userID's once their writes here have landed, and
// once more after the cluster's grace if it misses.
func (p *pendingStore) read(userID string, lookup func() (vault.StoredResponse, error)) (vault.StoredResponse, error) {
	p.settle(userID)
	r, err := lookup()
	if errors.Is(err, vault.ErrNotFound) {
		time.Sleep(p.grace)
		r, err = lookup()
	}
	return r, err
}

// DeleteResponse deletes once the user's writes have landed, so a write in
// flight does not bring the response back.
func (p *pendingStore) DeleteResponse(userID, id string) error {
	p.settle(userID)
	return p.Responses.DeleteResponse(userID, id)
}
