package e2e

import (
	"os"
	"strings"
	"testing"
)

// TestLiveSmoke is the opt-in check of a real deployment with a real
// ChatGPT account behind it:
//
//	RUN_CODEX_SMOKE=1 CODEX_PROXY_BASE_URL=https://ai.example.com \
//	CODEX_PROXY_API_KEY=cpk_... [CODEX_PROXY_MODEL=gpt-5.4-mini] \
//	go test -run TestLiveSmoke -v ./e2e/
//
// It lists the models, then runs one streamed and one plain chat, spending a
// few tokens of the account's plan. CODEX_PROXY_BASE_URL is the site's
// origin, with or without /v1. It needs no built caddy.
func TestLiveSmoke(t *testing.T) {
	base, key := os.Getenv("CODEX_PROXY_BASE_URL"), os.Getenv("CODEX_PROXY_API_KEY")
	if os.Getenv("RUN_CODEX_SMOKE") != "1" || base == "" || key == "" {
		t.Skip("live smoke test against a real deployment: set RUN_CODEX_SMOKE=1, CODEX_PROXY_BASE_URL and CODEX_PROXY_API_KEY to run it")
	}
	base = strings.TrimSuffix(strings.TrimSuffix(base, "/"), "/v1")
	c := newOpenAIClient(base, key, nil)

	page, err := c.Models.List(withTimeout(t))
	if err != nil {
		t.Fatalf("models: %v", err)
	}
	var ids []string
	for _, m := range page.Data {
		ids = append(ids, m.ID)
	}
	if len(ids) == 0 {
		t.Fatal("models: empty list")
	}
	t.Logf("models: %s", strings.Join(ids, ", "))
	model := os.Getenv("CODEX_PROXY_MODEL")
	if model == "" {
		model = ids[0]
		for _, id := range ids {
			if strings.Contains(id, "mini") {
				model = id // the cheapest, when there is one
				break
			}
		}
	}

	params := chatParams("Reply with exactly the word: pong")
	params.Model = model
	s := c.Chat.Completions.NewStreaming(withTimeout(t), params)
	var text strings.Builder
	finish := ""
	for s.Next() {
		for _, ch := range s.Current().Choices {
			text.WriteString(ch.Delta.Content)
			if ch.FinishReason != "" {
				finish = ch.FinishReason
			}
		}
	}
	if err := s.Err(); err != nil {
		t.Fatalf("chat stream (%s): %v", model, err)
	}
	if text.Len() == 0 || finish == "" {
		t.Fatalf("chat stream (%s): text %q, finish %q", model, text.String(), finish)
	}
	t.Logf("stream (%s): %q, finish %s", model, text.String(), finish)

	res, err := c.Chat.Completions.New(withTimeout(t), params)
	if err != nil {
		t.Fatalf("chat (%s): %v", model, err)
	}
	if len(res.Choices) == 0 || res.Choices[0].Message.Content == "" || res.Usage.TotalTokens == 0 {
		t.Fatalf("chat (%s): %s", model, res.RawJSON())
	}
	t.Logf("chat (%s): %q, %d tokens", model, res.Choices[0].Message.Content, res.Usage.TotalTokens)
}
