package storetest

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// response is a record of size bytes of ciphertext with the given items.
func response(userID, id string, created time.Time, size int, items ...string) vault.ResponseRecord {
	return vault.ResponseRecord{ID: id, UserID: userID, ItemIDs: items, Created: created, Expires: created.Add(30 * day),
		Sealed: vault.Sealed{KeyID: "0a1b2c3d", Nonce: []byte("twelve-bytes"), Ciphertext: []byte(strings.Repeat("x", size))}}
}

// responses asserts s keeps responses (both engines here do).
func responses(t *testing.T, s vault.Store) vault.ResponseStore {
	t.Helper()
	rs, ok := s.(vault.ResponseStore)
	if !ok {
		t.Skipf("%T does not implement the optional vault.ResponseStore", s)
	}
	return rs
}

// testResponses: round trip, scoped to the user, found by item, deleted
// alone and with the user.
func testResponses(t *testing.T, h *harness) {
	s := h.store()
	rs := responses(t, s)
	mustUser(t, s, "u-a", "a@example.com")
	mustUser(t, s, "u-b", "b@example.com")
	_, err := rs.PutResponse(ctx, response("nobody", "resp_0", t0, 1), vault.ResponseLimits{})
	wantErr(t, "PutResponse for an unknown user", err, vault.ErrNotFound)

	r1 := response("u-a", "resp_1", t0, 10, "msg_in", "rs_1", "fc_1")
	if _, err := rs.PutResponse(ctx, r1, vault.ResponseLimits{}); err != nil {
		t.Fatal(err)
	}
	got, err := rs.GetResponse(ctx, "u-a", "resp_1")
	must(t, err)
	if got.ID != r1.ID || got.UserID != "u-a" || !got.Created.Equal(t0) || !got.Expires.Equal(r1.Expires) ||
		!bytes.Equal(got.Sealed.Ciphertext, r1.Sealed.Ciphertext) || !bytes.Equal(got.Sealed.Nonce, r1.Sealed.Nonce) ||
		got.Sealed.KeyID != r1.Sealed.KeyID || len(got.ItemIDs) != 3 {
		t.Fatalf("GetResponse = %+v, want %+v", got, r1)
	}
	_, err = rs.GetResponse(ctx, "u-b", "resp_1")
	wantErr(t, "another user's response", err, vault.ErrNotFound)
	byItem, err := rs.ResponseByItem(ctx, "u-a", "fc_1")
	must(t, err)
	same(t, "response of fc_1", byItem.ID, "resp_1")
	_, err = rs.ResponseByItem(ctx, "u-b", "fc_1")
	wantErr(t, "another user's item", err, vault.ErrNotFound)

	// A later response holding the same item (the chain replayed) takes
	// the item over; deleting it leaves the first one whole.
	r2 := response("u-a", "resp_2", t0.Add(time.Second), 10, "msg_in", "msg_2")
	_, err = rs.PutResponse(ctx, r2, vault.ResponseLimits{})
	must(t, err)
	byItem, err = rs.ResponseByItem(ctx, "u-a", "msg_in")
	must(t, err)
	same(t, "response of msg_in", byItem.ID, "resp_2")
	must(t, rs.DeleteResponse(ctx, "u-a", "resp_2"))
	wantErr(t, "DeleteResponse twice", rs.DeleteResponse(ctx, "u-a", "resp_2"), vault.ErrNotFound)
	wantErr(t, "DeleteResponse of another user's", rs.DeleteResponse(ctx, "u-b", "resp_1"), vault.ErrNotFound)
	_, err = rs.ResponseByItem(ctx, "u-a", "msg_2")
	wantErr(t, "item of a deleted response", err, vault.ErrNotFound)
	_, err = rs.GetResponse(ctx, "u-a", "resp_1")
	must(t, err)

	must(t, s.DeleteUser(ctx, "u-a"))
	mustUser(t, s, "u-a", "a@example.com") // same id again: nothing left over
	_, err = rs.GetResponse(ctx, "u-a", "resp_1")
	wantErr(t, "response of a deleted user", err, vault.ErrNotFound)
	_, err = rs.ResponseByItem(ctx, "u-a", "rs_1")
	wantErr(t, "item of a deleted user", err, vault.ErrNotFound)
}

// testResponseCaps: over the user's cap, the oldest go first, never the
// new one, and other users keep theirs.
func testResponseCaps(t *testing.T, h *harness) {
	s := h.store()
	rs := responses(t, s)
	mustUser(t, s, "u-a", "a@example.com")
	mustUser(t, s, "u-b", "b@example.com")
	lim := vault.ResponseLimits{MaxUserBytes: 250}
	_, err := rs.PutResponse(ctx, response("u-b", "resp_b", t0, 200), lim)
	must(t, err)
	for i, id := range []string{"resp_1", "resp_2"} {
		n, err := rs.PutResponse(ctx, response("u-a", id, t0.Add(time.Duration(i)*time.Second), 100, "item_"+id), lim)
		must(t, err)
		same(t, "dropped for "+id, n, 0)
	}
	n, err := rs.PutResponse(ctx, response("u-a", "resp_3", t0.Add(2*time.Second), 100), lim)
	must(t, err)
	same(t, "dropped for resp_3", n, 1)
	_, err = rs.GetResponse(ctx, "u-a", "resp_1")
	wantErr(t, "the oldest response over the cap", err, vault.ErrNotFound)
	_, err = rs.ResponseByItem(ctx, "u-a", "item_resp_1")
	wantErr(t, "an item of a dropped response", err, vault.ErrNotFound)
	for _, id := range []string{"resp_2", "resp_3"} {
		_, err := rs.GetResponse(ctx, "u-a", id)
		must(t, err)
	}
	// Larger than the cap alone: kept, everything older dropped.
	n, err = rs.PutResponse(ctx, response("u-a", "resp_4", t0.Add(3*time.Second), 300), lim)
	must(t, err)
	same(t, "dropped for resp_4", n, 2)
	_, err = rs.GetResponse(ctx, "u-a", "resp_4")
	must(t, err)
	_, err = rs.GetResponse(ctx, "u-b", "resp_b")
	must(t, err)
}

// testResponsePurge: expired records go, with their items, and those
// created up to a cut when one is given; a purge is counted.
func testResponsePurge(t *testing.T, h *harness) {
	s := h.store()
	rs := responses(t, s)
	mustUser(t, s, "u-a", "a@example.com")
	old := response("u-a", "resp_old", t0, 1, "msg_old")
	old.Expires = t0.Add(time.Hour)
	_, err := rs.PutResponse(ctx, old, vault.ResponseLimits{})
	must(t, err)
	_, err = rs.PutResponse(ctx, response("u-a", "resp_new", t0, 1), vault.ResponseLimits{})
	must(t, err)
	n, err := rs.PurgeResponses(ctx, t0.Add(time.Hour), time.Time{})
	must(t, err)
	same(t, "purged", n, 1)
	_, err = rs.ResponseByItem(ctx, "u-a", "msg_old")
	wantErr(t, "item of a purged response", err, vault.ErrNotFound)
	all, err := rs.ExportResponses(ctx)
	must(t, err)
	if len(all) != 1 || all[0].ID != "resp_new" {
		t.Fatalf("ExportResponses after the purge = %+v", all)
	}

	// A shortened retention: records created up to the cut go too, though
	// their own expiry is later; newer ones stay.
	_, err = rs.PutResponse(ctx, response("u-a", "resp_later", t0.Add(2*time.Hour), 1, "msg_later"), vault.ResponseLimits{})
	must(t, err)
	n, err = rs.PurgeResponses(ctx, t0.Add(time.Hour), t0)
	must(t, err)
	same(t, "purged by creation", n, 1)
	_, err = rs.GetResponse(ctx, "u-a", "resp_new")
	wantErr(t, "a response created at the cut", err, vault.ErrNotFound)
	_, err = rs.ResponseByItem(ctx, "u-a", "msg_later")
	must(t, err)
}
