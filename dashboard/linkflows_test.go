package dashboard

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// TestLinkFlowsCappedPerUser: each POST /chatgpt/link starts a flow; past
// linkFlowsPerUser the user's oldest pending flow is dropped (its page
// and its sign-in code stop working), while the newest ones work and
// the newest links the account.
func TestLinkFlowsCappedPerUser(t *testing.T) {
	e := newEnv(t)
	e.fake.AddAccount("acc-1", "ada@chatgpt.example", "plus")
	b := e.signIn("ada@example.com")
	u := e.user("ada@example.com")
	const starts = linkFlowsPerUser + 3
	flows := make([]string, starts)
	auths := make([]string, starts)
	for i := range flows {
		auths[i] = startLink(t, b, "chatgpt")
		flows[i] = b.flow
	}
	if n := e.d.flashes.count("user:" + u.ID); n != linkFlowsPerUser {
		t.Fatalf("%d flows kept for the user after %d starts, want %d", n, starts, linkFlowsPerUser)
	}
	for i, id := range flows {
		r := b.get("/chatgpt/link?flow=" + id)
		kept := i >= starts-linkFlowsPerUser
		if kept != (r.status == http.StatusOK) {
			t.Fatalf("flow %d: %d %q, kept %v", i, r.status, r.location, kept)
		}
	}
	// The dropped flow's sign-in is over too: its callback is refused
	// and links nothing.
	b.get("/chatgpt")
	r := b.post("/chatgpt/callback", url.Values{"callback": {authorize(t, auths[0])}})
	if r.status != http.StatusBadRequest {
		t.Fatalf("dropped flow's callback: %d", r.status)
	}
	mustContain(t, r.body, "expired or was already used")
	// The newest works.
	b.get("/chatgpt/link?flow=" + flows[starts-1])
	r = b.post("/chatgpt/callback", url.Values{"callback": {authorize(t, auths[starts-1])}, "flow": {flows[starts-1]}})
	if r.status != http.StatusSeeOther || r.location != "/chatgpt?msg=linked" {
		t.Fatalf("newest flow: %d %q %s", r.status, r.location, r.body)
	}
	// Another user's flows are not counted against Ada.
	m := e.signIn("mallory@example.com")
	startLink(t, m, "chatgpt")
	if n := e.d.flashes.count("user:" + u.ID); n != linkFlowsPerUser-1 {
		t.Fatalf("ada has %d flows after linking and mallory's start, want %d", n, linkFlowsPerUser-1)
	}
}

// TestFlashStoreBounds: a capped kind keeps at most perOwner values per
// owner, dropping the oldest; other kinds and owners are untouched; the
// whole store never holds more than maxFlashes.
func TestFlashStoreBounds(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name     string
		puts     int
		perOwner int
		kept     int
		dropped  int
	}{
		{"under the cap", 3, 5, 3, 0},
		{"at the cap", 5, 5, 5, 0},
		{"past the cap", 9, 5, 5, 4},
		{"no cap", 9, 0, 9, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s flashStore
			other := s.put("user:b", "other", now, time.Hour)
			var ids []string
			var dropped []any
			for i := range tc.puts {
				id, d := s.putCapped("user:a", "link", tc.perOwner, i, now.Add(time.Duration(i)*time.Second), time.Hour)
				ids = append(ids, id)
				dropped = append(dropped, d...)
			}
			if got := s.count("user:a"); got != tc.kept {
				t.Fatalf("kept %d, want %d", got, tc.kept)
			}
			if len(dropped) != tc.dropped {
				t.Fatalf("dropped %v, want %d", dropped, tc.dropped)
			}
			for i, v := range dropped {
				if v != i { // the oldest go first
					t.Fatalf("dropped %v: not the oldest first", dropped)
				}
			}
			if _, ok := s.peek(ids[len(ids)-1], "user:a", now); !ok {
				t.Fatal("the newest value was dropped")
			}
			if _, ok := s.peek(other, "user:b", now); !ok {
				t.Fatal("another owner's value was dropped")
			}
		})
	}
	t.Run("total", func(t *testing.T) {
		var s flashStore
		for i := range maxFlashes + 10 {
			s.put(fmt.Sprint("visitor:", i), i, now.Add(time.Duration(i)*time.Millisecond), time.Hour)
		}
		if n := len(s.m); n != maxFlashes {
			t.Fatalf("%d values stored, want at most %d", n, maxFlashes)
		}
	})
}

// count is how many live or not yet swept values owner has.
func (s *flashStore) count(owner string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, e := range s.m {
		if e.owner == owner {
			n++
		}
	}
	return n
}
