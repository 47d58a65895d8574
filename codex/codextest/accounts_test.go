package codextest

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// TestUsageBudget: an account whose budget is spent gets 429
// usage_limit_reached with its reset; another account is not affected.
func TestUsageBudget(t *testing.T) {
	s := New(t)
	a := s.AddAccount("acc-a", "a@example.com", "plus")
	b := s.AddAccount("acc-b", "b@example.com", "pro")
	s.SetUsageBudget("acc-a", 1, 90*time.Minute)
	if resp := post(t, s, a, "acc-a", validBody("one")); resp.StatusCode != http.StatusOK {
		t.Fatalf("within the budget: %d", resp.StatusCode)
	}
	before := time.Now()
	resp := post(t, s, a, "acc-a", validBody("two"))
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("over the budget: %d", resp.StatusCode)
	}
	var body struct {
		Error struct {
			Type     string `json:"type"`
			ResetsAt int64  `json:"resets_at"`
		} `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	reset := time.Unix(body.Error.ResetsAt, 0)
	if body.Error.Type != "usage_limit_reached" || reset.Before(before.Add(89*time.Minute)) || reset.After(before.Add(91*time.Minute)) {
		t.Fatalf("refusal: %+v (resets in %s)", body.Error, time.Until(reset))
	}
	if resp.Header.Get("X-Codex-Primary-Used-Percent") != "100" {
		t.Fatalf("used percent: %q", resp.Header.Get("X-Codex-Primary-Used-Percent"))
	}
	if resp := post(t, s, b, "acc-b", validBody("three")); resp.StatusCode != http.StatusOK {
		t.Fatalf("the other account: %d", resp.StatusCode)
	}
	if total, limited := s.AccountRequests("acc-a"); total != 2 || limited != 1 {
		t.Fatalf("acc-a requests: %d total, %d limited", total, limited)
	}
	if total, limited := s.AccountRequests("acc-b"); total != 1 || limited != 0 {
		t.Fatalf("acc-b requests: %d total, %d limited", total, limited)
	}
	s.SetUsageBudget("acc-a", -1, 0)
	if resp := post(t, s, a, "acc-a", validBody("four")); resp.StatusCode != http.StatusOK {
		t.Fatalf("after lifting the limit: %d", resp.StatusCode)
	}
}
