package translate

import (
	"encoding/json"
	"slices"
	"testing"
)

func TestMaxEffort(t *testing.T) {
	for _, tc := range []struct {
		name, body, ceiling string
		chat                bool
		effort, from        string
	}{
		{"above is lowered", `{"model":"gpt-5.5","input":"hi","reasoning":{"effort":"xhigh"}}`, "high", false, "high", "xhigh"},
		{"at the ceiling stays", `{"model":"gpt-5.5","input":"hi","reasoning":{"effort":"high"}}`, "high", false, "high", ""},
		{"below stays", `{"model":"gpt-5.5","input":"hi","reasoning":{"effort":"low"}}`, "high", false, "low", ""},
		{"suffix is resolved first", `{"model":"gpt-5.5-xhigh","messages":[{"role":"user","content":"hi"}]}`, "medium", true, "medium", "xhigh"},
		{"chat reasoning_effort", `{"model":"gpt-5.4-mini","reasoning_effort":"high","messages":[{"role":"user","content":"hi"}]}`, "low", true, "low", "high"},
		{"no effort, ceiling below the default", `{"model":"gpt-5.5","input":"hi"}`, "low", false, "low", "default"},
		{"no effort, ceiling above the default", `{"model":"gpt-5.5","input":"hi"}`, "high", false, "", ""},
		{"ceiling between a model's levels", `{"model":"gpt-5.3-codex","input":"hi","reasoning":{"effort":"high"}}`, "minimal", false, "low", "high"},
		{"unknown model gets the ceiling", `{"model":"gpt-9","input":"hi","reasoning":{"effort":"xhigh"}}`, "high", false, "high", "xhigh"},
		{"no ceiling", `{"model":"gpt-5.5","input":"hi","reasoning":{"effort":"xhigh"}}`, "", false, "xhigh", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := RequestOptions{MaxEffort: tc.ceiling}
			var m *Mapped
			var err error
			if tc.chat {
				m, err = ChatToResponses([]byte(tc.body), opts)
			} else {
				m, err = NormalizeResponses([]byte(tc.body), opts)
			}
			if err != nil {
				t.Fatal(err)
			}
			var sent struct {
				Reasoning *struct {
					Effort string `json:"effort"`
				} `json:"reasoning"`
			}
			if err := json.Unmarshal(m.Body, &sent); err != nil {
				t.Fatal(err)
			}
			got := ""
			if sent.Reasoning != nil {
				got = sent.Reasoning.Effort
			}
			if got != tc.effort || m.Effort != tc.effort || m.EffortClampedFrom != tc.from {
				t.Fatalf("sent effort %q (Mapped %q, clamped from %q), want %q from %q", got, m.Effort, m.EffortClampedFrom, tc.effort, tc.from)
			}
		})
	}
}

func TestEffortsAreOrdered(t *testing.T) {
	if !slices.Equal(Efforts(), effortOrder) {
		t.Fatal("Efforts differs from the clamping order")
	}
}
