package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Stored responses (/v1/responses with store:true, the default). The
// ChatGPT backend keeps nothing (it requires store:false), so the proxy
// keeps, per user, what previous_response_id and item_reference need: each
// response's input items as the client's turn resolved to them and its
// output items (reasoning with encrypted_content, messages, function
// calls). Each record is one sealed blob (AES-GCM with the vault's keys,
// bound to the user and the response id, as token bundles are); the store
// sees the response id, its item ids, its times and its size in clear.

// Defaults for the response store's zero options.
const (
	DefaultResponseRetention = 30 * 24 * time.Hour
	// DefaultMaxResponseBytes caps one stored response (sealed).
	DefaultMaxResponseBytes = 8 << 20
	// DefaultMaxUserResponseBytes caps one user's stored responses; the
	// oldest are dropped first to make room.
	DefaultMaxUserResponseBytes = 256 << 20
)

// ErrNoResponseStore is what the response methods fail with when the
// vault's engine keeps no responses (it is not a ResponseStore).
var ErrNoResponseStore = errors.New("vault: this storage engine keeps no responses")

// ErrResponseTooLarge is what PutResponse fails with when one response is
// over Limits.MaxResponseBytes; it is not stored and counted as dropped.
var ErrResponseTooLarge = errors.New("vault: response too large to store")

// ResponseRecord is one stored response as the Store keeps it.
type ResponseRecord struct {
	// ID is the response id (resp_…), unique per user.
	ID     string
	UserID string
	// ItemIDs are the ids of its input and output items, for
	// item_reference; unique per user (a later response takes an id over).
	ItemIDs []string
	Created time.Time
	// Expires is when the retention drops it.
	Expires time.Time
	// Sealed holds the items, bound to the user and the response id.
	Sealed Sealed
}

// Size is what the record counts against the size caps.
func (r ResponseRecord) Size() int64 { return int64(len(r.Sealed.Ciphertext)) }

// ResponseLimits bound a user's stored responses; PutResponse applies them.
type ResponseLimits struct {
	// MaxUserBytes is the most a user's records may add up to (Size); the
	// oldest (by Created, then id) go first. Zero: no cap.
	MaxUserBytes int64
}

// ResponseStore is the optional part of a Store that keeps responses. Both
// engines in this module implement it.
type ResponseStore interface {
	// PutResponse stores rec (replacing one with its user and id) and its
	// item index, then drops the user's oldest records, never rec itself,
	// until they fit lim, all in one atomic write; it returns how many it
	// dropped. It fails with ErrNotFound if the user does not exist.
	PutResponse(ctx context.Context, rec ResponseRecord, lim ResponseLimits) (dropped int, err error)
	// GetResponse returns the user's record, or ErrNotFound (also for
	// another user's id).
	GetResponse(ctx context.Context, userID, id string) (ResponseRecord, error)
	// ResponseByItem returns the user's record holding the item itemID, or
	// ErrNotFound.
	ResponseByItem(ctx context.Context, userID, itemID string) (ResponseRecord, error)
	// DeleteResponse removes the user's record and its item index, or
	// fails with ErrNotFound.
	DeleteResponse(ctx context.Context, userID, id string) error
	// PurgeResponses deletes records whose Expires is not after now and,
	// unless createdUpTo is zero, those created at or before createdUpTo
	// (a retention shortened since they were stored); it returns how many.
	PurgeResponses(ctx context.Context, now, createdUpTo time.Time) (int, error)
	// ExportResponses returns every record, for a copy, in no order.
	ExportResponses(ctx context.Context) ([]ResponseRecord, error)
}

// StoredResponse is one response as the API reads and writes it.
type StoredResponse struct {
	// ID is the response id the client saw (resp_…).
	ID string
	// Input is the turn's whole input as sent upstream: the items of the
	// chain it continued, then its own, each with its id.
	Input []json.RawMessage
	// Response is the response object the client got, output included.
	Response json.RawMessage
	// Created is when it was stored.
	Created time.Time
	// TTL, when set and shorter than the retention, is how long it is
	// kept instead (a client socket's entry of its own, which nothing
	// needs past the socket's maximum age). Zero: the retention.
	TTL time.Duration
}

// responseBlob is what a record seals.
type responseBlob struct {
	Input    []json.RawMessage `json:"input"`
	Response json.RawMessage   `json:"response"`
}

// responseContext binds a sealed response to its user and id.
func responseContext(userID, id string) string { return "response\x00" + userID + "\x00" + id }

// responses is the engine's ResponseStore, or ErrNoResponseStore.
func (v *Vault) responses() (ResponseStore, error) {
	rs, ok := v.store.(ResponseStore)
	if !ok {
		return nil, ErrNoResponseStore
	}
	return rs, nil
}

// KeepsResponses reports whether the engine stores responses.
func (v *Vault) KeepsResponses() bool { _, err := v.responses(); return err == nil }

// PutResponse seals and stores one of the user's responses under r.ID,
// with itemIDs (of its input and output items) indexed for item_reference.
// A response over the per-item cap fails with ErrResponseTooLarge; older
// responses over the user's cap are dropped. Both count in
// DroppedResponses.
func (v *Vault) PutResponse(userID string, r StoredResponse, itemIDs []string) error {
	rs, err := v.responses()
	if err != nil {
		return err
	}
	if r.ID == "" {
		return errors.New("vault: a stored response needs an id")
	}
	pt, err := json.Marshal(responseBlob{Input: r.Input, Response: r.Response})
	if err != nil {
		return fmt.Errorf("vault: encoding a response: %w", err)
	}
	lim := v.limits.Load()
	if int64(len(pt)) > lim.MaxResponseBytes {
		v.responseDrops.Add(1)
		return fmt.Errorf("%w (%d bytes, the cap is %d)", ErrResponseTooLarge, len(pt), lim.MaxResponseBytes)
	}
	sealed, err := v.keyring.seal(pt, responseContext(userID, r.ID))
	if err != nil {
		return err
	}
	now := v.now().UTC()
	keep := lim.ResponseRetention
	if r.TTL > 0 && r.TTL < keep {
		keep = r.TTL
	}
	rec := ResponseRecord{ID: r.ID, UserID: userID, ItemIDs: itemIDs, Created: now,
		Expires: now.Add(keep), Sealed: sealed}
	n, err := rs.PutResponse(context.Background(), rec, ResponseLimits{MaxUserBytes: lim.MaxUserResponseBytes})
	if n > 0 {
		v.responseDrops.Add(uint64(n))
	}
	return err
}

// Response returns one of the user's stored responses; ErrNotFound for an
// unknown, expired or another user's id.
func (v *Vault) Response(userID, id string) (StoredResponse, error) {
	rs, err := v.responses()
	if err != nil {
		return StoredResponse{}, err
	}
	rec, err := rs.GetResponse(context.Background(), userID, id)
	if err != nil {
		return StoredResponse{}, err
	}
	return v.openResponse(rec)
}

// ResponseByItem returns the user's stored response holding the item
// itemID (an rs_, fc_, msg_ … id, the client's own included); ErrNotFound
// if none does.
func (v *Vault) ResponseByItem(userID, itemID string) (StoredResponse, error) {
	rs, err := v.responses()
	if err != nil {
		return StoredResponse{}, err
	}
	rec, err := rs.ResponseByItem(context.Background(), userID, itemID)
	if err != nil {
		return StoredResponse{}, err
	}
	return v.openResponse(rec)
}

// DeleteResponse forgets one of the user's stored responses; ErrNotFound
// if there is none.
func (v *Vault) DeleteResponse(userID, id string) error {
	rs, err := v.responses()
	if err != nil {
		return err
	}
	return rs.DeleteResponse(context.Background(), userID, id)
}

// DroppedResponses is how many responses were not kept or were dropped
// for the size caps since the vault opened, as a plain counter.
func (v *Vault) DroppedResponses() uint64 { return v.responseDrops.Load() }

// openResponse decrypts a record; an expired one is not found (the purge
// may not have run yet), nor one older than the retention in force, which
// a reload may have shortened since it was stored.
func (v *Vault) openResponse(rec ResponseRecord) (StoredResponse, error) {
	now := v.now()
	if !now.Before(rec.Expires) || !now.Before(rec.Created.Add(v.limits.Load().ResponseRetention)) {
		return StoredResponse{}, ErrNotFound
	}
	pt, err := v.keyring.open(rec.Sealed, responseContext(rec.UserID, rec.ID))
	if err != nil {
		return StoredResponse{}, err
	}
	var b responseBlob
	if err := json.Unmarshal(pt, &b); err != nil {
		return StoredResponse{}, fmt.Errorf("vault: stored response %s: %w", rec.ID, err)
	}
	return StoredResponse{ID: rec.ID, Input: b.Input, Response: b.Response, Created: rec.Created}, nil
}

// purgeResponses deletes expired responses, and once after the vault
// opened or the retention was shortened, those older than the retention
// in force: they were stored with an expiry of their own, which a shorter
// retention overrides. The other purges go by the expiry alone (an index
// on PostgreSQL).
func (v *Vault) purgeResponses() (int, error) {
	rs, err := v.responses()
	if err != nil {
		return 0, nil
	}
	now := v.now()
	var upTo time.Time
	cut := v.responseCut.Swap(false)
	if cut {
		upTo = now.Add(-v.limits.Load().ResponseRetention)
	}
	n, err := rs.PurgeResponses(context.Background(), now, upTo)
	if err != nil && cut {
		v.responseCut.Store(true) // the next purge tries again
	}
	return n, err
}
