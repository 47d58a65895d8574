package vault

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLimitsSetOption(t *testing.T) {
	for _, tc := range []struct {
		block, name string
		args        []string
		want        Limits
		err         string
	}{
		{"responses", "retention", []string{"30d"}, Limits{ResponseRetention: 30 * 24 * time.Hour}, ""},
		{"responses", "retention", []string{"1d12h"}, Limits{ResponseRetention: 36 * time.Hour}, ""},
		{"responses", "retention", []string{"1.5d"}, Limits{ResponseRetention: 36 * time.Hour}, ""},
		{"responses", "retention", []string{"90m"}, Limits{ResponseRetention: 90 * time.Minute}, ""},
		{"responses", "max_size", []string{"4MiB"}, Limits{MaxResponseBytes: 4 << 20}, ""},
		{"responses", "max_user_size", []string{"1GiB"}, Limits{MaxUserResponseBytes: 1 << 30}, ""},
		{"responses", "retention", []string{"0s"}, Limits{}, "positive duration such as 30d"},
		{"responses", "retention", []string{"-1h"}, Limits{}, "positive duration"},
		{"responses", "retention", []string{"xd"}, Limits{}, "positive duration"},
		{"responses", "retention", []string{"30d", "1h"}, Limits{}, "takes one argument"},
		{"responses", "retention", nil, Limits{}, "takes one argument"},
		{"responses", "max_size", []string{"0"}, Limits{}, "positive size such as 8MiB"},
		{"responses", "max_size", []string{"lots"}, Limits{}, "positive size"},
		{"responses", "max_size", []string{"2GiB"}, Limits{}, "at most 1.0 GiB"},
		{"responses", "max_user_size", []string{"2TiB"}, Limits{}, "at most 1.0 TiB"},
		{"responses", "ttl", []string{"1d"}, Limits{}, `unknown responses option "ttl" (retention, max_size, max_user_size)`},
		{"audit", "retention", []string{"90d"}, Limits{AuditRetention: 90 * 24 * time.Hour}, ""},
		{"audit", "retention", []string{"0s"}, Limits{}, "audit retention \"0s\": use a positive duration such as 365d"},
		{"audit", "max_size", []string{"1MiB"}, Limits{}, `unknown audit option "max_size" (retention)`},
		{"sessions", "retention", []string{"1d"}, Limits{}, `unknown block "sessions"`},
	} {
		t.Run(fmt.Sprint(tc.name, tc.args), func(t *testing.T) {
			var l Limits
			err := l.SetOption(tc.block, tc.name, tc.args)
			if tc.err == "" && err != nil {
				t.Fatal(err)
			}
			if tc.err != "" && (!errors.Is(err, ErrLimits) || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("error %v, want one with %q", err, tc.err)
			}
			if l != tc.want {
				t.Fatalf("limits %+v, want %+v", l, tc.want)
			}
		})
	}
}

func TestLimitsValidateAndWidest(t *testing.T) {
	for _, tc := range []struct {
		l   Limits
		err string
	}{
		{Limits{}, ""},
		{Limits{MaxResponseBytes: 1 << 20, MaxUserResponseBytes: 1 << 20}, ""},
		{Limits{MaxResponseBytes: 512 << 20}, "max_size (512 MiB) is larger than max_user_size (256 MiB)"},
		{Limits{MaxUserResponseBytes: 1 << 20}, "max_size (8.0 MiB) is larger than max_user_size (1.0 MiB)"},
		{Limits{ResponseRetention: -time.Hour}, "negative"},
	} {
		err := tc.l.Validate()
		if (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("Validate(%+v) = %v, want %q", tc.l, err, tc.err)
		}
	}
	// Unset means the default, which can be the most generous.
	got := Limits{ResponseRetention: 7 * 24 * time.Hour, MaxUserResponseBytes: 1 << 30}.Widest(Limits{MaxResponseBytes: 1 << 20})
	want := Limits{ResponseRetention: DefaultResponseRetention, MaxResponseBytes: DefaultMaxResponseBytes, MaxUserResponseBytes: 1 << 30,
		AuditRetention: DefaultAuditRetention}
	if got != want {
		t.Fatalf("Widest = %+v, want %+v", got, want)
	}
	if b, _ := json.Marshal(Limits{MaxResponseBytes: 5}); string(b) != `{"max_response_size":5}` {
		t.Fatalf("JSON %s", b)
	}
}

// TestReconfigureLimits: the response store's limits follow Reconfigure
// (a reload): a smaller user cap drops that user's oldest responses first
// and counts them, a smaller per-response cap refuses what it did not, a
// shorter retention hides older responses at once, and a bad set of
// limits is refused, changing nothing.
func TestReconfigureLimits(t *testing.T) {
	logs := &syncBuffer{}
	v, _, clock := newTestVault(t, func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(logs, nil)) })
	u := mustUser(t, v, "a@x.io")
	body := json.RawMessage(`{"object":"response","output":["` + strings.Repeat("x", 1000) + `"]}`)
	put := func(id string) error {
		return v.PutResponse(u.ID, StoredResponse{ID: id, Response: body}, []string{"msg_" + id})
	}
	for _, id := range []string{"resp_1", "resp_2", "resp_3"} {
		if err := put(id); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Hour)
	}

	s := v.Settings()
	s.Limits = Limits{MaxResponseBytes: 2000, MaxUserResponseBytes: 2500}
	if err := v.Reconfigure(s); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "storage limits changed") || !strings.Contains(logs.String(), "max_user_response_size=2500") {
		t.Fatalf("no change logged:\n%s", logs)
	}
	if err := put("resp_4"); err != nil {
		t.Fatal(err)
	}
	// Each record is a little over 1000 bytes: two fit, the oldest two go.
	for id, kept := range map[string]bool{"resp_1": false, "resp_2": false, "resp_3": true, "resp_4": true} {
		if _, err := v.Response(u.ID, id); (err == nil) != kept {
			t.Errorf("%s: %v, kept should be %v", id, err, kept)
		}
	}
	if n := v.DroppedResponses(); n != 2 {
		t.Fatalf("DroppedResponses = %d, want 2", n)
	}
	big := json.RawMessage(`{"output":["` + strings.Repeat("y", 2100) + `"]}`)
	if err := v.PutResponse(u.ID, StoredResponse{ID: "resp_big", Response: big}, nil); !errors.Is(err, ErrResponseTooLarge) {
		t.Fatalf("over the new per-response cap: %v", err)
	}
	if n := v.DroppedResponses(); n != 3 {
		t.Fatalf("DroppedResponses = %d, want 3", n)
	}

	// resp_3 is 2 hours old, resp_4 1 hour: a 90-minute retention hides
	// resp_3 now, though it was stored with 30 days.
	clock.Advance(time.Hour)
	s.Limits.ResponseRetention = 90 * time.Minute
	if err := v.Reconfigure(s); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Response(u.ID, "resp_3"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("resp_3 past the shortened retention: %v", err)
	}
	if _, err := v.ResponseByItem(u.ID, "msg_resp_4"); err != nil {
		t.Fatalf("resp_4 within it: %v", err)
	}
	// The next purge deletes it from the store; later purges go by expiry.
	rs, _ := v.responses()
	if n, err := v.purgeResponses(); err != nil || n != 1 {
		t.Fatalf("purge after the shortened retention: %d, %v", n, err)
	}
	if _, err := rs.GetResponse(t.Context(), u.ID, "resp_3"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("resp_3 still stored after the purge: %v", err)
	}
	if v.responseCut.Load() {
		t.Fatal("every purge would scan by creation")
	}

	bad := s
	bad.Limits = Limits{MaxResponseBytes: 1 << 20, MaxUserResponseBytes: 1000}
	if err := v.Reconfigure(bad); !errors.Is(err, ErrLimits) {
		t.Fatalf("bad limits: %v", err)
	}
	if v.Settings().Limits != s.Limits || v.limits.Load().MaxUserResponseBytes != 2500 {
		t.Fatalf("a refused change took effect: %+v", v.Settings().Limits)
	}
}
