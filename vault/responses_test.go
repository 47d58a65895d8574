package vault

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestStoredResponses(t *testing.T) {
	v, _, clock := newTestVault(t, func(o *Options) { o.MaxResponseBytes = 4096; o.ResponseRetention = time.Hour })
	a := mustUser(t, v, "a@example.com")
	b := mustUser(t, v, "b@example.com")
	in := []json.RawMessage{json.RawMessage(`{"id":"msg_1","type":"message","role":"user","content":"hi"}`)}
	out := json.RawMessage(`{"id":"resp_1","object":"response","output":[{"id":"rs_1","type":"reasoning","encrypted_content":"secret-reasoning"}]}`)
	if err := v.PutResponse(a.ID, StoredResponse{ID: "resp_1", Input: in, Response: out}, []string{"msg_1", "rs_1"}); err != nil {
		t.Fatal(err)
	}
	got, err := v.Response(a.ID, "resp_1")
	if err != nil || string(got.Response) != string(out) || len(got.Input) != 1 || string(got.Input[0]) != string(in[0]) {
		t.Fatalf("Response = %+v, %v", got, err)
	}
	if got, err := v.ResponseByItem(a.ID, "rs_1"); err != nil || got.ID != "resp_1" {
		t.Fatalf("ResponseByItem = %+v, %v", got, err)
	}
	if _, err := v.Response(b.ID, "resp_1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another user's response: %v, want ErrNotFound", err)
	}

	// Sealed: the reasoning is not in the file in clear, and a record moved
	// to another user or id does not open.
	rs, _ := v.responses()
	rec, err := rs.GetResponse(t.Context(), a.ID, "resp_1")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(rec.Sealed.Ciphertext), "secret-reasoning") {
		t.Fatal("stored response is not encrypted")
	}
	moved := rec
	moved.UserID = b.ID
	if _, err := v.openResponse(moved); !errors.Is(err, ErrTokenUndecryptable) {
		t.Fatalf("a record moved to another user opened: %v", err)
	}

	// Over the per-item cap: not stored, counted.
	big := json.RawMessage(`{"id":"resp_big","output":["` + strings.Repeat("x", 5000) + `"]}`)
	if err := v.PutResponse(a.ID, StoredResponse{ID: "resp_big", Response: big}, nil); !errors.Is(err, ErrResponseTooLarge) {
		t.Fatalf("PutResponse of a too large response: %v", err)
	}
	if n := v.DroppedResponses(); n != 1 {
		t.Fatalf("DroppedResponses = %d, want 1", n)
	}

	// Expired: not found even before the purge, gone after it.
	clock.Advance(time.Hour)
	if _, err := v.Response(a.ID, "resp_1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expired response: %v, want ErrNotFound", err)
	}
	if n, err := v.purgeResponses(); err != nil || n != 1 {
		t.Fatalf("purgeResponses = %d, %v", n, err)
	}

	// Deleted with the user.
	if err := v.PutResponse(b.ID, StoredResponse{ID: "resp_b", Response: out}, nil); err != nil {
		t.Fatal(err)
	}
	if err := v.DeleteUser(b.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := rs.GetResponse(t.Context(), b.ID, "resp_b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("response of a deleted user: %v", err)
	}
}

// A response stored with a TTL shorter than the retention (a client
// socket's own entry) expires after it and is purged; a longer TTL does
// not outlive the retention.
func TestStoredResponseTTL(t *testing.T) {
	v, _, clock := newTestVault(t, func(o *Options) { o.ResponseRetention = time.Hour })
	a := mustUser(t, v, "a@example.com")
	out := json.RawMessage(`{"id":"resp_1","object":"response","output":[]}`)
	for id, ttl := range map[string]time.Duration{"short": time.Minute, "long": 2 * time.Hour} {
		if err := v.PutResponse(a.ID, StoredResponse{ID: id, Response: out, TTL: ttl}, nil); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(time.Minute)
	if _, err := v.Response(a.ID, "short"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("past its TTL: %v, want ErrNotFound", err)
	}
	if _, err := v.Response(a.ID, "long"); err != nil {
		t.Fatalf("within the retention: %v", err)
	}
	if n, err := v.purgeResponses(); err != nil || n != 1 {
		t.Fatalf("purgeResponses = %d, %v, want the short one", n, err)
	}
	clock.Advance(time.Hour)
	if _, err := v.Response(a.ID, "long"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a TTL past the retention: %v, want ErrNotFound", err)
	}
}
